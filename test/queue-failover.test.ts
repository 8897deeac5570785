/**
 * Queued delivery across replicas and failures: three gateways on one Redis keep each chat's
 * order; a replica killed with deliveries under way leaves them to another; a Redis restarted
 * with `appendonly yes` and `appendfsync always` loses nothing it acknowledged.
 */

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import {
  client,
  keysAndCleanup,
  RedisServer,
  redisServerAvailable,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from './helpers/redis.js'
import { until } from './helpers/wait.js'

const available = await sharedRedisAvailable()
const serverAvailable = redisServerAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'

function chatUpdate(chat: number, seq: number, updateId: number): string {
  return JSON.stringify(
    messageUpdate(
      {
        message_id: seq + 1,
        chat: { id: chat, type: 'private', first_name: 'Ann' },
        from: { id: chat, is_bot: false, first_name: 'Ann' },
        text: `${chat}:${seq}`,
      },
      updateId,
    ),
  )
}

/**
 * An upstream that records the (chat, seq) of each update it accepts, in arrival order, and
 * answers as `mode` says: 200 after `delayMs`, 502, or never (the connection hangs).
 */
class RecordingBot {
  readonly accepted: { chat: number; seq: number }[] = []
  attempts = 0
  mode: 'ok' | 'fail' = 'ok'
  delayMs = 0
  /** Up to this much more, at random per request: sends of one chat running at once would cross. */
  jitterMs = 0
  readonly #server = http.createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      this.attempts++
      if (this.mode === 'fail') {
        response.writeHead(502)
        response.end()
        return
      }
      const text = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message: { text: string } })
        .message.text
      const [chat, seq] = text.split(':').map(Number) as [number, number]
      setTimeout(
        () => {
          this.accepted.push({ chat, seq })
          response.writeHead(200)
          response.end()
        },
        this.delayMs + Math.random() * this.jitterMs,
      )
    })
  })

  static async start(): Promise<RecordingBot> {
    const bot = new RecordingBot()
    await new Promise<void>((resolve) => bot.#server.listen(0, '127.0.0.1', () => resolve()))
    return bot
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`
  }

  /** Each chat's sequence as accepted, repeats of one update in a row folded (a redelivery after a crash). */
  byChat(): Map<number, number[]> {
    const chats = new Map<number, number[]>()
    for (const { chat, seq } of this.accepted) {
      const list = chats.get(chat) ?? []
      if (list[list.length - 1] !== seq) list.push(seq)
      chats.set(chat, list)
    }
    return chats
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

function config(upstream: string, redisUrl: string, prefix: string, queue: string): string {
  return botConfig({
    upstream,
    secret: SECRET,
    top: `store:
  type: redis
  url: ${redisUrl}
  prefix: "${prefix}"
  timeout: 1s
  connect_timeout: 2s
shutdown_grace: 2s`,
    bot: `      delivery: queued
      queue: { retry_min: 50ms, retry_max: 300ms, lease: 2s, poll: 50ms, ${queue} }`,
  })
}

/** Posts each chat's updates in order (the next once the last was answered 200), spread over `gateways`. */
async function sendChats(
  gateways: readonly RunningGateway[],
  chats: readonly number[],
  perChat: number,
  firstId: number,
): Promise<void> {
  let next = 0
  await Promise.all(
    chats.map(async (chat, c) => {
      for (let seq = 0; seq < perChat; seq++) {
        const gateway = gateways[(c + seq + next++) % gateways.length] as RunningGateway
        const reply = await post(
          `${gateway.webhook}${PATH}`,
          chatUpdate(chat, seq, firstId + c * perChat + seq),
          telegramHeaders(SECRET),
        )
        expect(reply.status).toBe(200)
      }
    }),
  )
}

describe.skipIf(!available)('queued delivery across replicas', () => {
  let admin: Redis
  let bot: RecordingBot
  const gateways: RunningGateway[] = []
  const prefix = testPrefix('queue-replicas')

  beforeAll(async () => {
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
  })

  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.stop('SIGKILL')))
    await bot?.close()
    await keysAndCleanup(admin, prefix)
  })

  afterAll(() => {
    admin.disconnect()
  })

  it('keeps each chat in order and delivers each update once over three replicas', async () => {
    bot = await RecordingBot.start()
    bot.jitterMs = 20
    const text = config(bot.url, SHARED_REDIS_URL, prefix, 'shards: 4, max_inflight: 4')
    for (let i = 0; i < 3; i++) gateways.push(await RunningGateway.start({ config: text }))
    // The first replica takes every shard, then gives up its extra ones as the others come.
    await until(
      () => gateways.filter((g) => g.lines.some((l) => l.msg === 'queue shard taken')).length >= 2,
      10_000,
      'shards shared by the replicas',
    )
    const chats = [11, 12, 13, 14, 15, 16, 17, 18]
    await sendChats(gateways, chats, 12, 20_000)
    await until(() => bot.accepted.length >= chats.length * 12, 20_000, 'every delivery')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(bot.accepted).toHaveLength(chats.length * 12)
    for (const chat of chats) expect(bot.byChat().get(chat)).toEqual([...Array(12).keys()])
  })

  it("finishes a killed replica's deliveries from another replica", async () => {
    bot = await RecordingBot.start()
    bot.mode = 'fail'
    const text = config(bot.url, SHARED_REDIS_URL, prefix, 'shards: 1, max_inflight: 4')
    const first = await RunningGateway.start({ config: text })
    gateways.push(first)
    await first.waitFor((l) => l.msg === 'queue shard taken', 5000)
    const second = await RunningGateway.start({ config: text })
    gateways.push(second)
    const chats = [31, 32, 33, 34, 35, 36]
    await sendChats([first, second], chats, 5, 30_000)
    // The holder has read them all and fails them; now the bot answers, slowly, and the holder dies
    // with deliveries under way.
    await until(() => bot.attempts >= 6, 5000, 'failed attempts')
    bot.delayMs = 150
    bot.mode = 'ok'
    await until(() => bot.accepted.length >= 4, 5000, 'the first deliveries')
    await first.stop('SIGKILL')
    await second.waitFor((l) => l.msg === 'queue shard taken', 10_000)
    await until(
      () => [...bot.byChat().values()].reduce((sum, list) => sum + list.length, 0) >= chats.length * 5,
      15_000,
      'the rest, from the second replica',
    )
    for (const chat of chats) expect(bot.byChat().get(chat)).toEqual([0, 1, 2, 3, 4])
    // At most the sends under way at the kill came twice (max_inflight 4).
    expect(bot.accepted.length - chats.length * 5).toBeLessThanOrEqual(4)
  })
})

describe.skipIf(!serverAvailable)('queued delivery through a Redis restart', () => {
  let redis: RedisServer
  let bot: RecordingBot
  let gateway: RunningGateway

  beforeAll(async () => {
    // Every write on disk before Redis answers it: an acknowledged XADD survives a crash.
    redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always'])
    bot = await RecordingBot.start()
  })

  afterAll(async () => {
    await gateway?.stop('SIGKILL')
    await redis.kill()
    await bot.close()
  })

  it('loses nothing Redis acknowledged when Redis and the gateway are killed and started again', async () => {
    bot.mode = 'fail'
    const text = config(bot.url, redis.url, testPrefix('queue-restart'), 'shards: 2')
    gateway = await RunningGateway.start({ config: text })
    const chats = [41, 42, 43, 44]
    await sendChats([gateway], chats, 6, 40_000)
    await redis.kill()
    // Meanwhile Telegram is told to come back later: nothing is taken in that cannot be kept.
    const refused = await post(
      `${gateway.webhook}${PATH}`,
      chatUpdate(49, 0, 49_000),
      telegramHeaders(SECRET),
    )
    expect(refused.status).toBe(503)
    expect(JSON.parse(refused.body)).toEqual({ ok: false, error: 'queue_unavailable' })
    // The gateway dies too: whatever it had read is gone with it; only Redis's disk has the updates.
    await gateway.stop('SIGKILL')
    await redis.restart()
    bot.mode = 'ok'
    gateway = await RunningGateway.start({ config: text })
    await until(() => bot.accepted.length >= chats.length * 6, 20_000, 'every delivery after the restart')
    for (const chat of chats) expect(bot.byChat().get(chat)).toEqual([0, 1, 2, 3, 4, 5])
  })
})
