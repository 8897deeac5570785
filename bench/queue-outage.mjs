// The bot outage run of issue 26 (its "done means"): a steady flow of updates from many chats
// through a real `botgate serve` with upstream.delivery: queued, while the example bot
// (examples/python-echo, answering each text message with a webhook reply that echoes it) is
// stopped for --outage seconds. Telegram's side must see only 200s; once the bot is back, every
// update must reach it once, in each chat's order, and each echo must reach the Bot API stand-in
// (which records every sendMessage) through botgate's reply executor and egress pacing.
//
//   npm run bench:queue-outage -- [--outage 300] [--rate 8] [--chats 400] [--before 20] [--after 60]
//
// Exits 1 when anything of that does not hold. Needs python3 and a Redis (BENCH_REDIS_URL).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { sleep, startBotgate, stop } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    outage: { type: 'string', default: '300' },
    rate: { type: 'string', default: '8' },
    chats: { type: 'string', default: '400' },
    before: { type: 'string', default: '20' },
    after: { type: 'string', default: '60' },
    'drain-timeout': { type: 'string', default: '900' },
  },
})
const outage = Number(values.outage)
const rate = Number(values.rate)
const chats = Number(values.chats)
const drainTimeout = Number(values['drain-timeout'])
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `botgate-bench-outage-${process.pid}:`
const started = Date.now()
const clock = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`

const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
redis.on('error', () => {})
try {
  await redis.connect()
} catch {
  console.log(`note: no Redis answers at ${redisUrl}: the outage run needs one`)
  process.exit(0)
}

// The Bot API stand-in: records every sendMessage (chat and text) and answers it as Telegram does.
const sent = new Map() // chat id -> texts, in the order they arrived
let calls = 0
const api = http.createServer((request, response) => {
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', () => {
    const params = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
    calls++
    if (request.url.endsWith('/sendMessage')) {
      if (!sent.has(params.chat_id)) sent.set(params.chat_id, [])
      sent.get(params.chat_id).push(params.text)
    }
    const chat = { id: params.chat_id, type: 'private' }
    const body = JSON.stringify({
      ok: true,
      result: { message_id: calls, date: 1763712000, chat, text: params.text },
    })
    response.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
})
await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve))

const work = mkdtempSync(path.join(tmpdir(), 'botgate-bench-outage-'))
const secret = randomBytes(24).toString('base64url')
const upstreamSecret = randomBytes(24).toString('base64url')
const segment = randomBytes(12).toString('hex')
const token = `7350:AA${randomBytes(24).toString('base64url')}`

/** Starts the example bot on `port` (0: any); resolves with its process and port. */
function startBot(port) {
  const child = spawn('python3', [path.join(root, 'examples/python-echo/bot.py')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PORT: String(port), BOTGATE_UPSTREAM_SECRET: upstreamSecret },
  })
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error('the example bot did not start')), 10_000)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', function first(chunk) {
      text += chunk
      const listening = /listening on [^:]+:(\d+)/.exec(text)
      if (!listening) return
      clearTimeout(timer)
      child.stdout.off('data', first)
      child.stdout.resume() // one line per update: read and let go
      resolve({ child, port: Number(listening[1]) })
    })
    child.once('exit', (code) => reject(new Error(`the example bot exited with ${code}`)))
  })
}

let bot = await startBot(0)
const config = path.join(work, 'botgate.yaml')
writeFileSync(
  config,
  `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
store: { type: redis, url: "${redisUrl}", prefix: "${prefix}", timeout: 1s }
egress: { listen: 127.0.0.1:0, api_base: "http://127.0.0.1:${api.address().port}" }
bots:
  - name: outage
    path: /tg/${segment}
    secret_token: ${secret}
    token: "${token}"
    upstream:
      url: http://127.0.0.1:${bot.port}/webhook
      secret_token: ${upstreamSecret}
      delivery: queued
    policy: { sources: { allow: [any] } }
