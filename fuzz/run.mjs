// botgate's fuzzer: seeded mutations of real Telegram updates (mutate.mjs) sent through a real
// `botgate serve` in front of a recording upstream of the fuzzer's own, each answer and each
// forward judged by an oracle written from SPEC.md (oracle.mjs). Also watched: the process stays
// up, its RSS stays bounded, and no log line carries a secret.
//
//   npm run fuzz -- [--seed N] [--cases 1000000] [--seconds 1200] [--concurrency 32]
//                   [--max-rss 300] [--only INDEX]
//
// A violation prints the seed, the case index and the exact request; `--seed N --only INDEX`
// sends that one case again. Exits 1 when there was a violation.
import { spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { loadSamples, MESSAGE_TYPES, makeCase } from './mutate.mjs'
import { judge } from './oracle.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MAX_BODY = 32 * 1024
const UPSTREAM_REPLY = '{"method":"sendMessage","chat_id":1,"text":"from the bot"}'
/** The fuzz policy: the commands, roles and types the oracle holds forwards to. */
const POLICY = {
  types: [...MESSAGE_TYPES, 'callback_query', 'inline_query', 'my_chat_member'],
  commands: ['start', 'help', 'settings', 'ban'],
  restricted: ['ban'],
  admins: [111],
  username: 'fuzz_bot',
}
/** Violations printed in full; all of them are counted. */
const PRINTED = 10

/** The recording upstream: answers 200 with a webhook reply, keeps each forward by X-Request-Id. */
async function startUpstream() {
  const received = new Map()
  const server = http.createServer((request, response) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      const id = request.headers['x-request-id']
      received.set(typeof id === 'string' ? id : `missing-${received.size}`, {
        headers: request.headers,
        body: Buffer.concat(chunks),
      })
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': UPSTREAM_REPLY.length })
      response.end(UPSTREAM_REPLY)
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, received, port: server.address().port }
}

/**
 * Starts `botgate serve` on a fresh config; its stdout and stderr are read line by line by
 * `onLine`. Resolves with the child and its listeners' addresses.
 */
async function startGateway(dir, config, onLine) {
  writeFileSync(path.join(dir, 'gateway.yaml'), config)
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/main.js'), 'serve', '--config', 'gateway.yaml'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let listening
  const ready = new Promise((resolve, reject) => {
    listening = resolve
    child.once('exit', (code) => reject(new Error(`botgate exited with ${code} before listening`)))
    setTimeout(() => reject(new Error('botgate did not listen within 15 s')), 15_000).unref()
  })
  for (const stream of [child.stdout, child.stderr]) {
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        onLine(line)
        if (line.includes('"botgate listening"')) listening(JSON.parse(line))
      }
    })
    stream.on('end', () => partial && onLine(partial))
  }
  const started = await ready
  return { child, webhook: `http://${started.webhook}`, admin: `http://${started.admin}` }
}

