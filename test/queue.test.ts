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
import { type Received, type Responder, TestUpstream } from './helpers/upstream.js'
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

/** The (chat, seq) of each update the bot took, in arrival order, and how many of a chat ran at once. */
class ChatLog {
  readonly taken: { chat: number; seq: number }[] = []
  mostAtOnce = 0
  readonly #running = new Map<number, number>()

  /**
   * A responder that records each update and answers 200 after `delayMs` (or as `answer` says).
   * An update counts as under way until its answer is sent or the gateway closes the connection.
   */
  responder(delayMs: number, answer: () => number = () => 200): Responder {
    return (request, response) => {
      const { chat, seq } = placeOf(request)
      this.#running.set(chat, (this.#running.get(chat) ?? 0) + 1)
      this.mostAtOnce = Math.max(this.mostAtOnce, this.#running.get(chat) ?? 0)
      let over = false
      const end = () => {
        if (over) return
        over = true
        this.#running.set(chat, (this.#running.get(chat) ?? 1) - 1)
      }
      const timer = setTimeout(() => {
        end()
        const status = answer()
        if (status === 200) this.taken.push({ chat, seq })
        response.writeHead(status)
        response.end()
      }, delayMs)
      response.on('close', () => {
        clearTimeout(timer)
        end()
      })
    }
  }

  /** A chat's sequence as taken, repeats in a row folded (one update delivered again at once). */
  of(chat: number): number[] {
    const list: number[] = []
    for (const entry of this.taken)
      if (entry.chat === chat && list[list.length - 1] !== entry.seq) list.push(entry.seq)
    return list
  }
}

const FAST = 'retry_min: 50ms, retry_max: 400ms, lease: 2s, poll: 50ms'

describe.skipIf(!available)('queued delivery', () => {
  let upstream: TestUpstream
  let admin: Redis
  const gateways: RunningGateway[] = []
  const prefixes: string[] = []
  const users: string[] = []

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
  })

  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.stop('SIGKILL')))
    for (const prefix of prefixes.splice(0)) await keysAndCleanup(admin, prefix)
    for (const user of users.splice(0)) await admin.call('ACL', 'DELUSER', user)
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

  /** A gateway with this queue; `prefix` another's (a replica), `redisUrl` the Redis it uses. */
  async function start(
    queue: string,
    options: { prefix?: string; redisUrl?: string } = {},
  ): Promise<{ gateway: RunningGateway; prefix: string }> {
    const prefix = options.prefix ?? testPrefix('queue')
    if (!prefixes.includes(prefix)) prefixes.push(prefix)
    const text = queuedConfig(upstream.url, prefix, queue)
    const gateway = await RunningGateway.start({
      config: options.redisUrl === undefined ? text : text.replace(SHARED_REDIS_URL, options.redisUrl),
    })
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

  it('sends many updates of one shard at once without a warning on stderr', async () => {
    // Every send of a shard listens to the shard's lease signal: more than ten at once made Node
    // print MaxListenersExceededWarning, a leak warning, outside the JSON log.
    const { gateway } = await start(`${FAST}, shards: 1, max_inflight: 20`)
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    upstream.respond = async (_request, response) => {
      await gate
      response.writeHead(200).end()
    }
    for (let i = 0; i < 16; i++) {
      const reply = await post(
        `${gateway.webhook}${PATH}`,
        chatUpdate(7000 + i, 0, 6000 + i),
        telegramHeaders(SECRET),
      )
      expect(reply.status).toBe(200)
    }
    await until(() => upstream.received.length === 16, 8000, 'sixteen sends at once')
    release()
    await until(
      () => gateway.lines.filter((l) => l.msg === 'queued update delivered').length === 16,
      8000,
      'the deliveries',
    )
    expect(gateway.stderr).not.toContain('MaxListenersExceededWarning')
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
    // The two chats fail side by side: either may have died first.
    const firstId = /^(\d+-\d+) update 8001 /m.exec(list.stdout)?.[1] as string

    down = false
    upstream.received.length = 0
    const replay = await runCli(['queue', 'replay', 'bot', firstId, '--config', 'gateway.yaml'], {
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

  /** A Redis ACL user of this test's own with every right: the URL the gateway connects with. */
  async function aclUser(): Promise<{ name: string; url: string }> {
    const name = `botgate-test-${users.length}-${Date.now()}`
    users.push(name)
    await admin.call('ACL', 'SETUSER', name, 'on', '>pw', '~*', '&*', '+@all')
    const url = new URL(SHARED_REDIS_URL)
    url.username = name
    url.password = 'pw'
    return { name, url: url.toString() }
  }

  const send = (gateway: RunningGateway, chat: number, seq: number, id: number) =>
    post(`${gateway.webhook}${PATH}`, chatUpdate(chat, seq, id), telegramHeaders(SECRET))

  it('refuses ids with --all, reports ids that are not dead letters, and names bad ids, from the CLI', async () => {
    const prefix = testPrefix('queue')
    prefixes.push(prefix)
    const dir = tempDir()
    writeFileSync(path.join(dir, 'gateway.yaml'), queuedConfig(upstream.url, prefix, `shards: 1, ${FAST}`))
    const dead = `${prefix}{bot}:queue:dead`
    const letters: string[] = []
    for (let i = 0; i < 2; i++)
      letters.push(
        (await admin.xadd(
          dead,
          '*',
          'b',
          chatUpdate(31, i, 31_000 + i),
          'i',
          String(31_000 + i),
          'c',
          '31',
          'why',
          'max_age',
          'n',
          '3',
          'died',
          String(Date.now()),
        )) as string,
      )
    const cli = (...args: string[]) => runCli(['queue', ...args, '--config', 'gateway.yaml'], { cwd: dir })
    // One id and --all: a slip that would drop every dead letter; refused, nothing dropped.
    const both = await cli('drop', 'bot', letters[0] as string, '--all')
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('give either dead letter ids or --all, not both')
    expect(await admin.xlen(dead)).toBe(2)
    const missing = await cli('replay', 'bot', '1-0', letters[1] as string)
    expect(missing.code).toBe(1)
    expect(missing.stdout).toBe('replayed 1\n')
    expect(missing.stderr).toBe('botgate queue: no dead letter 1-0 (botgate queue list shows them)\n')
    expect(await admin.xlen(`${prefix}{bot}:queue:0`)).toBe(1)
    const huge = await cli('drop', 'bot', '99999999999999999999999-0')
    expect(huge.code).toBe(2)
    expect(huge.stderr).toContain('not a dead letter id: 99999999999999999999999-0')
    expect(await admin.xlen(dead)).toBe(1)
  })

  it('waits a backoff longer than a timer holds instead of retrying at once', async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(500)
      response.end()
    }
    // 25 days: past the 24.8 days a Node.js timer keeps, which would fire it at once.
    const { gateway } = await start('max_attempts: 3, retry_min: 25d, retry_max: 25d, poll: 50ms')
    expect((await send(gateway, 33, 0, 33_000)).status).toBe(200)
    await gateway.waitFor((l) => l.msg === 'queued delivery failed')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(upstream.received).toHaveLength(1)
    expect(gateway.lines.some((l) => l.msg === 'queued update moved to the dead letters')).toBe(false)
  })

  it('delivers again after Redis lost the stream and its consumer group', async () => {
    const log = new ChatLog()
    upstream.respond = log.responder(0)
    const { gateway, prefix } = await start(`shards: 1, ${FAST}`)
    expect((await send(gateway, 21, 0, 21_000)).status).toBe(200)
    await until(() => log.taken.length === 1, 5000, 'the first delivery')
    // A Redis restarted without persistence, or the key evicted: the group is gone with it.
    await admin.del(`${prefix}{bot}:queue:0`)
    expect((await send(gateway, 21, 1, 21_001)).status).toBe(200)
    await until(() => log.taken.length === 2, 8000, 'the delivery after the group was lost')
    expect(log.of(21)).toEqual([0, 1])
  })

  it('takes a shard afresh when its lease lapsed, and delivers what another replica had read', async () => {
    const log = new ChatLog()
    upstream.respond = log.responder(0)
    // Long poll: this replica reads only what it takes in itself (and at the start).
    const { gateway, prefix } = await start('shards: 1, retry_min: 50ms, lease: 3s, poll: 30s')
    await gateway.waitFor((l) => l.msg === 'queue shard taken')
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Another replica took the shard while this one could not reach Redis, read an update, and
    // died; its lease ran out. This one finds the lease free at its next renewal.
    const stream = `${prefix}{bot}:queue:0`
    await admin.xadd(
      stream,
      '*',
      'b',
      chatUpdate(22, 0, 22_000),
      't',
      String(Date.now()),
      'i',
      '22000',
      'y',
      'message',
      'r',
      'ghost-request',
      'f',
      '127.0.0.1',
      'p',
      'https',
      'c',
      '22',
      'u',
      '29',
    )
    const read = await admin.xreadgroup('GROUP', 'botgate', 'ghost', 'COUNT', 10, 'STREAMS', stream, '>')
    expect(read).not.toBeNull()
    await admin.del(`${prefix}{bot}:queue:lease:0`)
    await until(() => log.taken.length === 1, 8000, "the other replica's update")
    expect((await send(gateway, 22, 1, 22_001)).status).toBe(200)
    await until(() => log.taken.length === 2, 5000, 'the next update')
    expect(log.of(22)).toEqual([0, 1])
  })

  it('keeps one update of a chat under way when a reload lets a shard go during a send', async () => {
    const log = new ChatLog()
    const slow = log.responder(3000)
    const quick = log.responder(0)
    upstream.respond = (request, response) => (placeOf(request).seq === 0 ? slow : quick)(request, response)
    const { gateway, prefix } = await start(`shards: 1, ${FAST}`)
    for (let seq = 0; seq < 3; seq++) expect((await send(gateway, 24, seq, 24_000 + seq)).status).toBe(200)
    await until(() => upstream.received.length >= 1, 5000, 'the first send')
    // shards 1 -> 2 (chat 24 stays in shard 0): the shard is let go and taken again at once.
    writeFileSync(
      path.join(gateway.dir, 'gateway.yaml'),
      queuedConfig(upstream.url, prefix, `shards: 2, ${FAST}`),
    )
    await gateway.waitFor((l) => l.msg === 'config reloaded')
    await until(() => log.taken.length >= 3, 10_000, 'every delivery')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(log.mostAtOnce).toBe(1)
    expect(log.of(24)).toEqual([0, 1, 2])
  })

  it('cuts a send under way when its lease runs out, before another replica may take the chat', async () => {
    const log = new ChatLog()
    const slow = log.responder(8000)
    const quick = log.responder(0)
    let first = true
    upstream.respond = (request, response) => {
      const responder = first ? slow : quick
      first = false
      responder(request, response)
    }
    const user = await aclUser()
    const prefix = testPrefix('queue')
    const queue = 'shards: 1, retry_min: 50ms, lease: 2s, poll: 50ms'
    const { gateway: holder } = await start(queue, { prefix, redisUrl: user.url })
    await holder.waitFor((l) => l.msg === 'queue shard taken')
    const { gateway: other } = await start(queue, { prefix })
    expect((await send(holder, 26, 0, 26_000)).status).toBe(200)
    await until(() => upstream.received.length === 1, 5000, 'the slow send')
    // The holder can no longer renew its lease (Redis refuses its scripts) while the bot takes its
    // time: the other replica takes the shard once the lease ran out, and sends the update again.
    await admin.call('ACL', 'SETUSER', user.name, '-evalsha', '-eval')
    await other.waitFor((l) => l.msg === 'queue shard taken', 10_000)
    await until(() => log.of(26).length === 1, 10_000, 'the update, from the other replica')
    expect(log.mostAtOnce).toBe(1)
  })

  it('keeps the lease of a shard still sending at shutdown, and gives back the others', async () => {
    const log = new ChatLog()
    upstream.respond = log.responder(8000)
    const { gateway, prefix } = await start(`shards: 2, ${FAST}`) // shutdown_grace: 5s
    await until(
      () => gateway.lines.filter((l) => l.msg === 'queue shard taken').length === 2,
      5000,
      'both shards',
    )
    expect((await send(gateway, 28, 0, 28_000)).status).toBe(200) // chat 28: shard 0
    await until(() => upstream.received.length === 1, 5000, 'the slow send')
    expect(await gateway.stop('SIGTERM')).toBe(0)
    // Still sending when the grace ran out (the process cut it as it exited): another replica
    // takes the shard once the lease runs out, not while the bot may still be handling the update.
    expect(await admin.exists(`${prefix}{bot}:queue:lease:0`)).toBe(1)
    expect(await admin.exists(`${prefix}{bot}:queue:lease:1`)).toBe(0)
  })

  it('reports the dead letters from the holder of shard 0 only', async () => {
    const { gateway: first, prefix } = await start(`shards: 2, ${FAST}`)
    await until(
      () => first.lines.filter((l) => l.msg === 'queue shard taken').length === 2,
      5000,
      'both shards',
    )
    const dead = `${prefix}{bot}:queue:dead`
    const id = await admin.xadd(dead, '*', 'b', chatUpdate(32, 0, 32_000), 'why', 'max_age')
    const deadLetters = async (gateway: RunningGateway) =>
      /botgate_queue_dead_letters\{bot="bot"\} (\d+)/.exec(await gateway.metrics())?.[1]
    await until(async () => (await deadLetters(first)) === '1', 5000, 'the dead letter reported')
    // A second replica comes: the first lets one shard go (shard 0, the first of its list).
    const { gateway: second } = await start(`shards: 2, ${FAST}`, { prefix })
    await second.waitFor((l) => l.msg === 'queue shard taken' && l.shard === 0, 10_000)
    await admin.xdel(dead, id as string)
    await until(async () => (await deadLetters(second)) === '0', 5000, 'the new holder reporting')
    await new Promise((resolve) => setTimeout(resolve, 1000)) // a tick of the first
    expect(await deadLetters(first)).toBe('0')
  })

  it("holds a chat's next update back while Redis refuses the ack of its last", async () => {
    const log = new ChatLog()
    const user = await aclUser()
    let bothQueued = () => {}
    const queued = new Promise<void>((resolve) => {
      bothQueued = resolve
    })
    let refused = false
    let restored = false
    upstream.respond = (request, response) => {
      const reply = log.responder(0)
      if (refused || placeOf(request).seq !== 0) {
        reply(request, response)
        return
      }
      // The bot takes update 0 once update 1 is queued too; from then on Redis refuses the
      // gateway's scripts (the ack among them) for three seconds.
      refused = true
      void queued
        .then(() => admin.call('ACL', 'SETUSER', user.name, '-evalsha', '-eval'))
        .then(() => {
          reply(request, response)
          setTimeout(() => {
            void admin.call('ACL', 'SETUSER', user.name, '+evalsha', '+eval').then(() => {
              restored = true
            })
          }, 3000)
        })
    }
    const { gateway } = await start('shards: 1, retry_min: 50ms, lease: 20s, poll: 50ms', {
      redisUrl: user.url,
    })
    await gateway.waitFor((l) => l.msg === 'queue shard taken')
    for (let seq = 0; seq < 2; seq++) expect((await send(gateway, 23, seq, 23_000 + seq)).status).toBe(200)
    bothQueued()
    await until(() => restored && log.of(23).length >= 2, 15_000, 'both deliveries, Redis writable again')
    await new Promise((resolve) => setTimeout(resolve, 1500)) // nothing more may come
    expect(log.of(23)).toEqual([0, 1])
  })

  it('reads its pending list again after a read that failed half way', async () => {
    const log = new ChatLog()
    let down = true
    upstream.respond = log.responder(0, () => (down ? 500 : 200))
    const user = await aclUser()
    const prefix = testPrefix('queue')
    const queue = 'shards: 1, retry_min: 30s, retry_max: 30s, lease: 2s, poll: 50ms'
    const { gateway: first } = await start(queue, { prefix, redisUrl: user.url })
    await first.waitFor((l) => l.msg === 'queue shard taken')
    expect((await send(first, 25, 0, 25_000)).status).toBe(200)
    await first.waitFor((l) => l.msg === 'queued delivery failed')
    await first.stop('SIGKILL')
    // The next holder claims the update; reading its attempts (HMGET) fails once.
    await admin.call('ACL', 'SETUSER', user.name, '-hmget')
    down = false
    const { gateway: second } = await start(queue, { prefix, redisUrl: user.url })
    await second.waitFor((l) => l.msg === 'queue read failed', 10_000)
    await admin.call('ACL', 'SETUSER', user.name, '+hmget')
    await until(() => log.taken.length === 1, 10_000, 'the claimed update')
    expect(log.of(25)).toEqual([0])
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
