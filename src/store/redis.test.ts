/**
 * The Redis store against the machine's real Redis, under a prefix of its own (removed after):
 * the claim semantics the dedupe check relies on, the GCRA script computing exactly what the
 * memory store computes (same injected clock, property-tested), the server's clock, exactness
 * under concurrent replicas, TTLs on every key, and one round trip per request.
 */

import { Socket } from 'node:net'
import fc from 'fast-check'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  client,
  keysAndCleanup,
  RedisServer,
  redisServerAvailable,
  redisStoreConfig,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from '../../test/helpers/redis.js'
import { limitSpec } from './gcra.js'
import { ALLOWED, type Clock, type LimitKey, type LimitSpec, type NumberedKey, SKIPPED } from './index.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'

const shared = await sharedRedisAvailable()
const privateServer = redisServerAvailable()

async function open(url: string, prefix: string, clock?: Clock): Promise<RedisStore> {
  const store = new RedisStore({
    config: redisStoreConfig(url, prefix),
    ...(clock === undefined ? {} : { clock }),
  })
  expect(await store.waitReady(2000)).toBe(true)
  return store
}

const key = (spec: LimitSpec, name: string, replyKey?: string): LimitKey => ({ spec, key: name, replyKey })

describe.skipIf(!shared)('RedisStore on the machine Redis', () => {
  const prefix = testPrefix('store')
  let now = 1_800_000_000_000
  const clock: Clock = () => now
  let store: RedisStore
  let clocked: RedisStore
  let admin: Redis

  beforeAll(async () => {
    store = await open(SHARED_REDIS_URL, prefix)
    clocked = await open(SHARED_REDIS_URL, prefix, clock)
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
  })

  afterAll(async () => {
    // Every key the tests wrote expires by itself: none without a TTL (PTTL -1) may be left behind.
    // (-2: the key expired between SCAN and PTTL, as short-lived ones do on a loaded machine.)
    const left = await keysAndCleanup(admin, prefix)
    await Promise.all([store.close(), clocked.close()])
    admin.disconnect()
    expect([...left].filter(([, ttl]) => ttl === -1)).toEqual([])
  })

  describe('marks', () => {
    it('claims with SET NX PX: the first claim sets, later ones get the value already there', async () => {
      expect(await store.claim('d:1', 'inflight', 60_000)).toBeUndefined()
      expect(await store.claim('d:1', 'other', 60_000)).toBe('inflight')
      expect(await store.read('d:1')).toBe('inflight')
      const ttl = await admin.pttl(`${prefix}d:1`)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60_000)
    })

    it('keeps a numbered mark under the text form of its key', async () => {
      const first: NumberedKey = { space: '{n}:dedupe:', id: 4 }
      const second: NumberedKey = { space: '{n}:dedupe:', id: 5 }
      expect(await Promise.all([first, second].map((mark) => store.claim(mark, 'inflight', 60_000)))).toEqual(
        [undefined, undefined],
      )
      expect(await store.claim(first, 'inflight', 60_000)).toBe('inflight')
      await store.put(second, 'done', 60_000)
      expect(await admin.get(`${prefix}{n}:dedupe:4`)).toBe('inflight')
      expect(await store.read('{n}:dedupe:5')).toBe('done')
      await store.remove(first)
      expect(await admin.exists(`${prefix}{n}:dedupe:4`)).toBe(0)
      await store.remove('{n}:dedupe:5')
    })

    it('puts over a value with a new TTL, removes, and lists under a prefix', async () => {
      await store.claim('d:2', 'inflight', 1000)
      await store.put('d:2', 'done', 86_400_000)
      expect(await store.read('d:2')).toBe('done')
      expect(await admin.pttl(`${prefix}d:2`)).toBeGreaterThan(1000)
      await store.put('b:1', 'x', 5000)
      await store.put('b:2', 'y', 5000)
      const listed = await store.list('b:')
      expect(listed.map((entry) => [entry.key, entry.value]).sort()).toEqual([
        ['b:1', 'x'],
        ['b:2', 'y'],
      ])
      expect(listed.every((entry) => entry.ttlMs > 0 && entry.ttlMs <= 5000)).toBe(true)
      await store.remove('d:2')
      expect(await store.read('d:2')).toBeUndefined()
    })

    it('puts the marks of one hash tag asked for in one iteration with one command, each with its TTL', async () => {
      const keys = ['{b}:dedupe:1', '{b}:dedupe:2', '{b}:dedupe:3']
      await store.claim(keys[0] as string, 'inflight', 1000)
      await Promise.all(keys.map((key) => store.put(key, 'done', 86_400_000)))
      for (const key of keys) {
        expect(await store.read(key)).toBe('done')
        expect(await admin.pttl(`${prefix}${key}`)).toBeGreaterThan(86_000_000)
      }
    })

    it('applies the claims and puts of one iteration in the order they were asked for', async () => {
      // A redelivery claimed in the iteration its first copy's done mark is put: it sees `done`.
      await store.claim('{b}:order', 'inflight', 60_000)
      const [put, claim, other] = await Promise.all([
        store.put('{b}:order', 'done', 60_000),
        store.claim('{b}:order', 'inflight', 60_000),
        store.claim('{b}:order-new', 'inflight', 60_000),
      ])
      expect([put, claim, other]).toEqual([undefined, 'done', undefined])
      expect(await admin.pttl(`${prefix}{b}:order-new`)).toBeGreaterThan(50_000)
    })

    it('claims a key asked for twice in one iteration once: the second copy sees the first', async () => {
      const [first, second] = await Promise.all([
        store.claim('{b}:twice', 'inflight', 60_000),
        store.claim('{b}:twice', 'inflight', 60_000),
      ])
      expect([first, second]).toEqual([undefined, 'inflight'])
    })

    it('lets exactly one of three replicas claim each key, however they race', async () => {
      const replicas = await Promise.all([1, 2, 3].map(() => open(SHARED_REDIS_URL, prefix)))
      try {
        const keys = Array.from({ length: 200 }, (_, i) => `race:${i}`)
        const results = await Promise.all(
          keys.flatMap((k) => replicas.map((replica, r) => replica.claim(k, `replica-${r}`, 60_000))),
        )
        for (let i = 0; i < keys.length; i++) {
          const answers = results.slice(i * 3, i * 3 + 3)
          const winners = answers.filter((answer) => answer === undefined)
          expect(winners).toHaveLength(1)
          const winner = `replica-${answers.indexOf(undefined)}`
          expect(answers.filter((answer) => answer !== undefined)).toEqual([winner, winner])
        }
      } finally {
        await Promise.all(replicas.map((replica) => replica.close()))
      }
    })
  })

  describe('limits', () => {
    let group = 0
    const fresh = () => `g${group++}`

    it('computes the exact GCRA numbers with an injected clock', async () => {
      const g = fresh()
      const spec = limitSpec(10, 'min', 3, false) // T = 6 s, B = 3
      const limits = [key(spec, 'a')]
      for (let i = 0; i < 3; i++) expect(await clocked.limit(g, limits)).toBe(ALLOWED)
      expect(await clocked.limit(g, limits)).toEqual({
        allowed: false,
        denied: [0],
        retryAfterUs: 6_000_000,
        reply: -1,
      })
      now += 5999.999
      expect((await clocked.limit(g, limits)).retryAfterUs).toBe(1)
      now += 0.001
      expect(await clocked.limit(g, limits)).toBe(ALLOWED)
      expect((await clocked.limit(g, limits)).retryAfterUs).toBe(6_000_000)
    })

    it('consumes all or nothing, reports every denial and the longest wait, and replies once', async () => {
      const g = fresh()
      const wide = limitSpec(100, 'min', 100, false)
      const hour = limitSpec(1, 'h', 1, false)
      const shadow = limitSpec(1, 'day', 1, true)
      const limits = [key(wide, 'w'), key(shadow, 's'), key(hour, 'h', 'r:h')]
      expect(await clocked.limit(g, limits)).toBe(ALLOWED)
      expect(await clocked.limit(g, limits)).toEqual({
        allowed: false,
        denied: [1, 2],
        retryAfterUs: 3_600_000_000,
        reply: 2,
      })
      expect(await clocked.limit(g, limits)).toMatchObject({ denied: [1, 2], reply: -1 })
      for (let i = 0; i < 99; i++) expect(await clocked.limit(g, [key(wide, 'w')])).toBe(ALLOWED)
      expect((await clocked.limit(g, [key(wide, 'w')])).allowed).toBe(false)
    })

    it('computes exactly what the memory store computes, for any sequence (property)', async () => {
      const specs = [
        limitSpec(1, 's', 1, false),
        limitSpec(2, 's', 5, false),
        limitSpec(10, 'min', 3, false),
        limitSpec(1, 's', 2, true),
        limitSpec(30, 'min', 1, false),
      ]
      const step = fc.record({
        advanceMs: fc.oneof(
          fc.constant(0),
          fc.integer({ min: 1, max: 4000 }),
          fc.double({ min: 0, max: 50, noNaN: true }),
        ),
        limits: fc.uniqueArray(fc.integer({ min: 0, max: specs.length - 1 }), {
          minLength: 1,
          maxLength: specs.length,
        }),
      })
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
          const g = fresh()
          const memory = new MemoryStore({ clock })
          for (const { advanceMs, limits } of steps) {
            now += advanceMs
            const keys = limits.map((index) =>
              key(specs[index] as LimitSpec, `k${index}`, index === 4 ? 'r:4' : undefined),
            )
            expect(await clocked.limit(g, keys)).toEqual(memory.limit(g, keys))
          }
        }),
        { numRuns: 40 },
      )
    })

    it('evaluates the requests of one iteration one after the other, each all or nothing', async () => {
      const g = fresh()
      const spec = limitSpec(1, 'min', 3, false)
      const other = limitSpec(1, 'min', 100, false)
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, (_, i) => clocked.limit(g, [key(other, `o${i}`), key(spec, 'shared')])),
      )
      expect(outcomes.map((outcome) => outcome.allowed)).toEqual([true, true, true, false, false])
      // The denied requests consumed nothing: their own keys are untouched.
      expect(await admin.exists(`${prefix}{${g}}:o3`, `${prefix}{${g}}:o4`)).toBe(0)
    })

    it("uses Redis's clock when none is injected", async () => {
      const g = fresh()
      const limits = [key(limitSpec(1, 'day', 5, false), 'a')]
      const outcomes = []
      for (let i = 0; i < 8; i++) outcomes.push((await store.limit(g, limits)).allowed)
      expect(outcomes).toEqual([true, true, true, true, true, false, false, false])
      const retry = (await store.limit(g, limits)).retryAfterUs
      expect(retry).toBeGreaterThan(86_300_000_000)
      expect(retry).toBeLessThanOrEqual(86_400_000_000)
    })

    it('writes its keys under the hash tag of the group, each with a TTL that ends at its TAT', async () => {
      const g = fresh()
      const spec = limitSpec(1, 'min', 2, false)
      await clocked.limit(g, [key(spec, 'l:per-chat:42', 'r:per-chat:42')])
      await clocked.limit(g, [key(spec, 'l:per-chat:42', 'r:per-chat:42')])
      await clocked.limit(g, [key(spec, 'l:per-chat:42', 'r:per-chat:42')])
      expect(await admin.get(`${prefix}{${g}}:l:per-chat:42`)).toBe(
        String(Math.round(now * 1000) + 120_000_000),
      )
      const ttl = await admin.pttl(`${prefix}{${g}}:l:per-chat:42`)
      expect(ttl).toBeGreaterThan(110_000)
      expect(ttl).toBeLessThanOrEqual(120_000)
      const replyTtl = await admin.pttl(`${prefix}{${g}}:r:per-chat:42`)
      expect(replyTtl).toBeGreaterThan(50_000)
      expect(replyTtl).toBeLessThanOrEqual(60_000)
    })

    it('admits exactly the burst when three replicas hammer one key at once', async () => {
      const g = fresh()
      const replicas = await Promise.all([1, 2, 3].map(() => open(SHARED_REDIS_URL, prefix)))
      try {
        const limits = [key(limitSpec(1, 'day', 50, false), 'hot')]
        const outcomes = await Promise.all(
          Array.from({ length: 600 }, (_, i) => (replicas[i % 3] as RedisStore).limit(g, limits)),
        )
        expect(outcomes.filter((outcome) => outcome.allowed)).toHaveLength(50)
      } finally {
        await Promise.all(replicas.map((replica) => replica.close()))
      }
    })
  })

  describe('chains', () => {
    // Slow enough that a state outlives the test (its TTL is its TAT).
    const spec = limitSpec(10, 'min', 10, false)
    /** A chain on `store` of a blocks step, a claim and a limit, as the checks of one update add them. */
    const update = (
      bot: string,
      id: number,
      options: { known?: string; knownFound?: number; passTaken?: boolean } = {},
    ) => {
      const chain = store.chain()
      if (chain === undefined) throw new Error('a standalone Redis chains')
      return Promise.all([
        chain.blocks({
          generationKey: `blocks:${bot}`,
          known: options.known,
          knownFound: options.knownFound ?? -1,
          keys: [`block:${bot}:chat:1`, `block:${bot}:user:2`],
        }),
        chain.claim({ space: `{${bot}}:dedupe:`, id }, 'inflight', 60_000, options.passTaken ?? false),
        chain.limit(bot, [key(spec, 'l:per-chat:1')]),
      ])
    }
    const tat = (bot: string) => admin.get(`${prefix}{${bot}}:l:per-chat:1`)
    const mark = (bot: string, id: number) => admin.get(`${prefix}{${bot}}:dedupe:${id}`)

    it('applies every step when each lets the update through: claimed, then limited', async () => {
      expect(await update('c1', 1)).toEqual([{ generation: undefined, found: -1 }, undefined, ALLOWED])
      expect(await mark('c1', 1)).toBe('inflight')
      expect(await tat('c1')).not.toBeNull()
    })

    it('skips the claim and the limit of a blocked update: no mark, nothing consumed', async () => {
      await admin.set(`${prefix}blocks:c2`, 'gen-1', 'PX', 60_000)
      await admin.set(`${prefix}block:c2:user:2`, '{}', 'PX', 60_000)
      // Another generation than the snapshot's: the block keys decide (the user's, index 1).
      expect(await update('c2', 1, { known: 'gen-0' })).toEqual([
        { generation: 'gen-1', found: 1 },
        SKIPPED,
        SKIPPED,
      ])
      expect(await mark('c2', 1)).toBeNull()
      expect(await tat('c2')).toBeNull()
      // The snapshot's generation: the snapshot's verdict holds, whatever the keys say.
      expect(await update('c2', 2, { known: 'gen-1', knownFound: -1 })).toEqual([
        { generation: 'gen-1', found: -1 },
        undefined,
        ALLOWED,
      ])
      expect(await update('c2', 3, { known: 'gen-1', knownFound: 0 })).toEqual([
        { generation: 'gen-1', found: 0 },
        SKIPPED,
        SKIPPED,
      ])
      expect(await mark('c2', 3)).toBeNull()
    })

    it('finds nothing blocked without a generation, whatever the block keys say', async () => {
      await admin.set(`${prefix}block:c3:chat:1`, '{}', 'PX', 60_000)
      expect((await update('c3', 1, { knownFound: 0 }))[0]).toEqual({ generation: undefined, found: -1 })
    })

    it('skips the limit of a duplicate, unless the claim lets a taken mark through (shadow mode)', async () => {
      expect(await update('c4', 1)).toEqual([{ generation: undefined, found: -1 }, undefined, ALLOWED])
      const consumed = await tat('c4')
      expect(await update('c4', 1)).toEqual([{ generation: undefined, found: -1 }, 'inflight', SKIPPED])
      expect(await tat('c4')).toBe(consumed)
      expect(await update('c4', 1, { passTaken: true })).toEqual([
        { generation: undefined, found: -1 },
        'inflight',
        ALLOWED,
      ])
      expect(Number(await tat('c4'))).toBeGreaterThan(Number(consumed))
    })

    it('stops at a limit that denies: a step after it is skipped', async () => {
      const chain = store.chain()
      if (chain === undefined) throw new Error('a standalone Redis chains')
      const once = limitSpec(1, 'day', 1, false)
      await store.limit('c5', [key(once, 'l:x')])
      const [limited, claim] = await Promise.all([
        chain.limit('c5', [key(once, 'l:x')]),
        chain.claim('{c5}:after', 'inflight', 60_000, false),
      ])
      expect(limited).toMatchObject({ allowed: false, denied: [0] })
      expect(claim).toBe(SKIPPED)
      expect(await admin.exists(`${prefix}{c5}:after`)).toBe(0)
    })

    it('applies the chains of one iteration one after the other: two copies of an update, one claim', async () => {
      const [first, second] = await Promise.all([update('c6', 1), update('c6', 1)])
      expect(first).toEqual([{ generation: undefined, found: -1 }, undefined, ALLOWED])
      expect(second).toEqual([{ generation: undefined, found: -1 }, 'inflight', SKIPPED])
    })
  })
})