function rssMb(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** The exact request of a case, printable: a violation report reproduces from it. */
export function describeCase(seed, request, full = false) {
  return [
    `  reproduce: npm run fuzz -- --seed ${seed} --only ${request.index}`,
    `  mutations: ${request.tags.join(', ')}`,
    `  ${request.method} ${request.path}${request.chunked ? ` (chunked, ${request.chunkSize}-byte chunks)` : ''}`,
    ...request.headers.map(([name, value]) => `  ${name}: ${JSON.stringify(value)}`),
    request.body.length <= 3072 || full
      ? `  body (${request.body.length} bytes, base64): ${request.body.toString('base64')}`
      : `  body (${request.body.length} bytes, base64, the first 3 KiB; --only prints it all): ${request.body.subarray(0, 3072).toString('base64')}`,
  ].join('\n')
}

async function* chunksOf(body, size) {
  // At most 2,000 chunks: a 1-byte chunk size on a large body would only measure the client.
  const step = Math.max(size, Math.ceil(body.length / 2000))
  for (let at = 0; at < body.length; at += step) yield body.subarray(at, at + step)
}

async function send(pool, request) {
  const headers = request.headers.flat()
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
  try {
    const response = await pool.request({
      method: request.method,
      path: request.path,
      headers,
      body: hasBody
        ? request.chunked
          ? chunksOf(request.body, request.chunkSize)
          : request.body
        : undefined,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    })
    const body = Buffer.from(await response.body.arrayBuffer())
    return { status: response.statusCode, headers: response.headers, body }
  } catch (error) {
    return { error: error.code ?? error.message }
  }
}

/**
 * Runs a campaign. Options: `seed`, `cases` (default 1,000,000), `seconds` (a bound on the
 * sending time, default 1200), `concurrency` (connections, default 32), `maxRssMb` (default 300),
 * `only` (send just this case index), `print` (progress and violations; default: nothing).
 * Resolves with the counts, the rate and every violation found.
 */
export async function runFuzz(options = {}) {
  const seed = options.seed ?? randomInt(2 ** 31)
  const print = options.print ?? (() => {})
  const first = options.only ?? 0
  const end = options.only === undefined ? first + (options.cases ?? 1_000_000) : first + 1
  const concurrency = options.concurrency ?? 32
  const maxRssMb = options.maxRssMb ?? 300
  const samples = loadSamples(path.join(root, 'test/fixtures/updates'))
  const secret = randomBytes(48).toString('base64url')
  const upstreamSecret = randomBytes(48).toString('base64url')
  const segment = randomBytes(24).toString('base64url')
  const context = {
    samples,
    path: `/tg/${segment}`,
    secret,
    upstreamSecret,
    secrets: [secret, upstreamSecret],
    maxBody: MAX_BODY,
    upstreamReply: UPSTREAM_REPLY,
    policy: POLICY,
  }
  print(
    `fuzz: seed ${seed}, cases ${first}..${end - 1}, ${concurrency} connections, ${samples.length} samples\n`,
  )

  const violations = []
  let violationCount = 0
  const violate = (message, request) => {
    violationCount++
    if (violations.length < 1000) violations.push({ seed, index: request?.index, message, request })
    if (violationCount <= PRINTED)
      print(
        `VIOLATION seed ${seed} case ${request?.index ?? '-'}: ${message}\n${request ? describeCase(seed, request) : ''}\n`,
      )
  }

  const log = { lines: 0, reasons: {}, dropped: 0 }
  const onLine = (line) => {
    log.lines++
    for (const value of context.secrets) if (line.includes(value)) violate('a secret in a log line')
    const reason = /"reason":"([a-z_]+)"/.exec(line)
    if (reason) log.reasons[reason[1]] = (log.reasons[reason[1]] ?? 0) + 1
  }

  const upstream = await startUpstream()
  const dir = mkdtempSync(path.join(tmpdir(), 'botgate-fuzz-'))
  const gateway = await startGateway(
    dir,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info }
bots:
  - name: fuzz
    username: ${POLICY.username}
    path: ${context.path}
    secret_token: ${secret}
    upstream:
      url: http://127.0.0.1:${upstream.port}/webhook
      secret_token: ${upstreamSecret}
    policy:
      sources: { allow: [any] }
      updates:
        allow: [${POLICY.types.join(', ')}]
        unknown: drop
        max_body: ${MAX_BODY}B
        schema: standard
      dedupe: false
      roles: { admins: [${POLICY.admins.join(', ')}] }
      commands:
        allow: [${POLICY.commands.join(', ')}]
        roles: { ban: [admins] }
        other_bots: drop
        reply: "Unknown command. Try /help."
`,
    onLine,
  )
  let exited
  gateway.child.once('exit', (code, signal) => {
    exited = { code, signal }
  })
  const rss = { max: 0, last: 0, samples: 0 }
  const sampleRss = () => {
    const value = rssMb(gateway.child.pid)
    if (value === undefined) return
    rss.samples++
    rss.last = value
    rss.max = Math.max(rss.max, value)
  }
  sampleRss()
  rss.start = rss.last
  const sampler = setInterval(sampleRss, 500)

  const pool = new Pool(gateway.webhook, {
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  })
  const counts = { status: {}, expected: {}, forwarded: 0, connectionErrors: {} }
  const startedAt = performance.now()
  const deadline = startedAt + (options.seconds ?? 1200) * 1000
  let next = first
  let sent = 0
  let lastReport = startedAt
  let timedOut = false

  const runCase = async (index) => {
    const request = makeCase(seed, index, context)
    const answer = await send(pool, request)
    sent++
    let forwarded
    if (answer.error === undefined) {
      const id = answer.headers['x-request-id']
      forwarded = upstream.received.get(id)
      if (forwarded !== undefined) {
        upstream.received.delete(id)
        counts.forwarded++
      }
      counts.status[answer.status] = (counts.status[answer.status] ?? 0) + 1
    } else counts.connectionErrors[answer.error] = (counts.connectionErrors[answer.error] ?? 0) + 1
    const { expected, violations: found } = judge(request, answer, forwarded, context)
    const key = expected.join('|')
    counts.expected[key] = (counts.expected[key] ?? 0) + 1
    for (const message of found) violate(message, request)
    if (options.only !== undefined)
      print(
        `${describeCase(seed, request, true)}\n  answer: ${answer.error ?? `${answer.status} ${answer.body}`}\n  forwarded: ${forwarded !== undefined}\n`,
      )
  }

  const worker = async () => {
    for (;;) {
      if (exited !== undefined) return
      if (performance.now() > deadline) {
        timedOut = true
        return
      }
      const index = next++
      if (index >= end) return
      await runCase(index)
      const now = performance.now()
      if (now - lastReport > 10_000) {
        lastReport = now
        const seconds = (now - startedAt) / 1000
        print(
          `  ${sent} cases in ${seconds.toFixed(0)} s (${Math.round(sent / seconds)}/s), ${violationCount} violations, RSS ${rss.last.toFixed(0)} MB\n`,
        )
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, end - first) }, worker))
  const elapsed = (performance.now() - startedAt) / 1000
  sampleRss()
  clearInterval(sampler)
  await pool.close()

  // The process survived, still answers, and its memory stayed bounded.
  let healthy = false
  if (exited === undefined) {
    try {
      healthy = (await fetch(`${gateway.admin}/healthz`)).status === 200
    } catch {}
  }
  if (exited !== undefined) violate(`botgate exited (code ${exited.code}, signal ${exited.signal})`)
  else if (!healthy) violate('botgate /healthz did not answer 200')
  if (rss.max > maxRssMb) violate(`RSS reached ${rss.max.toFixed(0)} MB (bound ${maxRssMb} MB)`)
  // Forwards that no answer claimed: a forward the client was never told about.
  for (const id of upstream.received.keys()) violate(`a forward no answer claimed (X-Request-Id ${id})`)

  const exit = exited ?? (await stopGateway(gateway.child))
  if (exited === undefined && exit.code !== 0) violate(`botgate exited with ${exit.code} on SIGTERM`)
  await new Promise((resolve) => upstream.server.close(resolve))
  upstream.server.closeAllConnections?.()
  rmSync(dir, { recursive: true, force: true })

  const result = {
    seed,
    cases: sent,
    elapsedSeconds: elapsed,
    rate: sent / elapsed,
    timedOut,
    counts,
    logReasons: log.reasons,
    logLines: log.lines,
    rssMb: { start: rss.start, max: rss.max, end: rss.last, samples: rss.samples },
    violationCount,
    violations,
  }
  print(summary(result))
  return result
}

function stopGateway(child) {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.kill('SIGTERM')
  })
}

const sorted = (counts) =>
  Object.entries(counts)
    .sort(([, a], [, b]) => b - a)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ')

function summary(result) {
  const { counts } = result
  return [
    `fuzz: seed ${result.seed}: ${result.cases} cases in ${result.elapsedSeconds.toFixed(1)} s, ${Math.round(result.rate)} cases/s${result.timedOut ? ' (stopped at the time bound)' : ''}`,
    `  status: ${sorted(counts.status)}`,
    `  expected by the oracle: ${sorted(counts.expected)}`,
    `  forwarded: ${counts.forwarded}`,
    `  connection errors: ${sorted(counts.connectionErrors) || 'none'}`,
    `  reasons (botgate's log, ${result.logLines} lines): ${sorted(result.logReasons)}`,
    `  RSS: ${result.rssMb.start?.toFixed(0)} MB at start, ${result.rssMb.max.toFixed(0)} MB max, ${result.rssMb.end.toFixed(0)} MB at the end (${result.rssMb.samples} samples)`,
    `  violations: ${result.violationCount}`,
    '',
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      cases: { type: 'string', default: '1000000' },
      seconds: { type: 'string', default: '1200' },
      concurrency: { type: 'string', default: '32' },
      'max-rss': { type: 'string', default: '300' },
      only: { type: 'string' },
    },
  })
  const number = (name, value) => {
    const parsed = Number(value)
    if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`--${name} must be a whole number`)
    return parsed
  }
  const result = await runFuzz({
    ...(values.seed === undefined ? {} : { seed: number('seed', values.seed) }),
    cases: number('cases', values.cases),
    seconds: number('seconds', values.seconds),
    concurrency: Math.max(1, number('concurrency', values.concurrency)),
    maxRssMb: number('max-rss', values['max-rss']),
    ...(values.only === undefined ? {} : { only: number('only', values.only) }),
    print: (text) => process.stdout.write(text),
  })
  process.exitCode = result.violationCount === 0 ? 0 : 1
}
