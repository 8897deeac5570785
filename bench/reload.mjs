// botgate's reload benchmark: one gateway with many bots (default 10,000) that share one policy
// file, in front of the benchmark's upstream. Measures the time from start to ready and the RSS,
// then drives steady light load on one bot while it sends SIGHUP three times, each after one
// change to the config (a bot's upstream timeout, a bot added, a bot removed). Prints the latency
// of the requests sent during each reload (max and p99), the reload's duration (from its log
// line), and the RSS after each reload.
//
// The load is open-loop: a request is sent every 1000/rate ms whether or not the earlier ones were
// answered, and its latency is counted from when it was due, so a stalled event loop shows as the
// whole stall rather than as one slow request (no coordinated omission).
//
//   npm run bench:reload -- [--bots 10000] [--rate 100] [--reloads 3] [--settle 3]
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { rssMb, sleep, startNode, stop, UPDATE_ID } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    bots: { type: 'string', default: '10000' },
    // Light load: the point is whether a reload stalls the requests, not how many it serves.
    rate: { type: 'string', default: '100' },
    reloads: { type: 'string', default: '3' },
    // Seconds of load before the first reload and after each: the quiet periods compared with.
    settle: { type: 'string', default: '3' },
  },
})
const botCount = Number(values.bots)
const rate = Number(values.rate)
const reloads = Number(values.reloads)
const settleMs = Number(values.settle) * 1000
if (!(botCount >= 2) || !(rate > 0) || !(reloads >= 1))
  throw new Error('--bots >= 2, --rate > 0, --reloads >= 1')

/** Issue 23's targets for 10,000 bots. */
const TARGETS = { readyMs: 5000, rssMb: 500, maxWaitMs: 100, rssGrowth: 1.5 }

const work = mkdtempSync(path.join(tmpdir(), 'botgate-bench-reload-'))
process.on('exit', (code) => {
  if (code === 1) console.error(`benchmark failed: the config and the gateway's log are in ${work}`)
  else rmSync(work, { recursive: true, force: true })
})
process.once('SIGINT', () => process.exit(130))

const secret = randomBytes(48).toString('base64url')
const upstream = await startNode(path.join(root, 'bench/upstream.mjs'))
const policyFile = path.join(work, 'policy.yaml')
// The shipped default policy, as a file of its own that every bot names.
writeFileSync(policyFile, readFileSync(path.join(root, 'policies/default.yaml')))
const configFile = path.join(work, 'gateway.yaml')

/** The config with bots 0 .. count - 1 (load goes to bot 0); bot 1's timeout as given. */
function writeConfig({ count = botCount, timeout = '25s' } = {}) {
  const lines = [
    '# Many bots, one policy file. Load comes from 127.0.0.1 standing in for a reverse proxy.',
    'listen: 127.0.0.1:0',
    'admin: { listen: 127.0.0.1:0 }',
    'trusted_proxies: [127.0.0.1]',
    'bots:',
  ]
  for (let i = 0; i < count; i++) {
    lines.push(
      `  - name: bot${i}`,
      `    path: /tg/bot${i}-0123456789abcdef`,
      `    secret_token: ${secret}`,
      `    upstream: { url: "http://127.0.0.1:${upstream.port}/webhook", timeout: ${i === 1 ? timeout : '25s'} }`,
      `    policy: ${policyFile}`,
    )
  }
  writeFileSync(configFile, `${lines.join('\n')}\n`)
}

writeConfig()
const logFile = path.join(work, 'botgate.log')
const log = () => readFileSync(logFile, 'utf8').split('\n')
const started = performance.now()
const child = spawn(process.execPath, [path.join(root, 'dist/main.js'), 'serve', '--config', configFile], {
  stdio: ['ignore', openSync(logFile, 'w'), 'inherit'],
})

/** The log lines with message `msg`, parsed. */
const linesOf = (msg) =>
  log()
    .filter((line) => line.includes(`"msg":"${msg}"`))
    .map((line) => JSON.parse(line))

/** Waits for a log line with message `msg`, past the first `skip` of them, that `accept`s; resolves to it. */
async function waitForLine(msg, { skip = 0, accept = () => true } = {}, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`botgate exited with ${child.exitCode}`)
    const found = linesOf(msg).slice(skip).find(accept)
    if (found !== undefined) return found
    await sleep(20)
  }
  throw new Error(`no log line "${msg}" within ${timeoutMs} ms`)
}

const listening = await waitForLine('botgate listening')
const ready = async () => {
  for (;;) {
    const response = await fetch(`http://${listening.admin}/readyz`).catch(() => undefined)
    if (response?.ok) return
    await sleep(10)
  }
}
await ready()
const readyMs = performance.now() - started
await sleep(1000)
const rssStart = rssMb(child.pid)

const body = readFileSync(path.join(root, 'bench/update.json'), 'utf8').trim()
const [before, after] = body.split(UPDATE_ID)
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
const target = new URL(`http://${listening.webhook}/tg/bot0-0123456789abcdef`)
let nextId = 100_000_000
/** Every request: when it was due and how long it took (ms, from `performance.now()`). */
const samples = []
let failures = 0

