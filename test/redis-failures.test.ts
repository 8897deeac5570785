/**
 * Redis failures through the real CLI, against a private redis-server: killed in the middle of a
 * run, paused (`CLIENT PAUSE`) and put to sleep (`DEBUG SLEEP`) beyond the 50 ms timeout, under
 * each `on_error`. No request hangs (each is bounded by a client timeout far above the store's), a
 * store failure is never answered as a rate limit, and everything is logged, counted and shown on
 * /readyz until Redis is back.
 */

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, telegramHeaders } from './helpers/client.js'
import { botConfig, type LogLine, RunningGateway, runCli, secret, tempDir } from './helpers/gateway.js'
import { client, keysAndCleanup, RedisServer, redisServerAvailable } from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const available = redisServerAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const PASSWORD = 'redis-pass-4711-never-logged'

interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  readonly reason: unknown
  readonly body: string
}

describe.skipIf(!available)('Redis failures', () => {
  let server: RedisServer
  let upstream: TestUpstream
  let gateway: RunningGateway | undefined

  beforeAll(async () => {
    server = await RedisServer.start(['--requirepass', PASSWORD, '--enable-debug-command', 'yes'])
    upstream = await TestUpstream.start()
  })
  afterEach(async () => {
    await gateway?.stop()
    gateway = undefined
  })
  afterAll(async () => {
    await server.stop()
    await upstream.close()
  })

  async function start(onError: string): Promise<RunningGateway> {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: `store:
  type: redis
  url: redis://:${PASSWORD}@127.0.0.1:${server.port}
  prefix: "fail-${onError}:"
  on_error: ${onError}`,
        policy: `sources: { allow: [any] }
limits:
  - { name: per-chat, key: chat, rate: 1/day, burst: 3 }`,
      }),
    })
    return gateway
  }

  /** One update for `chat`; bounded by a 10 s client timeout, so a hung request fails the test. */
  async function send(running: RunningGateway, chat: number): Promise<Answer> {
    const headers = telegramHeaders(SECRET)
    const response = await fetch(`${running.webhook}${PATH}`, {
      method: 'POST',
      headers: Object.fromEntries([0, 2].map((i) => [headers[i] as string, headers[i + 1] as string])),
      body: JSON.stringify(messageUpdate({ chat: { id: chat, type: 'private' } })),
      signal: AbortSignal.timeout(10_000),
    })
    const line = await running.requestLine(response.headers.get('x-request-id'))
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      reason: line.reason,
      body: await response.text(),
    }
  }

  const sendMany = async (running: RunningGateway, chat: number, count: number) => {
    const answers: Answer[] = []
    for (let i = 0; i < count; i++) answers.push(await send(running, chat))
    return answers
  }

  async function readyz(running: RunningGateway): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${running.admin}/readyz`)
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  async function metric(running: RunningGateway, pattern: RegExp): Promise<number> {
    const match = pattern.exec(await running.metrics())
    return match === null ? Number.NaN : Number(match[1])
  }

  const storeUp = (running: RunningGateway) => metric(running, /^botgate_store_up\{store="redis"\} (\d+)$/m)
  const isRecovered = (line: LogLine) => line.msg === 'store recovered: shared state in use again'

  it('local: Redis killed mid-run; every request is answered, limits hold per process, then Redis is back', async () => {
    const running = await start('local')
    const chat = 9001
    expect((await sendMany(running, chat, 2)).map((a) => a.reason)).toEqual(['forwarded', 'forwarded'])
    await server.kill()
    // the in-process store takes over with a fresh state: its own burst of 3, then limited
    const during = await sendMany(running, chat, 6)
    expect(during.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200])
    expect(during.map((a) => a.reason)).toEqual([
      'forwarded',
      'forwarded',
      'forwarded',
      'rate_limited',
      'rate_limited',
      'rate_limited',
    ])
    const warning = await running.waitFor(
      (line) =>
        line.msg ===
        'store unavailable: on_error local: each replica applies limits and dedupe on its own until it answers again',
    )
    expect(warning).toMatchObject({ level: 'warn', store: 'redis', on_error: 'local' })
    expect(await readyz(running)).toEqual({
      status: 200,
      body: { ok: true, config: 'loaded', listener: 'serving', store: 'down (on_error local)' },
    })
    expect(await storeUp(running)).toBe(0)
    expect(
      await metric(running, /^botgate_store_fallbacks_total\{operation="limit",on_error="local"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(6)

    await server.restart()
    await running.waitFor(isRecovered, 10_000)
    expect(await storeUp(running)).toBe(1)
    expect((await readyz(running)).body.store).toBe('up')
    // Redis again (restarted empty): its own burst of 3 for the chat
    expect((await sendMany(running, chat, 4)).map((a) => a.reason)).toEqual([
      'forwarded',
      'forwarded',
      'forwarded',
      'rate_limited',
    ])
    expect(running.stdout).not.toContain(PASSWORD)
  })

  it('closed: Redis paused beyond the timeout answers 503 + Retry-After, never rate_limited, and /readyz fails', async () => {
    const running = await start('closed')
    const chat = 9002
    expect((await send(running, chat)).reason).toBe('forwarded')
    const redis = client(server.url)
    await redis.connect()
    try {
      await redis.call('CLIENT', 'PAUSE', '3000', 'ALL')
      const during = await sendMany(running, chat, 4)
      for (const answer of during) {
        expect(answer).toEqual({
          status: 503,
          retryAfter: '5',
          reason: 'store_unavailable',
          body: '{"ok":false,"error":"store_unavailable"}',
        })
      }
      expect(await readyz(running)).toEqual({
        status: 503,
        body: { ok: false, config: 'loaded', listener: 'serving', store: 'down (on_error closed)' },
      })
      await running.waitFor(isRecovered, 10_000)
      expect((await readyz(running)).status).toBe(200)
      expect((await send(running, chat)).reason).toBe('forwarded')
    } finally {
      redis.disconnect()
    }
  })

  it('open: Redis asleep (DEBUG SLEEP) forwards past the limit, then limits again', async () => {
    const running = await start('open')
    const chat = 9003
    expect((await sendMany(running, chat, 4)).map((a) => a.reason)).toEqual([
      'forwarded',
      'forwarded',
      'forwarded',
      'rate_limited',
    ])
    const redis = client(server.url)
    await redis.connect()
    try {
      const sleeping = redis.call('DEBUG', 'SLEEP', '2') // blocks the whole server for 2 s
      const during = await sendMany(running, chat, 3)
      expect(during.map((a) => [a.status, a.reason])).toEqual([
        [200, 'forwarded'],
        [200, 'forwarded'],
        [200, 'forwarded'],
      ])
      await sleeping
      await running.waitFor(isRecovered, 10_000)
      // the state in Redis survived: the chat's burst is still spent
      expect((await send(running, chat)).reason).toBe('rate_limited')
      const warning = await running.waitFor((line) => String(line.msg).startsWith('store unavailable'))
      expect(warning).toMatchObject({ on_error: 'open', error: 'redis: no answer within 50 ms' })
    } finally {
      redis.disconnect()
    }
  })

  it('never shows the Redis password: botgate check masks it', async () => {
    const dir = tempDir()
    writeFileSync(
      path.join(dir, 'gateway.yaml'),
      botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: `store: { type: redis, url: "redis://:${PASSWORD}@127.0.0.1:${server.port}/2" }`,
      }),
    )
    const result = await runCli(['check', '--config', path.join(dir, 'gateway.yaml')])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(
      `store redis 127.0.0.1:${server.port} db 2, password ****, prefix "botgate:", timeout 50ms, on_error local`,
    )
    expect(result.stdout + result.stderr).not.toContain(PASSWORD)
  })

  it('exits when it cannot listen, its Redis connection closed', async () => {
    const busy = await TestUpstream.start() // holds a port
    try {
      const dir = tempDir()
      writeFileSync(
        path.join(dir, 'gateway.yaml'),
        botConfig({
          upstream: upstream.url,
          secret: SECRET,
          top: `store: { type: redis, url: "${server.url}", on_error: closed }`,
        }).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${busy.port}`),
      )
      const result = await runCli(['serve', '--config', path.join(dir, 'gateway.yaml')])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain('botgate: cannot listen')
    } finally {
      await busy.close()
    }
  })

  it('leaves no key without a TTL', async () => {
    const redis = client(server.url)
    await redis.connect()
    try {
      const keys = await keysAndCleanup(redis, 'fail-')
      expect(keys.size).toBeGreaterThan(0)
      expect([...keys].filter(([, ttl]) => ttl < 0)).toEqual([])
    } finally {
      redis.disconnect()
    }
  })
})
