// The egress benchmark (issue 25): sendMessage calls through botgate's egress against the same
// calls straight to a Bot API stand-in (bench/bot-api.mjs), with pacing off and on (limits so high
// they never bind, over 10,000 chats, so what is measured is the pacer's cost, not its waiting).
// Interleaved rounds; prints req/s, p50, p99 and botgate's CPU time per call, and the overhead.
//
//   npm run bench:egress -- [--seconds 6] [--rounds 3] [--connections 20]
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { cpuMs, median, startBotgate, startNode, stop } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '20' },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)

const TOKEN = `4242:${randomBytes(24).toString('base64url')}`
const CREDENTIAL = `4242:${randomBytes(24).toString('base64url')}`
const api = await startNode(path.join(root, 'bench/bot-api.mjs'))
const work = mkdtempSync(path.join(tmpdir(), 'botgate-bench-egress-'))

function config(name, pacing) {
  const file = path.join(work, `${name}.yaml`)
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
egress:
  listen: 127.0.0.1:0
  api_base: http://127.0.0.1:${api.port}
  pacing: ${pacing}
bots:
  - name: bench
    path: /tg/${randomBytes(12).toString('hex')}
    secret_token: ${randomBytes(24).toString('base64url')}
    upstream: { url: "http://127.0.0.1:9" }
    token: "${TOKEN}"
    egress: { credential: "${CREDENTIAL}" }
    policy: { sources: { allow: [any] }, outbound: { allow_methods: [messaging] } }
`,
  )
  return file
}

const started = async (name, pacing) => {
  const gateway = await startBotgate(
    path.join(root, 'dist/main.js'),
    config(name, pacing),
    path.join(work, `${name}.log`),
  )
  const { readFileSync } = await import('node:fs')
  const line = readFileSync(path.join(work, `${name}.log`), 'utf8')
    .split('\n')
    .find((l) => l.includes('"botgate listening"'))
  return { ...gateway, egress: JSON.parse(line).egress }
}
const off = await started('pacing-off', '{ enabled: false }')
const on = await started(
  'pacing-on',
  '{ global: { rate: 10000000/s, burst: 10000 }, private_chat: { rate: 10000000/s, burst: 10000 }, group_chat: { rate: 10000000/s, burst: 10000 }, max_queue: 100000 }',
)

const targets = [
  { name: 'direct', url: `http://127.0.0.1:${api.port}/bot${TOKEN}/sendMessage` },
  { name: 'pacing off', url: `http://${off.egress}/bot${CREDENTIAL}/sendMessage`, pid: off.child.pid },
  { name: 'pacing on', url: `http://${on.egress}/bot${CREDENTIAL}/sendMessage`, pid: on.child.pid },
]

async function drive(target, duration) {
  let n = 0
  const before = target.pid === undefined ? 0 : cpuMs(target.pid)
  const result = await autocannon({
    url: target.url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections,
    duration,
    requests: [
      {
        // 10,000 private chats: per-chat order and one-in-flight never hold a call back.
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ chat_id: 1 + (n++ % 10_000), text: 'Your order is ready for pickup.' }),
        }),
      },
    ],
  })
  const cpu = target.pid === undefined ? Number.NaN : cpuMs(target.pid) - before
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors,
    cpuUs: (cpu * 1000) / Math.max(1, result.requests.total),
  }
}

console.log(`egress benchmark: autocannon, ${connections} connections, ${rounds} rounds of ${seconds} s`)
for (const target of targets) await drive(target, 3) // warm-up
const runs = Object.fromEntries(targets.map((t) => [t.name, []]))
for (let round = 0; round < rounds; round++)
  for (const target of targets) runs[target.name].push(await drive(target, seconds))

const summary = (name) => {
  const list = runs[name]
  const of = (key) => median(list.map((r) => r[key]))
  return {
    rps: of('rps'),
    p50: of('p50'),
    p99: of('p99'),
    cpuUs: of('cpuUs'),
    errors: list.reduce((s, r) => s + r.errors, 0),
  }
}
const direct = summary('direct')
console.log('             req/s   p50 ms   p99 ms  botgate CPU us/call  errors')
for (const target of targets) {
  const s = summary(target.name)
  console.log(
    `  ${target.name.padEnd(11)} ${s.rps.toFixed(0).padStart(6)} ${s.p50.toFixed(2).padStart(8)} ${s.p99.toFixed(2).padStart(8)} ${Number.isNaN(s.cpuUs) ? '       -' : s.cpuUs.toFixed(0).padStart(8)}              ${s.errors}`,
  )
  if (target.name !== 'direct')
    console.log(
      `  ${''.padEnd(11)} ${(s.rps / direct.rps).toFixed(2)}x req/s, p50 +${(s.p50 - direct.p50).toFixed(2)} ms, p99 +${(s.p99 - direct.p99).toFixed(2)} ms`,
    )
}
await Promise.all([off, on, api].map((process) => stop(process.child)))
