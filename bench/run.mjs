// botgate's load benchmark: a recording upstream, a bare keep-alive forwarder (the baseline) and
// botgate with the shipped default policy, each driven in turn by the same load generator at the
// same concurrency, in interleaved rounds. Prints req/s, p50, p99, RSS and CPU time per request,
// and botgate's ratios to the baseline measured in this same run.
//
//   npm run bench -- [--seconds 8] [--rounds 3] [--connections 40,100] [--tool wrk|autocannon]
//                    [--sign HS256|EdDSA|ES256]   (botgate signs every forward: upstream.sign)
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cpuMs, hasWrk, load, median, rssMb, sleep, startBotgate, startNode, stop } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '40,100' },
    tool: { type: 'string' },
    sign: { type: 'string' },
  },
})
if (values.sign !== undefined && !['HS256', 'EdDSA', 'ES256'].includes(values.sign))
  throw new Error('--sign must be HS256, EdDSA or ES256')
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connectionCounts = values.connections.split(',').map(Number)
const tool = values.tool ?? (hasWrk() ? 'wrk' : 'autocannon')

const TARGETS = { rps: 0.85, p99: 1.3, rssMb: 150 }
const body = readFileSync(path.join(root, 'bench/update.json'), 'utf8').trim()
const work = mkdtempSync(path.join(tmpdir(), 'botgate-bench-'))
const secret = randomBytes(48).toString('base64url')
const segment = randomBytes(24).toString('base64url')

const upstream = await startNode(path.join(root, 'bench/upstream.mjs'))
const baseline = await startNode(path.join(root, 'bench/baseline.mjs'), [String(upstream.port)])
const configFile = path.join(work, 'gateway.yaml')
let sign = ''
if (values.sign === 'HS256') {
  writeFileSync(path.join(work, 'sign.key'), randomBytes(32).toString('base64url'))
  sign = '      sign: { alg: HS256, keys: [{ kid: bench-1, key_file: sign.key }] }\n'
} else if (values.sign !== undefined) {
  const pair =
    values.sign === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
  writeFileSync(path.join(work, 'sign.pem'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  sign = `      sign: { alg: ${values.sign}, keys: [{ kid: bench-1, private_key_file: sign.pem }] }\n`
}
writeFileSync(
  configFile,
  `# The benchmark's botgate: the shipped default policy. Load comes from 127.0.0.1, which stands in
# for a reverse proxy, with X-Forwarded-For set to an address in Telegram's range.
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
trusted_proxies: [127.0.0.1]
bots:
  - name: bench
    username: bench_bot
    path: /tg/${segment}
    secret_token: ${secret}
    upstream:
      url: http://127.0.0.1:${upstream.port}/webhook
      secret_token: ${randomBytes(24).toString('base64url')}
${sign}    policy: ${path.join(root, 'policies/default.yaml')}
`,
)
const gateway = await startBotgate(
  path.join(root, 'dist/main.js'),
  configFile,
  path.join(work, 'botgate.log'),
)

const headers = {
  'content-type': 'application/json',
  'x-telegram-bot-api-secret-token': secret,
  'x-forwarded-for': '149.154.167.99',
}
const targets = [
  { name: 'baseline', url: `http://127.0.0.1:${baseline.port}/`, pid: baseline.child.pid },
  { name: 'botgate', url: `http://${gateway.webhook}/tg/${segment}`, pid: gateway.child.pid },
]

async function received() {
  const response = await fetch(`http://127.0.0.1:${upstream.port}/`)
  return (await response.json()).received
}

console.log(
  `botgate benchmark: ${tool}, ${seconds}s per run, ${rounds} interleaved rounds, body ${Buffer.byteLength(body)} bytes${values.sign ? `, forwards signed with ${values.sign}` : ''}`,
)
const report = {
  tool,
  seconds,
  rounds,
  sign: values.sign ?? null,
  date: new Date().toISOString(),
  node: process.version,
  results: [],
}
for (const target of targets)
  await load({ tool, url: target.url, headers, body, connections: 10, seconds: 2 })

for (const connections of connectionCounts) {
  const runs = Object.fromEntries(targets.map((t) => [t.name, []]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse()
    for (const target of order) {
      const before = { cpu: cpuMs(target.pid), received: await received() }
      const result = await load({ tool, url: target.url, headers, body, connections, seconds })
      const cpu = cpuMs(target.pid) - before.cpu
      const delivered = (await received()) - before.received
      runs[target.name].push({
        ...result,
        cpuUs: (cpu * 1000) / Math.max(result.total, 1),
        rss: rssMb(target.pid),
        delivered,
      })
      if (result.errors > 0)
        console.log(`  warning: ${target.name} answered ${result.errors} requests with errors`)
      await sleep(500)
    }
  }
  const summary = Object.fromEntries(
    Object.entries(runs).map(([name, list]) => [
      name,
      {
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        cpuUs: median(list.map((r) => r.cpuUs)),
        rss: Math.max(...list.map((r) => r.rss)),
        rounds: list.map((r) => Math.round(r.rps)),
        delivered: list.reduce((sum, r) => sum + r.delivered, 0),
        total: list.reduce((sum, r) => sum + r.total, 0),
      },
    ]),
  )
  const b = summary.baseline
  const g = summary.botgate
  const ratio = { rps: g.rps / b.rps, p99: g.p99 / b.p99, cpu: g.cpuUs / b.cpuUs }
  report.results.push({ connections, summary, ratio })
  const row = (name, s) =>
    `  ${name.padEnd(9)} ${s.rps.toFixed(0).padStart(8)} ${s.p50.toFixed(2).padStart(8)} ${s.p99.toFixed(2).padStart(8)} ${s.rss.toFixed(0).padStart(7)} ${s.cpuUs.toFixed(0).padStart(8)}   ${s.rounds.join(' ')}`
  console.log(`\n${connections} connections (medians of ${rounds} rounds)`)
  console.log('             req/s  p50 ms   p99 ms  RSS MB  CPU us/req   req/s by round')
  console.log(row('baseline', b))
  console.log(row('botgate', g))
  const mark = (ok) => (ok ? 'ok' : 'MISSED')
  console.log(
    `  ratio     ${ratio.rps.toFixed(2)}x req/s (target >= ${TARGETS.rps}: ${mark(ratio.rps >= TARGETS.rps)}), ` +
      `${ratio.p99.toFixed(2)}x p99 (target <= ${TARGETS.p99}: ${mark(ratio.p99 <= TARGETS.p99)}), ` +
      `RSS ${g.rss.toFixed(0)} MB (target <= ${TARGETS.rssMb}: ${mark(g.rss <= TARGETS.rssMb)}), ${ratio.cpu.toFixed(2)}x CPU per request`,
  )
  if (g.delivered !== g.total)
    console.log(`  note: upstream received ${g.delivered} of botgate's ${g.total} requests`)
}

await Promise.all([stop(gateway.child), stop(baseline.child), stop(upstream.child)])
const results = path.join(root, 'bench/results')
mkdirSync(results, { recursive: true })
const file = path.join(results, `bench-${report.date.replace(/[:.]/g, '-')}.json`)
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
console.log(`\nresults: ${path.relative(process.cwd(), file)}`)
