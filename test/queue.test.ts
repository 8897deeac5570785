/**
 * Durable delivery (upstream.delivery: queued) end to end: real `botgate serve` processes, the
 * machine's Redis under a prefix of this run's own, and a real upstream that the tests stop,
 * fail and slow down. Telegram's side must see only 200s while the bot is away; afterwards every
 * update reaches the bot once, in each chat's order.
 */

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, runCli, secret, tempDir } from './helpers/gateway.js'
import {
  client,
  keysAndCleanup,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from './helpers/redis.js'
import { type Received, TestUpstream } from './helpers/upstream.js'
import { until } from './helpers/wait.js'

const available = await sharedRedisAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'

/** A message update of `chat` whose text carries its place in that chat's sequence. */
function chatUpdate(chat: number, seq: number, updateId: number): string {
  const type = chat < 0 ? 'supergroup' : 'private'
  return JSON.stringify(
    messageUpdate(
      {
        message_id: seq,
        chat: chat < 0 ? { id: chat, type, title: 'Team' } : { id: chat, type, first_name: 'Ann' },
        from: { id: Math.abs(chat) + 7, is_bot: false, first_name: 'Ann' },
        text: `${chat}:${seq}`,
      },
      updateId,
    ),
  )
}

/** The chat and sequence of a delivered update, from its text. */
function placeOf(received: Received): { chat: number; seq: number; id: number } {
  const update = JSON.parse(received.body.toString('utf8')) as {
    update_id: number
    message: { text: string }
  }
  const [chat, seq] = update.message.text.split(':').map(Number) as [number, number]
  return { chat, seq, id: update.update_id }
}

/** Every chat's sequence arrived in order, each update exactly once. */
function expectInOrderOnce(received: readonly Received[], sent: ReadonlyMap<number, number>): void {
  const ids = received.map((r) => placeOf(r).id)
  expect(new Set(ids).size).toBe(ids.length)
  const byChat = new Map<number, number[]>()
  for (const r of received) {
    const { chat, seq } = placeOf(r)
    byChat.set(chat, [...(byChat.get(chat) ?? []), seq])
  }
  for (const [chat, count] of sent)
    expect(byChat.get(chat)).toEqual(Array.from({ length: count }, (_, i) => i))
}

function queuedConfig(upstream: string, prefix: string, queue: string, top = ''): string {
  return botConfig({
    upstream,
    secret: SECRET,
    top: `store:
  type: redis
  url: ${SHARED_REDIS_URL}
  prefix: "${prefix}"
  timeout: 1s
shutdown_grace: 5s
${top}`,
    bot: `      delivery: queued
      queue: { ${queue} }`,
  })
}

const FAST = 'retry_min: 50ms, retry_max: 400ms, lease: 2s, poll: 50ms'

describe.skipIf(!available)('queued delivery', () => {
  let upstream: TestUpstream
  let admin: Redis
  const gateways: RunningGateway[] = []
  const prefixes: string[] = []

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
  })

  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.stop('SIGKILL')))
    for (const prefix of prefixes.splice(0)) await keysAndCleanup(admin, prefix)
    upstream.received.length = 0
    upstream.respond = (_request, response) => {
      response.writeHead(200)
      response.end()
    }
  })

  afterAll(async () => {
    await upstream.close()
    admin.disconnect()
  })

  async function start(queue: string, top = ''): Promise<{ gateway: RunningGateway; prefix: string }> {
    const prefix = testPrefix('queue')
    prefixes.push(prefix)
    const gateway = await RunningGateway.start({ config: queuedConfig(upstream.url, prefix, queue, top) })
    gateways.push(gateway)
    return { gateway, prefix }
  }

  it('answers Telegram 200 at once and delivers the exact bytes with the same headers as direct', async () => {
    const { gateway } = await start(FAST)
    const body = chatUpdate(4242, 0, 5001)
    const reply = await post(`${gateway.webhook}${PATH}`, body, telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('')
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'queued', status: 200, update_id: 5001 })
    await until(() => upstream.received.length === 1, 5000, 'the delivery')
    const delivered = upstream.received[0] as Received
    expect(delivered.body.equals(Buffer.from(body))).toBe(true)
    expect(delivered.headers['content-type']).toBe('application/json')
    expect(delivered.headers['x-request-id']).toBe(reply.headers['x-request-id'])
    expect(delivered.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(delivered.headers['x-telegram-bot-api-secret-token']).toBeUndefined()
    const done = await gateway.waitFor((l) => l.msg === 'queued update delivered')
    expect(done).toMatchObject({ bot: 'bot', update_id: 5001, chat_id: 4242, status: 200, attempts: 0 })
    // A copy Telegram sends again is a duplicate, as with direct delivery.
    const again = await post(`${gateway.webhook}${PATH}`, body, telegramHeaders(SECRET))
    expect(again.status).toBe(200)
    expect((await gateway.requestLine(again.headers['x-request-id'] as string)).reason).toBe(
      'duplicate_update',
    )
    const metrics = await gateway.metrics()
    expect(metrics).toMatch(/botgate_queue_deliveries_total\{bot="bot",outcome="delivered"\} 1/)
    expect(metrics).toMatch(/botgate_requests_total\{bot="bot",reason="queued",outcome="queued"\} 1/)
  })

  it('delivers from the start, not a lease tick after Redis answers', async () => {
    // A lease of 60 s renews every 20 s; the shards are taken as soon as the connection is up.
    const { gateway } = await start('retry_min: 50ms, lease: 60s, poll: 50ms')
    const reply = await post(`${gateway.webhook}${PATH}`, chatUpdate(4343, 0, 5002), telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
    await until(() => upstream.received.length === 1, 8000, 'the first delivery')
  })

  it('keeps every update while the upstream is down and delivers each once, in order per chat', async () => {
    const { gateway } = await start(`shards: 3, max_inflight: 8, ${FAST}`)
    let down = true
    upstream.respond = (_request, response) => {
      response.writeHead(down ? 502 : 200)
      response.end()
    }
    const chats = [101, 102, 103, -100200300, 104, 105]
    const sent = new Map<number, number>()
    let updateId = 6000
    for (let seq = 0; seq < 15; seq++) {
      const replies = await Promise.all(
        chats.map((chat) =>
          post(`${gateway.webhook}${PATH}`, chatUpdate(chat, seq, updateId++), telegramHeaders(SECRET)),
        ),
      )
      for (const reply of replies) expect(reply.status).toBe(200)
      for (const chat of chats) sent.set(chat, seq + 1)
    }
    // The bot fails every delivery meanwhile: they are retried, nothing reaches it for good.
    await until(() => upstream.received.length >= 12, 5000, 'failed attempts')
    await gateway.waitFor((l) => l.msg === 'queued delivery failed')
    upstream.received.length = 0
    down = false
    await until(
      () => upstream.received.filter((r) => r.body.length > 0).length >= 90,
      20_000,
      'all deliveries',
    )
    await new Promise((resolve) => setTimeout(resolve, 300)) // nothing more may come
    expect(upstream.received.length).toBe(90)
    expectInOrderOnce(upstream.received, sent)
  })

  it('answers 503 + Retry-After when the queue holds max_len, and takes updates again once delivered', async () => {
    const { gateway } = await start(`max_len: 3, ${FAST}`)
    let down = true
    upstream.respond = (_request, response) => {
      response.writeHead(down ? 500 : 200)
      response.end()
    }
    const statuses: number[] = []
    for (let i = 0; i < 3; i++)
      statuses.push(
        (await post(`${gateway.webhook}${PATH}`, chatUpdate(7, i, 7000 + i), telegramHeaders(SECRET))).status,
      )
    expect(statuses).toEqual([200, 200, 200])
    const full = await post(`${gateway.webhook}${PATH}`, chatUpdate(7, 3, 7003), telegramHeaders(SECRET))
    expect(full.status).toBe(503)
    expect(full.headers['retry-after']).toBe('5')
    expect(JSON.parse(full.body)).toEqual({ ok: false, error: 'queue_full' })
    down = false
    await until(
      () => upstream.received.filter((r) => r.headers['content-type'] !== undefined).length >= 3 && !down,
      5000,
      'the backlog',
    )
    await until(
      async () =>
        (await post(`${gateway.webhook}${PATH}`, chatUpdate(7, 3, 7003), telegramHeaders(SECRET))).status ===
        200,
      5000,
      'room in the queue',
    )
  })

  it('moves an update the bot keeps failing to the dead letters, lists, replays and drops them from the CLI', async () => {
    const { gateway, prefix } = await start(`max_attempts: 2, ${FAST}`)
    let down = true
    upstream.respond = (_request, response) => {
      response.writeHead(down ? 500 : 200)
      response.end()
    }
    const first = chatUpdate(55, 0, 8001)
    expect((await post(`${gateway.webhook}${PATH}`, first, telegramHeaders(SECRET))).status).toBe(200)
    expect(
      (await post(`${gateway.webhook}${PATH}`, chatUpdate(56, 0, 8002), telegramHeaders(SECRET))).status,
    ).toBe(200)
    const dead = await gateway.waitFor(
      (l) => l.msg === 'queued update moved to the dead letters' && l.update_id === 8001,
    )
    expect(dead).toMatchObject({ why: 'max_attempts: upstream_error', attempts: 2, chat_id: 55 })
    await until(async () => (await admin.xlen(`${prefix}{bot}:queue:dead`)) === 2, 5000, 'two dead letters')
    const metrics = await gateway.metrics()
    expect(metrics).toMatch(/botgate_queue_deliveries_total\{bot="bot",outcome="dead"\} 2/)

    const list = await runCli(['queue', 'list', 'bot', '--config', 'gateway.yaml'], { cwd: gateway.dir })
    expect(list.stderr).toBe('')
    expect(list.code).toBe(0)
    expect(list.stdout).toContain('dead letters: 2')
    expect(list.stdout).toMatch(/update 8001 .*chat 55 .*attempts 2 .*max_attempts: upstream_error/)
    const ids = [...list.stdout.matchAll(/^(\d+-\d+) /gm)].map((m) => m[1] as string)
    expect(ids).toHaveLength(2)

    down = false
    upstream.received.length = 0
    const replay = await runCli(['queue', 'replay', 'bot', ids[0] as string, '--config', 'gateway.yaml'], {
      cwd: gateway.dir,
    })
    expect(replay.code).toBe(0)
    expect(replay.stdout).toContain('replayed 1')
    await until(() => upstream.received.length === 1, 5000, 'the replayed delivery')
    expect((upstream.received[0] as Received).body.equals(Buffer.from(first))).toBe(true)

    const drop = await runCli(['queue', 'drop', 'bot', '--all', '--config', 'gateway.yaml'], {
      cwd: gateway.dir,
    })
    expect(drop.code).toBe(0)
    expect(drop.stdout).toContain('dropped 1')
    expect(await admin.xrange(`${prefix}{bot}:queue:dead`, '-', '+')).toEqual([])
  })

  it('answers 503 queue_unavailable and says so at /readyz when Redis cannot be reached', async () => {
    const prefix = testPrefix('queue')
    const config = queuedConfig(upstream.url, prefix, FAST).replace(SHARED_REDIS_URL, 'redis://127.0.0.1:1')
    const gateway = await RunningGateway.start({
      config: config.replace('timeout: 1s', 'timeout: 100ms\n  connect_timeout: 200ms'),
    })
    gateways.push(gateway)
    const reply = await post(`${gateway.webhook}${PATH}`, chatUpdate(9, 0, 9001), telegramHeaders(SECRET))
    expect(reply.status).toBe(503)
    expect(reply.headers['retry-after']).toBeDefined()
    const ready = await fetch(`${gateway.admin}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { queue: string }).queue).toMatch(/^redis /)
  })
})

describe('queued delivery config', () => {
  it('is refused without store: redis', async () => {
    const dir = tempDir()
    writeFileSync(
      path.join(dir, 'gateway.yaml'),
      botConfig({ upstream: 'http://127.0.0.1:9/hook', secret: SECRET, bot: '      delivery: queued' }),
    )
    const result = await runCli(['check', '--config', 'gateway.yaml'], { cwd: dir })
    expect(result.code).toBe(1)
    expect(result.stderr + result.stdout).toContain('queued needs store: redis')
  })
})
