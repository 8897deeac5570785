// The queued-delivery benchmark (issue 26): Telegram's side of a slow bot. The same bot (answers
// each update after --delay ms) behind botgate with upstream.delivery: direct and with queued
// (store: redis), driven in turn by the same load, in interleaved rounds. Direct holds each of
// Telegram's connections for the bot's whole answer; queued answers once Redis has the update and
// delivers at the bot's pace. Prints Telegram-side req/s, p50 and p99, and what reached the bot.
//
//   npm run bench:queue -- [--seconds 6] [--rounds 3] [--connections 40] [--delay 200]
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { median, sleep, startBotgate, startNode, stop } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '40' },
    delay: { type: 'string', default: '200' },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)
const delay = Number(values.delay)
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `botgate-bench-queue-${process.pid}:`

const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
redis.on('error', () => {})
try {
  await redis.connect()
} catch {
  console.log(`note: no Redis answers at ${redisUrl}: the queued row needs one`)
  process.exit(0)
}

const bot = await startNode(path.join(root, 'bench/upstream.mjs'), [], {
  ...process.env,
  DELAY_MS: String(delay),
})
const work = mkdtempSync(path.join(tmpdir(), 'botgate-bench-queue-'))
const secret = randomBytes(24).toString('base64url')
const segment = randomBytes(12).toString('hex')

function config(name, delivery) {
  const file = path.join(work, `${name}.yaml`)
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
store: { type: redis, url: "${redisUrl}", prefix: "${prefix}${name}:", timeout: 1s }
bots:
  - name: bench
    path: /tg/${segment}
    secret_token: ${secret}
    max_inflight: 1000
    upstream:
      url: http://127.0.0.1:${bot.port}/
      ${delivery}
    policy: { sources: { allow: [any] } }
`,
  )
  return file
}

const direct = await startBotgate(
  path.join(root, 'dist/main.js'),
  config('direct', 'delivery: direct'),
  path.join(work, 'direct.log'),
)
const queued = await startBotgate(
  path.join(root, 'dist/main.js'),
  config('queued', 'delivery: queued\n      queue: { max_len: 10000000, max_inflight: 40 }'),
  path.join(work, 'queued.log'),
)
const targets = [
  { name: 'direct', gateway: direct },
  { name: 'queued', gateway: queued },
]

const body = readFileSync(path.join(root, 'bench/update.json'), 'utf8').trim()
let updateId = 100_000_000

async function received() {
  return (await (await fetch(`http://127.0.0.1:${bot.port}/`)).json()).received
}

async function drive(target, duration) {
  const before = await received()
  const result = await autocannon({
    url: `http://${target.gateway.webhook}/tg/${segment}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
    connections,
    duration,
    requests: [
      {
        // 5,000 chats: one update of a chat in flight never holds the queue back.
        setupRequest: (request) => {
          const id = ++updateId
          const chat = 318_000_000 + (id % 5000)
          return {
            ...request,
            body: body.replace(/"update_id":\d+/, `"update_id":${id}`).replaceAll('318273645', String(chat)),
          }
        },
      },
    ],
  })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors,
    delivered: ((await received()) - before) / duration,
  }
}

console.log(
  `queued-delivery benchmark: autocannon, ${connections} connections, ${rounds} rounds of ${seconds} s, the bot answers after ${delay} ms`,
)
for (const target of targets) await drive(target, 2) // warm-up
const runs = { direct: [], queued: [] }
for (let round = 0; round < rounds; round++)
  for (const target of targets) {
    runs[target.name].push(await drive(target, seconds))
    await sleep(500)
  }
console.log('             req/s   p50 ms   p99 ms   non-2xx   reached the bot /s')
const of = (name, key) => median(runs[name].map((r) => r[key]))
for (const { name } of targets)
  console.log(
    `  ${name.padEnd(9)} ${of(name, 'rps').toFixed(0).padStart(7)} ${of(name, 'p50').toFixed(1).padStart(8)} ${of(name, 'p99').toFixed(1).padStart(8)} ${String(runs[name].reduce((s, r) => s + r.errors, 0)).padStart(9)} ${of(name, 'delivered').toFixed(0).padStart(12)}`,
  )
console.log(
  `  queued: ${(of('queued', 'rps') / of('direct', 'rps')).toFixed(1)}x the req/s Telegram gets answered, p99 ${(of('queued', 'p99') / of('direct', 'p99')).toFixed(2)}x; the backlog drains at the bot's pace (max_inflight 40 / ${delay} ms)`,
)
await Promise.all([direct, queued, bot].map((process) => stop(process.child)))
const keys = await redis.keys(`${prefix}*`)
if (keys.length > 0) await redis.del(...keys)
redis.disconnect()