`,
)
const gateway = await startBotgate(path.join(root, 'dist/main.js'), config, path.join(work, 'botgate.log'))

// The flow: `rate` updates a second, round-robin over `chats` private chats, each text naming
// its update, so the echo says which update it answers and in which order.
const sample = JSON.parse(readFileSync(path.join(root, 'bench/update.json'), 'utf8'))
const expected = new Map() // chat id -> texts, in the order Telegram sent them
const statuses = new Map()
let next = 0
function update() {
  const n = next++
  const chat = 600_000_000 + (n % chats)
  const text = `update ${n}`
  if (!expected.has(chat)) expected.set(chat, [])
  expected.get(chat).push(text)
  const message = { ...sample.message, message_id: n + 1, text, date: Math.floor(Date.now() / 1000) }
  delete message.entities
  message.from = { ...message.from, id: chat }
  message.chat = { ...message.chat, id: chat }
  return JSON.stringify({ update_id: 100_000 + n, message })
}
let flowing = true
const inflight = new Set()
async function flow() {
  const gap = 1000 / rate
  let due = Date.now()
  while (flowing) {
    // One chat's updates go one at a time, as Telegram sends them (it waits for each answer).
    const body = update()
    const request = fetch(`http://${gateway.webhook}/tg/${segment}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
      body,
      signal: AbortSignal.timeout(60_000),
    })
      .then(async (response) => {
        await response.arrayBuffer()
        return response.status
      })
      .catch((error) => `error ${error.name}`)
      .then((status) => statuses.set(status, (statuses.get(status) ?? 0) + 1))
    inflight.add(request)
    request.finally(() => inflight.delete(request))
    due += gap
    await sleep(Math.max(0, due - Date.now()))
  }
  await Promise.all(inflight)
}

const received = () => [...sent.values()].reduce((sum, texts) => sum + texts.length, 0)
console.log(
  `queued-delivery outage run: ${rate} updates/s over ${chats} chats; the example bot stops after ${values.before} s for ${outage} s`,
)
const flowing_ = flow()
await sleep(Number(values.before) * 1000)
console.log(`${clock()}  stopping the example bot (${received()} echoes so far)`)
await stop(bot.child)
const stoppedAt = Date.now()
while (Date.now() - stoppedAt < outage * 1000) {
  await sleep(Math.min(30_000, outage * 1000 - (Date.now() - stoppedAt)))
  console.log(`${clock()}  bot down: ${next} updates sent, ${received()} echoes at the Bot API`)
}
bot = await startBot(bot.port)
const backAt = Date.now()
console.log(`${clock()}  the example bot is back; the flow goes on for ${values.after} s`)
await sleep(Number(values.after) * 1000)
flowing = false
await flowing_
const total = next
console.log(`${clock()}  the flow stopped: ${total} updates sent; waiting for every echo`)
const drainDeadline = Date.now() + drainTimeout * 1000
let lastReport = Date.now()
while (received() < total && Date.now() < drainDeadline) {
  await sleep(500)
  if (Date.now() - lastReport >= 30_000) {
    lastReport = Date.now()
    console.log(`${clock()}  ${received()} of ${total} echoes at the Bot API`)
  }
}
const drainedAt = Date.now()
await sleep(6000) // anything delivered twice would show up now, and the queue gauges are fresh

// The verdict.
let missing = 0
let duplicated = 0
let outOfOrder = 0
for (const [chat, texts] of expected) {
  const got = sent.get(chat) ?? []
  const seen = new Set()
  for (const text of got) {
    if (seen.has(text)) duplicated++
    seen.add(text)
  }
  missing += texts.filter((text) => !seen.has(text)).length
  const order = got.filter((text, i) => got.indexOf(text) === i)
  if (order.some((text, i) => text !== texts[i])) outOfOrder++
}
const answers = [...statuses].map(([status, count]) => `${status}: ${count}`).join(', ')
const metrics = await (await fetch(`http://${gateway.admin}/metrics`)).text()
const metric = (name) =>
  metrics
    .split('\n')
    .filter((line) => line.startsWith(name))
    .map((line) => Number(line.split(' ').at(-1)))
    .reduce((sum, value) => sum + value, 0)
console.log(`Telegram's side: ${answers}`)
console.log(
  `the Bot API got ${received()} echoes of ${total} updates: ${missing} missing, ${duplicated} twice, ${outOfOrder} of ${expected.size} chats out of order`,
)
console.log(
  `the backlog drained ${((drainedAt - backAt) / 1000).toFixed(0)} s after the bot came back; queue length now ${metric('botgate_queue_length{')}; dead letters ${metric('botgate_queue_dead_letters{')}; failed attempts retried ${metric('botgate_queue_deliveries_total{bot="outage",outcome="retried"}')}`,
)
const ok =
  statuses.size === 1 && statuses.get(200) === total && missing === 0 && duplicated === 0 && outOfOrder === 0
console.log(ok ? 'PASS' : 'FAIL')
await stop(gateway.child)
await stop(bot.child)
api.close()
const keys = await redis.keys(`${prefix}*`)
if (keys.length > 0) await redis.del(...keys)
redis.disconnect()
process.exit(ok ? 0 : 1)
