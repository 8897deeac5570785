/**
 * Several replicas, one Redis: three real gateway processes share the machine's Redis (under a
 * prefix of this run's own) and are hammered at once. Limits hold exactly: the count let through
 * is the burst, not about the burst. Every key the replicas wrote carries a TTL.
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
const CHAT_BURST = 37
const IP_BURST = 25

describe.skipIf(!available)('three replicas sharing one Redis', () => {
  const prefix = testPrefix('replicas')
  let upstream: TestUpstream
  let replicas: RunningGateway[]
  let admin: Redis

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
    const config = botConfig({
      upstream: upstream.url,
      secret: SECRET,
      top: `trusted_proxies: [127.0.0.1]
store:
  type: redis
  url: ${SHARED_REDIS_URL}
  prefix: "${prefix}"
  # Exactness is under test here, not latency: on a loaded test machine a genuine timeout would
  # answer 503 and could leave the count short (the script may still run after it).
  timeout: 1s
  on_error: closed`,
      policy: `sources: { allow: [any] }
limits:
  - { name: per-ip, key: ip, rate: 1/day, burst: ${IP_BURST} }
  - { name: per-chat, key: chat, rate: 1/day, burst: ${CHAT_BURST} }`,
    })
    replicas = await Promise.all([1, 2, 3].map(() => RunningGateway.start({ config })))
  })

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()))
    await upstream.close()
    admin.disconnect()
  })

  const send = (i: number, update: Record<string, unknown>, ip: string) =>
    post(
      `${(replicas[i % 3] as RunningGateway).webhook}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(SECRET, 'x-forwarded-for', ip),
    )

  it('forwards exactly the burst of one chat, however the replicas race', async () => {
    const before = upstream.received.length
    // each request from its own address, so only the chat limit is in play
    const replies = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        send(
          i,
          messageUpdate({ chat: { id: 777, type: 'private' } }),
          `149.154.${160 + (i >> 8)}.${i & 255}`,
        ),
      ),
    )
    expect(replies.every((reply) => reply.status === 200)).toBe(true)
    expect(upstream.received.length - before).toBe(CHAT_BURST)
    const ids = replies.map((reply) => reply.headers['x-request-id'] as string)
    const lines = await Promise.all(ids.map((id, i) => (replicas[i % 3] as RunningGateway).requestLine(id)))
    const reasons = lines.map((line) => line.reason)
    expect(reasons.filter((reason) => reason === 'forwarded')).toHaveLength(CHAT_BURST)
    expect(reasons.filter((reason) => reason === 'rate_limited')).toHaveLength(300 - CHAT_BURST)
  })

  it('answers exactly the burst of one address before 429s, across replicas', async () => {
    const replies = await Promise.all(
      Array.from({ length: 90 }, (_, i) =>
        send(i, messageUpdate({ chat: { id: 1000 + i, type: 'private' } }), '149.154.167.200'),
      ),
    )
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(IP_BURST)
    const limited = replies.filter((reply) => reply.status === 429)
    expect(limited).toHaveLength(90 - IP_BURST)
    expect(limited.every((reply) => Number(reply.headers['retry-after']) === 3600)).toBe(true)
  })

  it('reports the shared store up, on /readyz and in the metrics', async () => {
    for (const replica of replicas) {
      const ready = await fetch(`${replica.admin}/readyz`)
      expect(await ready.json()).toMatchObject({ ok: true, store: 'up' })
      const text = await replica.metrics()
      expect(text).toMatch(/^botgate_store_up\{store="redis"\} 1$/m)
      expect(text).toMatch(/^botgate_store_errors_total\{operation="limit"\} 0$/m)
    }
  })

  it('leaves no key without a TTL', async () => {
    const keys = await keysAndCleanup(admin, prefix)
    // the chat's state, the shared address's, one per address of the first test, and the dedupe
    // marks of the updates that were forwarded
    expect(keys.size).toBeGreaterThan(300)
    expect([...keys].filter(([, ttl]) => ttl < 0)).toEqual([])
    expect([...keys.keys()].every((key) => key.startsWith(`${prefix}{bot}:`))).toBe(true)
    expect([...keys.keys()].some((key) => key.startsWith(`${prefix}{bot}:dedupe:`))).toBe(true)
  })
})
