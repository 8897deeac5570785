/**
 * `store.on_error` on every store operation, against a private redis-server that is killed,
 * paused and restarted: what the dedupe check (claim, put, remove) and the limits see under
 * local, open and closed, what is logged and counted, and the recovery.
 */

import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer, redisServerAvailable } from '../../test/helpers/redis.js'
import { createLogger } from '../observe/logger.js'
import { GatewayMetrics } from '../observe/metrics.js'
import type { OnError, RedisStoreConfig } from './config.js'
import { limitSpec } from './gcra.js'
import type { GuardedStore } from './guard.js'
import { ALLOWED, type LimitKey, StoreError } from './index.js'
import { openStore } from './open.js'

const available = redisServerAvailable()

type Line = Record<string, unknown>

async function open(server: RedisServer, onError: OnError) {
  const lines: Line[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Line)
      done()
    },
  })
  const metrics = new GatewayMetrics('test')
  const config: RedisStoreConfig = {
    type: 'redis',
    topology: { mode: 'standalone', endpoint: { host: '127.0.0.1', port: server.port } },
    username: undefined,
    password: undefined,
    db: 0,
    tls: false,
    prefix: 'guard:',
    timeoutMs: 50,
    connectTimeoutMs: 1000,
    onError,
    maxEntries: 1000,
  }
  const opened = await openStore(config, { metrics, logger: createLogger('debug', sink) })
  return { opened, store: opened.store as GuardedStore, metrics, lines }
}

const limit = (name: string): LimitKey[] => [
  { spec: limitSpec(1, 'day', 2, false), key: name, replyKey: undefined },
]

