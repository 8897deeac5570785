/**
 * Pacing shared by two "replicas" (two pacers, two Redis connections, one Redis), timestamps
 * taken by the attempt, as a fake Bot API would see them: the bot's global budget is shared
 * exactly, a burst of 200 messages to one group arrives in order at the group's pace with nothing
 * lost, and Telegram's 429 seen by one replica pauses the chat for the other.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  client,
  keysAndCleanup,
  redisStoreConfig,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from '../../../test/helpers/redis.js'
import { RedisStore } from '../../store/redis.js'
import { type ChatTarget, createPacer, NO_PACING_METRICS, type Pacer, type PacingConfig } from './index.js'

const shared = await sharedRedisAvailable()

const config: PacingConfig = {
  enabled: true,
  global: { count: 40, periodMs: 1000, burst: 1 },
  privateChat: { count: 1000, periodMs: 1000, burst: 1 },
  groupChat: { count: 50, periodMs: 1000, burst: 1 },
  maxQueue: 1000,
  maxWaitMs: 20_000,
  maxRetries: 3,
}

const group = (id: string): ChatTarget => ({ id, kind: 'group' })

describe.skipIf(!shared)('pacing on one Redis, two replicas', () => {
  const prefix = testPrefix('pacing')
  const stores: RedisStore[] = []
  let one: Pacer
  let two: Pacer

  async function open(): Promise<RedisStore> {
    const store = new RedisStore({ config: redisStoreConfig(SHARED_REDIS_URL, prefix) })
    expect(await store.waitReady(2000)).toBe(true)
    stores.push(store)
    return store
  }

  beforeAll(async () => {
    one = createPacer(config, { store: await open(), metrics: NO_PACING_METRICS })
    two = createPacer(config, { store: await open(), metrics: NO_PACING_METRICS })
  })

  afterAll(async () => {
    await Promise.all([one.close(), two.close()])
    const admin = client(SHARED_REDIS_URL)
    await admin.connect()
    await keysAndCleanup(admin, prefix)
    admin.disconnect()
    await Promise.all(stores.map((store) => store.close()))
  })

  it('shares the global budget exactly between the replicas', async () => {
    const times: number[] = []
    const call = (pacer: Pacer, i: number) =>
      pacer.run({ bot: 'g', method: 'sendMessage', chat: group(`-${i + 1}`), retriable: true }, async () => {
        times.push(Date.now())
        return { value: i }
      })
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => call(i % 2 === 0 ? one : two, i)))
    expect(results.every((r) => r.kind === 'sent')).toBe(true)
    times.sort((x, y) => x - y)
    // 40 messages at 40/s over both replicas: 39 intervals of 25 ms, none two within the
    // same interval (a little slack for Redis time against this process's clock).
    expect((times[39] as number) - (times[0] as number)).toBeGreaterThanOrEqual(39 * 25 - 30)
  })

  it('delivers a burst of 200 messages to one group in order, at its pace, nothing lost', async () => {
    const seen: { i: number; at: number }[] = []
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        one.run({ bot: 'burst', method: 'sendMessage', chat: group('-100'), retriable: true }, async () => {
          seen.push({ i, at: Date.now() })
          return { value: i }
        }),
      ),
    )
    expect(results.every((r) => r.kind === 'sent')).toBe(true)
    expect(seen.map((s) => s.i)).toEqual([...Array(200).keys()])
    // Calls of one chat keep their order within a replica (a bot talks to its own gateway).
    // 50/s for the group, 40/s for the bot: the bot's budget is the tighter, 25 ms apart.
    const span = (seen[199]?.at as number) - (seen[0]?.at as number)
    expect(span).toBeGreaterThanOrEqual(199 * 25 - 50)
    expect(span).toBeLessThan(199 * 25 * 4)
  }, 30_000)

  it("shares a pause after Telegram's 429 with the other replica", async () => {
    const chat = group('-200')
    const first = await one.run({ bot: 'p', method: 'sendMessage', chat, retriable: false }, async () => ({
      value: 'flood',
      retryAfterS: 2,
    }))
    expect(first).toMatchObject({ kind: 'sent', value: 'flood' })
    const start = Date.now()
    const second = await two.run({ bot: 'p', method: 'sendMessage', chat, retriable: true }, async () => ({
      value: 'ok',
    }))
    expect(second).toMatchObject({ kind: 'sent', value: 'ok' })
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500)
  }, 15_000)
})
