/**
 * A policy in shadow mode tells the same story on both stores: the log line's `would` lists what
 * each check would have done in check order (SPEC section 3), whether the store answered each
 * check at once (memory) or the checks ran ahead of one Redis round trip (the chain).
 */

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import {
  client,
  keysAndCleanup,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const available = await sharedRedisAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const POLICY = `mode: shadow
sources: { allow: [any] }
limits:
  - { name: per-chat, key: chat, rate: 1/day, burst: 1 }`

describe.skipIf(!available)('shadow mode on the memory store and on Redis', () => {
  const prefix = testPrefix('shadow')
  let upstream: TestUpstream
  let memory: RunningGateway
  let redis: RunningGateway
  let admin: Redis

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
    const config = (top: string) => botConfig({ upstream: upstream.url, secret: SECRET, top, policy: POLICY })
    ;[memory, redis] = await Promise.all([
      RunningGateway.start({ config: config('store: { type: memory }') }),
      RunningGateway.start({
        config: config(
          `store: { type: redis, url: "${SHARED_REDIS_URL}", prefix: "${prefix}", timeout: 1s }`,
        ),
      }),
    ])
  })

  afterAll(async () => {
    await Promise.all([memory?.stop(), redis?.stop()])
    await upstream?.close()
    if (admin !== undefined) await keysAndCleanup(admin, prefix)
    admin?.disconnect()
  })

  /** The log lines of `updates` sent in turn to `gateway`: reason, would and detail. */
  async function lines(gateway: RunningGateway, updates: readonly Record<string, unknown>[]) {
    const seen = []
    for (const update of updates) {
      const reply = await post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
      expect(reply.status).toBe(200)
      const { reason, would, detail } = await gateway.requestLine(reply.headers['x-request-id'] as string)
      seen.push({ reason, would, detail })
    }
    return seen
  }

  it('lists a redelivery over its limit as a duplicate first, then as rate limited', async () => {
    const update = messageUpdate({ chat: { id: 5151, type: 'private', first_name: 'Cy' } })
    const expected = [
      { reason: 'forwarded', would: undefined, detail: undefined },
      { reason: 'forwarded', would: ['duplicate_update', 'rate_limited'], detail: 'limit per-chat (shadow)' },
    ]
    expect(await lines(memory, [update, update])).toEqual(expected)
    expect(await lines(redis, [update, update])).toEqual(expected)
  })
})