function metric(metrics: GatewayMetrics, pattern: RegExp): number {
  const match = pattern.exec(metrics.render())
  return match === null ? Number.NaN : Number(match[1])
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe.skipIf(!available)('GuardedStore: on_error on every operation', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await RedisServer.start()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('closed: every operation rejects with StoreError while Redis is down, then recovers', async () => {
    const { opened, store, metrics, lines } = await open(server, 'closed')
    try {
      await opened.start()
      expect(opened.health()).toEqual({ up: true, ready: true, detail: 'up' })
      expect(await store.claim('d:1', 'inflight', 60_000)).toBeUndefined()
      await server.kill()
      await until(() => !opened.health().up, 'the store to be marked down')
      expect(opened.health()).toEqual({ up: false, ready: false, detail: 'down (on_error closed)' })
      const unavailable = new StoreError('store unavailable')
      await expect(store.claim('d:2', 'inflight', 60_000)).rejects.toEqual(unavailable)
      await expect(store.put('d:2', 'done', 60_000)).rejects.toEqual(unavailable)
      await expect(store.read('d:2')).rejects.toEqual(unavailable)
      await expect(store.remove('d:2')).rejects.toEqual(unavailable)
      await expect(store.list('d:')).rejects.toEqual(unavailable)
      await expect(store.limit('bot', limit('a'))).rejects.toEqual(unavailable)
      expect(metric(metrics, /^botgate_store_up\{store="redis"\} (\d+)$/m)).toBe(0)
      expect(
        metric(metrics, /^botgate_store_fallbacks_total\{operation="claim",on_error="closed"\} (\d+)$/m),
      ).toBe(1)
      expect(
        metric(metrics, /^botgate_store_fallbacks_total\{operation="limit",on_error="closed"\} (\d+)$/m),
      ).toBe(1)
      await server.restart()
      await until(() => opened.health().up, 'the store to recover')
      expect(await store.read('d:1')).toBeUndefined() // the restarted server kept nothing
      expect(await store.claim('d:2', 'inflight', 60_000)).toBeUndefined()
      expect(metric(metrics, /^botgate_store_up\{store="redis"\} (\d+)$/m)).toBe(1)
      const warnings = lines.filter(
        (line) =>
          line.msg ===
          'store unavailable: on_error closed: updates that need the store are answered 503 with Retry-After until it answers again',
      )
      expect(warnings).toHaveLength(1)
      expect(lines.filter((line) => line.msg === 'store recovered: shared state in use again')).toHaveLength(
        1,
      )
    } finally {
      await store.close()
    }
  })

  it('local: operations run on the in-process store while Redis is down', async () => {
    const { opened, store, metrics } = await open(server, 'local')
    try {
      await opened.start()
      await server.kill()
      await until(() => !opened.health().up, 'the store to be marked down')
      expect(opened.health()).toEqual({ up: false, ready: true, detail: 'down (on_error local)' })
      // the dedupe check's sequence: claim in flight, a concurrent copy sees it, mark done
      expect(await store.claim('d:9', 'inflight', 60_000)).toBeUndefined()
      expect(await store.claim('d:9', 'inflight', 60_000)).toBe('inflight')
      await store.put('d:9', 'done', 60_000)
      expect(await store.read('d:9')).toBe('done')
      await store.remove('d:9')
      expect(await store.read('d:9')).toBeUndefined()
      // limits keep limiting, per process
      expect(await store.limit('bot', limit('b'))).toBe(ALLOWED)
      expect(await store.limit('bot', limit('b'))).toBe(ALLOWED)
      expect((await store.limit('bot', limit('b'))).allowed).toBe(false)
      expect(
        metric(metrics, /^botgate_store_fallbacks_total\{operation="limit",on_error="local"\} (\d+)$/m),
      ).toBe(3)
      await server.restart()
      await until(() => opened.health().up, 'the store to recover')
      expect(await store.limit('bot', limit('b'))).toBe(ALLOWED) // Redis again: a fresh state there
    } finally {
      await store.close()
    }
  })

  it('open: while Redis is down nothing is stored and everything passes', async () => {
    const { opened, store } = await open(server, 'open')
    try {
      await opened.start()
      await server.kill()
      await until(() => !opened.health().up, 'the store to be marked down')
      expect(opened.health()).toEqual({ up: false, ready: true, detail: 'down (on_error open)' })
      expect(await store.claim('d:5', 'inflight', 60_000)).toBeUndefined()
      expect(await store.claim('d:5', 'inflight', 60_000)).toBeUndefined()
      await store.put('d:5', 'done', 60_000)
      expect(await store.read('d:5')).toBeUndefined()
      expect(await store.list('d:')).toEqual([])
      for (let i = 0; i < 5; i++) expect(await store.limit('bot', limit('c'))).toBe(ALLOWED)
      await server.restart()
      await until(() => opened.health().up, 'the store to recover')
    } finally {
      await store.close()
    }
  })

  it('shared: state that lives only in Redis is never answered from elsewhere; one circuit, one warning', async () => {
    for (const onError of ['local', 'open'] as const) {
      const { opened, store, lines } = await open(server, onError)
      try {
        await opened.start()
        const shared = store.shared
        await shared.put('block:bot:chat:1', '{}', 60_000)
        expect(await shared.read('block:bot:chat:1')).toBe('{}')
        await server.kill()
        // A failure seen through the shared view takes the guard down, once, in on_error's words.
        await expect(shared.read('block:bot:chat:1')).rejects.toEqual(new StoreError('store unavailable'))
        expect(opened.health()).toEqual({ up: false, ready: true, detail: `down (on_error ${onError})` })
        await expect(shared.put('block:bot:chat:2', '{}', 60_000)).rejects.toBeInstanceOf(StoreError)
        await expect(shared.list('block:')).rejects.toBeInstanceOf(StoreError)
        expect(shared.chain?.()).toBeUndefined()
        // The guard itself still answers as on_error says.
        expect(await store.read('block:bot:chat:1')).toBeUndefined()
        const warnings = lines.filter((line) => String(line.msg).startsWith('store unavailable'))
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toMatchObject({ on_error: onError })
        await server.restart()
        await until(() => opened.health().up, 'the store to recover')
        await shared.put('block:bot:chat:3', '{}', 60_000)
        expect(await shared.read('block:bot:chat:3')).toBe('{}')
      } finally {
        await store.close()
      }
    }
  })

  it('a Redis slower than the timeout counts as down: the operation falls back, then Redis is used again', async () => {
    const { opened, store, metrics, lines } = await open(server, 'local')
    try {
      await opened.start()
      for (let i = 0; i < 20; i++) await store.limit('bot', limit(`warm${i}`))
      expect(metric(metrics, /^botgate_store_errors_total\{operation="limit"\} (\d+)$/m)).toBe(0)
      await server.command('CLIENT', 'PAUSE', '1500', 'ALL')
      // answered (by the in-process store) though Redis holds every command for 1.5 s
      expect(await store.limit('bot', limit('paused'))).toBe(ALLOWED)
      expect(metric(metrics, /^botgate_store_errors_total\{operation="limit"\} (\d+)$/m)).toBe(1)
      const warning = lines.find((line) => line.msg?.toString().startsWith('store unavailable'))
      expect(warning).toMatchObject({
        operation: 'limit',
        error: 'redis: no answer within 50 ms',
        on_error: 'local',
      })
      await until(() => opened.health().up, 'the store to recover after the pause')
      expect(await store.limit('bot', limit('after'))).toBe(ALLOWED)
    } finally {
      await store.close()
    }
  })

  it('starts without Redis, says so, and connects when it comes', async () => {
    await server.kill()
    const { opened, store, lines } = await open(server, 'local')
    try {
      await opened.start() // waits connect_timeout (1 s here), then goes on
      expect(opened.health()).toMatchObject({ up: false, ready: true })
      expect(lines.find((line) => line.operation === 'connect')).toMatchObject({
        level: 'warn',
        error: 'redis: not reachable at startup',
      })
      expect(await store.limit('bot', limit('d'))).toBe(ALLOWED)
      await server.restart()
      await until(() => opened.health().up, 'the store to connect')
    } finally {
      await store.close()
    }
  })
})