function send() {
  const due = performance.now()
  const payload = `${before}"update_id":${++nextId}${after}`
  const request = http.request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'x-telegram-bot-api-secret-token': secret,
        'x-forwarded-for': '149.154.167.99',
      },
    },
    (response) => {
      response.resume()
      response.on('end', () => {
        if (response.statusCode !== 200) failures++
        samples.push({ due, ms: performance.now() - due })
      })
    },
  )
  request.on('error', () => {
    failures++
    samples.push({ due, ms: performance.now() - due })
  })
  request.end(payload)
}

const interval = 1000 / rate
let sent = 0
const loadStart = performance.now()
// Open loop: catch up on every request that fell due, whatever the timer's own lateness.
const timer = setInterval(() => {
  const due = Math.floor((performance.now() - loadStart) / interval)
  while (sent < due) {
    sent++
    send()
  }
}, 1)

function stats(list) {
  const sorted = list.map((s) => s.ms).sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  return { count: sorted.length, p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN }
}

const changes = [
  { what: "bot1's upstream timeout", config: { timeout: '20s' } },
  { what: 'a bot added', config: { timeout: '20s', count: botCount + 1 } },
  { what: 'a bot removed', config: { timeout: '20s' } },
]
console.log(
  `botgate reload benchmark: ${botCount} bots sharing one policy file, ${rate} req/s on one bot, ${reloads} reloads`,
)
console.log(`ready in ${readyMs.toFixed(0)} ms, RSS ${rssStart.toFixed(0)} MB`)
await sleep(settleMs)
const report = { bots: botCount, rate, readyMs, rssStartMb: rssStart, reloads: [] }
for (let index = 0; index < reloads; index++) {
  const change = changes[index % changes.length]
  const skip = linesOf('config reloaded').length
  writeConfig(change.config)
  const from = performance.now()
  child.kill('SIGHUP')
  // The file's change starts a reload of its own too (the config folder is watched): whichever of
  // the two reads the change counts it; the other finds nothing new, and may come late.
  const line = await waitForLine('config reloaded', {
    skip,
    accept: ({ bots }) => bots.changed + bots.added + bots.removed > 0,
  })
  const seen = performance.now()
  const rss = rssMb(child.pid)
  const reloadMs = typeof line.ms === 'number' ? line.ms : seen - from
  const bytes = Buffer.byteLength(JSON.stringify(line))
  report.reloads.push({ change: change.what, from, seen, reloadMs, rssMb: rss, logBytes: bytes })
  console.log(
    `reload ${index + 1} (${change.what}): ${reloadMs.toFixed(0)} ms${typeof line.ms === 'number' ? '' : ' (signal to log line)'}, ` +
      `RSS ${rss.toFixed(0)} MB right after; log line ${bytes} bytes`,
  )
  await sleep(settleMs)
  report.reloads[index].rssSettledMb = rssMb(child.pid)
}
clearInterval(timer)
// Wait for the stragglers: a request stalled by a reload is counted with its whole wait.
const waitEnd = Date.now() + 30_000
while (samples.length < sent && Date.now() < waitEnd) await sleep(50)
for (const [index, entry] of report.reloads.entries()) {
  // The requests due from the signal until the reload's line was seen, plus one interval: those
  // that could have waited on the reload.
  Object.assign(entry, stats(samples.filter((s) => s.due >= entry.from && s.due <= entry.seen + interval)))
  console.log(
    `reload ${index + 1}: ${entry.count} requests sent during it: max ${entry.max.toFixed(1)} ms, p99 ${entry.p99.toFixed(1)} ms; ` +
      `RSS ${entry.rssSettledMb.toFixed(0)} MB ${values.settle} s later`,
  )
}
const quiet = stats(samples.filter((s) => s.due < loadStart + settleMs))
console.log(
  `quiet period before the first reload: ${quiet.count} requests, max ${quiet.max.toFixed(1)} ms, p99 ${quiet.p99.toFixed(1)} ms; ${failures} requests failed`,
)
report.quiet = quiet
report.failures = failures
const worst = Math.max(...report.reloads.map((r) => r.max))
const rssEnd = report.reloads[report.reloads.length - 1].rssSettledMb
const verdicts = [
  [`ready within ${TARGETS.readyMs} ms`, readyMs <= TARGETS.readyMs],
  [
    `RSS at most ${TARGETS.rssMb} MB`,
    Math.max(rssStart, ...report.reloads.flatMap((r) => [r.rssMb, r.rssSettledMb])) <= TARGETS.rssMb,
  ],
  [`no request waits more than ${TARGETS.maxWaitMs} ms during a reload`, worst <= TARGETS.maxWaitMs],
  [`RSS after the reloads at most ${TARGETS.rssGrowth}x of before`, rssEnd <= rssStart * TARGETS.rssGrowth],
]
for (const [target, met] of verdicts) console.log(`${met ? 'met' : 'MISSED'}: ${target}`)
console.log(`(targets are issue 23's for 10,000 bots)`)
console.log(JSON.stringify(report))
agent.destroy()
await stop(child)
await stop(upstream.child)