describe.skipIf(!privateServer)('RedisStore round trips (a private redis-server)', () => {
  let server: RedisServer
  let admin: Redis
  beforeAll(async () => {
    server = await RedisServer.start()
    admin = client(server.url)
    await admin.connect()
  })
  afterAll(async () => {
    admin.disconnect()
    await server.stop()
  })

  /** Calls per command since the server started (commands run by scripts included). */
  async function calls(): Promise<Map<string, number>> {
    const counts = new Map<string, number>()
    for (const match of (await admin.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
      counts.set(match[1] as string, Number(match[2]))
    return counts
  }

  it('sends one command per limit evaluation, however many limits it holds', async () => {
    const store = await open(server.url, 'rt:')
    try {
      const limits = [
        key(limitSpec(100, 's', 100, false), 'a', 'r:a'),
        key(limitSpec(100, 's', 100, false), 'b'),
        key(limitSpec(100, 's', 100, true), 'c'),
      ]
      await store.limit('warm', limits) // the first call on a connection sends the script itself (EVAL)
      const before = await calls()
      for (let i = 0; i < 50; i++) await store.limit('bot', limits)
      const after = await calls()
      const delta = Object.fromEntries(
        [...after].map(([name, count]) => [name, count - (before.get(name) ?? 0)]).filter(([, n]) => n !== 0),
      )
      // One round trip (EVALSHA) each; inside it the script reads the server's TIME, reads the
      // three limits with one MGET and SETs each: Redis counts those in commandstats too.
      expect(delta).toEqual({ evalsha: 50, time: 50, mget: 50, set: 150, info: 1 })
    } finally {
      await store.close()
    }
  })

  it('writes the commands of one event-loop iteration to its socket at once: one system call', async () => {
    const store = await open(server.url, 'wr:')
    const limits = [key(limitSpec(1000, 's', 1000, false), 'a')]
    let id = 0
    const iteration = () =>
      Promise.all([
        store.limit('bot', limits),
        store.claim({ space: '{bot}:d:', id: id++ }, 'inflight', 60_000),
        store.put({ space: '{bot}:done:', id: id++ }, 'done', 60_000),
        store.read('blocks:bot'),
      ])
    // What reaches the store's socket (to this server, not the admin client's): Node.js hands a
    // socket's writes to the system in _write (one chunk) or, buffered, in _writev (several).
    const adminPort = (admin.stream as Socket).localPort
    const writes: number[] = []
    const { _write } = Socket.prototype
    const _writev = Socket.prototype._writev as NonNullable<Socket['_writev']>
    const ours = (socket: Socket) => socket.remotePort === server.port && socket.localPort !== adminPort
    try {
      await iteration() // the first use of each script on a connection sends the script itself (EVAL)
      Socket.prototype._write = function (this: Socket, ...args: Parameters<Socket['_write']>) {
        if (ours(this)) writes.push(1)
        return _write.apply(this, args)
      }
      Socket.prototype._writev = function (
        this: Socket,
        ...args: Parameters<NonNullable<Socket['_writev']>>
      ) {
        if (ours(this)) writes.push(args[0].length)
        return _writev.apply(this, args)
      }
      for (let i = 0; i < 10; i++) await iteration()
    } finally {
      Socket.prototype._write = _write
      Socket.prototype._writev = _writev
      await store.close()
    }
    // Three commands per iteration (a GET, the marks script, the limit script), in one write.
    expect(writes).toEqual(Array(10).fill(3))
  })

  it('sends the operations of one event-loop iteration together: marks in one script, limits in another', async () => {
    const store = await open(server.url, 'it:')
    try {
      const limits = [key(limitSpec(100, 's', 100, false), 'a'), key(limitSpec(100, 's', 100, false), 'b')]
      // The first use of each script on a connection sends the script itself (EVAL).
      await Promise.all([
        store.limit('warm', limits),
        store.claim('{warm}:d:0', 'inflight', 60_000),
        store.put('{warm}:d:1', 'done', 60_000),
      ])
      const before = await calls()
      const outcomes = await Promise.all([
        ...Array.from({ length: 20 }, () => store.limit('bot', limits)),
        // Half of the marks with numbered keys (dedupe's): their text form has the same hash tag.
        ...Array.from({ length: 10 }, (_, i) =>
          store.claim(i < 5 ? `{bot}:d:${i}` : { space: '{bot}:d:', id: i }, 'inflight', 60_000),
        ),
        ...Array.from({ length: 10 }, () => store.read('blocks:bot')),
        ...Array.from({ length: 5 }, (_, i) =>
          store.put(i < 2 ? `{bot}:done:${i}` : { space: '{bot}:done:', id: i }, 'done', 60_000),
        ),
      ])
      const after = await calls()
      const delta = Object.fromEntries(
        [...after].map(([name, count]) => [name, count - (before.get(name) ?? 0)]).filter(([, n]) => n !== 0),
      )
      expect(outcomes.slice(0, 20)).toEqual(Array(20).fill(ALLOWED))
      expect(outcomes.slice(20, 30)).toEqual(Array(10).fill(undefined))
      // One limit script (its TIME, 20 MGETs, 40 SETs inside), one GET, and one marks script for
      // the claims and the puts together (15 SETs).
      expect(delta).toEqual({ evalsha: 2, time: 1, mget: 20, set: 55, get: 1, info: 1 })
    } finally {
      await store.close()
    }
  })

  it("sends the arguments the chains of one iteration share once: each chain only its keys and its shape's index", async () => {
    const store = await open(server.url, 'shape:')
    const monitor = await admin.duplicate().monitor()
    const sent: string[][] = []
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'evalsha') sent.push(args)
    })
    const update = (id: number, passTaken: boolean) => {
      const chain = store.chain()
      if (chain === undefined) throw new Error('a standalone Redis chains')
      return Promise.all([
        chain.blocks({
          generationKey: 'blocks:bot',
          known: undefined,
          knownFound: -1,
          keys: ['block:bot:chat:1'],
        }),
        chain.claim({ space: '{bot}:dedupe:', id }, 'inflight', 60_000, passTaken),
        // Runs only when the claim before it let the update through: shows which shape applied.
        chain.claim({ space: '{bot}:second:', id }, 'x', 60_000, false),
      ])
    }
    try {
      await update(0, false) // the first use of the script on a connection sends the script itself (EVAL)
      // Twelve updates of one shape, and a copy of the first that lets a taken mark through: another.
      const answers = await Promise.all([
        ...Array.from({ length: 12 }, (_, i) => update(i + 1, false)),
        update(1, true),
      ])
      await new Promise((resolve) => setTimeout(resolve, 200)) // MONITOR reports after the reply
      // The copy's claim finds the mark taken and lets it through (its own shape), so its second
      // claim runs and finds the first copy's.
      expect(answers).toEqual([
        ...Array(12).fill([{ generation: undefined, found: -1 }, undefined, undefined]),
        [{ generation: undefined, found: -1 }, 'inflight', 'x'],
      ])
      expect(sent).toHaveLength(1)
      const [, , keyCount, ...rest] = sent[0] as string[]
      expect(Number(keyCount)).toBe(13 * 4)
      const argv = rest.slice(13 * 4)
      // The time, two shapes (each its length, then its steps' count and each step's kind and
      // three arguments), then the thirteen chains' picks: 44 arguments, not 2 + 13 x 13.
      const blocks = ['3', 'b', '', '-1', '1', 'c', 'inflight', '60000']
      const second = ['c', 'x', '60000', '0']
      const picks = [...Array(12).fill('1'), '2']
      expect(argv).toEqual([
        '',
        '2',
        '13',
        ...blocks,
        '0',
        ...second,
        '13',
        ...blocks,
        '1',
        ...second,
        '13',
        ...picks,
      ])
    } finally {
      monitor.disconnect()
      await store.close()
    }
  })

  it("reads a bot's blocks generation once for all the chains of one iteration", async () => {
    const store = await open(server.url, 'gen:')
    const update = (id: number) => {
      const chain = store.chain()
      if (chain === undefined) throw new Error('a standalone Redis chains')
      return Promise.all([
        chain.blocks({
          generationKey: 'blocks:bot',
          known: 'g1',
          knownFound: -1,
          keys: ['block:bot:chat:1'],
        }),
        chain.claim({ space: '{bot}:dedupe:', id }, 'inflight', 60_000, false),
      ])
    }
    try {
      await admin.set('gen:blocks:bot', 'g1', 'PX', 60_000)
      await update(0) // the first use of the script on a connection sends the script itself (EVAL)
      const before = await calls()
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => update(i + 1)))
      const after = await calls()
      const delta = Object.fromEntries(
        [...after].map(([name, count]) => [name, count - (before.get(name) ?? 0)]).filter(([, n]) => n !== 0),
      )
      expect(answers).toEqual(Array(12).fill([{ generation: 'g1', found: -1 }, undefined]))
      // One chain script: one GET of the generation, twelve claims (SET NX).
      expect(delta).toEqual({ evalsha: 1, get: 1, set: 12, info: 1 })
    } finally {
      await store.close()
    }
  })
})
