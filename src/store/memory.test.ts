import { describe, expect, it } from 'vitest'
import { limitSpec } from './gcra.js'
import { ALLOWED, type LimitKey, type LimitSpec } from './index.js'
import { MemoryStore } from './memory.js'

function clocked(options: { maxEntries?: number } = {}) {
  let now = 1_000_000
  const store = new MemoryStore({ ...options, clock: () => now })
  return { store, advance: (ms: number) => (now += ms) }
}

describe('MemoryStore', () => {
  it('claims a key once until it expires', () => {
    const { store, advance } = clocked()
    expect(store.claim('a', 'inflight', 1000)).toBeUndefined()
    expect(store.claim('a', 'other', 1000)).toBe('inflight')
    advance(999)
    expect(store.claim('a', 'other', 1000)).toBe('inflight')
    advance(1)
    expect(store.claim('a', 'again', 1000)).toBeUndefined()
    expect(store.read('a')).toBe('again')
  })

  it('puts over a value, with a new time to live, and removes', () => {
    const { store, advance } = clocked()
    store.claim('a', 'inflight', 100)
    store.put('a', 'done', 10_000)
    advance(5000)
    expect(store.read('a')).toBe('done')
    store.remove('a')
    expect(store.read('a')).toBeUndefined()
  })

  it('lists live marks under a prefix with their remaining time', async () => {
    const { store, advance } = clocked()
    store.put('block:1', 'x', 1000)
    store.put('block:2', 'y', 5000)
    store.put('other:1', 'z', 5000)
    advance(2000)
    expect(await store.list('block:')).toEqual([{ key: 'block:2', value: 'y', ttlMs: 3000 }])
  })

  it('stays within maxEntries, evicting the least recently written mark', () => {
    const { store } = clocked({ maxEntries: 3 })
    for (const key of ['a', 'b', 'c']) store.put(key, key, 60_000)
    store.put('a', 'a2', 60_000) // rewritten: now the most recent
    store.put('d', 'd', 60_000)
    expect(store.size).toBe(3)
    expect(store.read('b')).toBeUndefined()
    expect(store.read('a')).toBe('a2')
    expect(store.read('d')).toBe('d')
  })

  it('keeps evicting in least-recently-written order over many passes of a full store', () => {
    // Eviction walks a kept iterator: it must survive rewrites, removals and its own exhaustion.
    const { store } = clocked({ maxEntries: 4 })
    for (let i = 0; i < 1000; i++) {
      store.put(`k${i}`, String(i), 60_000)
      if (i % 3 === 0) store.put('keep', String(i), 60_000) // rewritten often: never the oldest
      if (i % 11 === 0) store.remove(`k${i - 1}`)
    }
    expect(store.size).toBeLessThanOrEqual(4)
    expect(store.read('keep')).toBe('999')
    expect(store.read('k999')).toBe('999')
    expect(store.read('k998')).toBe('998')
    expect(store.read('k990')).toBeUndefined()
  })

  it('keeps marks of any number of distinct values, each with its own value', async () => {
    const { store } = clocked()
    for (let i = 0; i < 50; i++) store.put(`block:${i}`, `{"reason":"r${i}"}`, 60_000)
    for (let i = 0; i < 50; i++) expect(store.read(`block:${i}`)).toBe(`{"reason":"r${i}"}`)
    // Rewritten with a value of the first three, or with another value kept beside.
    store.put('block:7', '{"reason":"r0"}', 60_000)
    store.put('block:8', 'changed', 60_000)
    expect([store.read('block:7'), store.read('block:8')]).toEqual(['{"reason":"r0"}', 'changed'])
    expect(store.claim('block:9', 'x', 1000)).toBe('{"reason":"r9"}')
    const listed = await store.list('block:4')
    expect(listed).toEqual([
      { key: 'block:4', value: '{"reason":"r4"}', ttlMs: 60_000 },
      ...Array.from({ length: 10 }, (_, i) => ({
        key: `block:4${i}`,
        value: `{"reason":"r4${i}"}`,
        ttlMs: 60_000,
      })),
    ])
  })

  it('drops a value kept beside with its mark: rewritten, removed, evicted or expired', () => {
    const { store, advance } = clocked({ maxEntries: 10 })
    for (const value of ['inflight', 'done', 'third']) store.put(`first:${value}`, value, 60_000)
    store.put('a', 'v1', 1000)
    store.put('b', 'v2', 1000)
    expect(store.valuesKeptBeside).toBe(2)
    store.put('a', 'done', 1000)
    store.remove('b')
    expect(store.valuesKeptBeside).toBe(0)
    for (let i = 0; i < 100; i++) store.put(`k${i}`, `value ${i}`, 1000)
    expect(store.size).toBe(10)
    expect(store.valuesKeptBeside).toBe(10)
    expect(store.read('k99')).toBe('value 99')
    advance(1000)
    for (let i = 0; i < 10; i++) store.put(`n${i}`, 'done', 60_000)
    expect(store.valuesKeptBeside).toBe(0)
    expect(store.read('n9')).toBe('done')
  })

  it('keeps marks whole when the clock steps back before the store was created', () => {
    let now = 1_000_000
    const store = new MemoryStore({ clock: () => now })
    now -= 5000
    expect(store.claim('a', 'inflight', 1000)).toBeUndefined()
    expect(store.claim('a', 'inflight', 1000)).toBe('inflight')
    now += 5000
    expect(store.read('a')).toBe('inflight')
    now += 1000
    expect(store.read('a')).toBeUndefined()
  })

  it('keeps numbered marks by space and number: claimed, put, read, removed, listed by their text form', async () => {
    const { store, advance } = clocked()
    const mark = (id: number) => ({ space: '{b}:dedupe:', id })
    expect(store.claim(mark(7), 'inflight', 1000)).toBeUndefined()
    expect(store.claim(mark(7), 'inflight', 1000)).toBe('inflight')
    expect(store.claim({ space: '{c}:dedupe:', id: 7 }, 'inflight', 1000)).toBeUndefined()
    store.put(mark(7), 'done', 60_000)
    store.put(mark(70), 'done', 30_000)
    advance(1000)
    expect(store.read(mark(7))).toBe('done')
    expect(store.read({ space: '{c}:dedupe:', id: 7 })).toBeUndefined()
    expect(store.read({ space: '{none}:', id: 7 })).toBeUndefined()
    store.put('{b}:other', 'x', 60_000)
    expect(await store.list('{b}:dedupe:7')).toEqual([
      { key: '{b}:dedupe:7', value: 'done', ttlMs: 59_000 },
      { key: '{b}:dedupe:70', value: 'done', ttlMs: 29_000 },
    ])
    expect((await store.list('{b}:')).map((entry) => entry.key)).toEqual([
      '{b}:other',
      '{b}:dedupe:7',
      '{b}:dedupe:70',
    ])
    store.remove(mark(7))
    store.remove({ space: '{none}:', id: 7 })
    expect(store.read(mark(7))).toBeUndefined()
    expect(store.size).toBe(2)
  })

  it('bounds each space of numbered marks by maxEntries on its own, evicting in order of first write', () => {
    const { store } = clocked({ maxEntries: 3 })
    for (let id = 1; id <= 3; id++) store.claim({ space: 'a:', id }, 'inflight', 60_000)
    // Settled: the value and time to live change, the place in the eviction order does not.
    store.put({ space: 'a:', id: 1 }, 'done', 120_000)
    store.claim({ space: 'a:', id: 4 }, 'inflight', 60_000)
    expect(store.read({ space: 'a:', id: 1 })).toBeUndefined()
    expect(store.read({ space: 'a:', id: 2 })).toBe('inflight')
    store.claim({ space: 'a:', id: 5 }, 'inflight', 60_000)
    store.claim({ space: 'b:', id: 1 }, 'inflight', 60_000)
    store.put('s', 'v', 60_000)
    expect(store.size).toBe(5)
    expect([1, 2, 3, 4, 5].map((id) => store.read({ space: 'a:', id }))).toEqual([
      undefined,
      undefined,
      'inflight',
      'inflight',
      'inflight',
    ])
    expect(store.read({ space: 'b:', id: 1 })).toBe('inflight')
  })

  it('holds memory to the live marks when a sender cycles through keys', () => {
    const { store, advance } = clocked({ maxEntries: 1000 })
    for (let i = 0; i < 100_000; i++) {
      store.claim(`k${i}`, '1', 10)
      advance(1)
    }
    expect(store.size).toBeLessThanOrEqual(1000)
    expect(store.size).toBeLessThan(100) // expired marks are swept as writes go on
  })
})

const key = (spec: LimitSpec, name: string, replyKey?: string): LimitKey => ({ spec, key: name, replyKey })

describe('MemoryStore.limit (GCRA with an injected clock)', () => {
  const tenPerSecond = limitSpec(10, 's', 3, false) // T = 100 ms, B = 3

  it('admits the burst, then one per interval, and says exactly how long to wait', () => {
    const { store, advance } = clocked()
    const limits = [key(tenPerSecond, 'a')]
    for (let i = 0; i < 3; i++) expect(store.limit('bot', limits)).toBe(ALLOWED)
    expect(store.limit('bot', limits)).toEqual({
      allowed: false,
      denied: [0],
      retryAfterUs: 100_000,
      reply: -1,
    })
    advance(99.999)
    expect(store.limit('bot', limits).retryAfterUs).toBe(1)
    advance(0.001)
    expect(store.limit('bot', limits)).toBe(ALLOWED)
    expect(store.limit('bot', limits).retryAfterUs).toBe(100_000)
  })

  it('charges nothing for denied requests', () => {
    const { store, advance } = clocked()
    const limits = [key(tenPerSecond, 'a')]
    for (let i = 0; i < 3; i++) store.limit('bot', limits)
    for (let i = 0; i < 100; i++) expect(store.limit('bot', limits).allowed).toBe(false)
    advance(100)
    expect(store.limit('bot', limits)).toBe(ALLOWED)
    expect(store.limit('bot', limits).allowed).toBe(false)
  })

  it('refills one request per interval while idle, up to the burst', () => {
    const { store, advance } = clocked()
    const limits = [key(tenPerSecond, 'a')]
    for (let i = 0; i < 3; i++) store.limit('bot', limits)
    advance(250)
    expect(store.limit('bot', limits).allowed).toBe(true)
    expect(store.limit('bot', limits).allowed).toBe(true)
    expect(store.limit('bot', limits).allowed).toBe(false)
    advance(10_000)
    for (let i = 0; i < 3; i++) expect(store.limit('bot', limits).allowed).toBe(true)
    expect(store.limit('bot', limits).allowed).toBe(false)
  })

  it('consumes every limit or none: one exhausted limit holds the others back', () => {
    const { store } = clocked()
    const wide = limitSpec(100, 's', 100, false)
    const narrow = limitSpec(1, 'h', 1, false)
    expect(store.limit('bot', [key(wide, 'w'), key(narrow, 'n')])).toBe(ALLOWED)
    for (let i = 0; i < 50; i++) {
      expect(store.limit('bot', [key(wide, 'w'), key(narrow, 'n')])).toEqual({
        allowed: false,
        denied: [1],
        retryAfterUs: 3_600_000_000,
        reply: -1,
      })
    }
    // w consumed once in all: 99 of its burst of 100 remain
    for (let i = 0; i < 99; i++) expect(store.limit('bot', [key(wide, 'w')])).toBe(ALLOWED)
    expect(store.limit('bot', [key(wide, 'w')]).allowed).toBe(false)
  })

  it('reports the longest wait over the denying limits', () => {
    const { store } = clocked()
    const a = limitSpec(1, 's', 1, false)
    const b = limitSpec(1, 'min', 1, false)
    store.limit('bot', [key(a, 'a'), key(b, 'b')])
    expect(store.limit('bot', [key(a, 'a'), key(b, 'b')])).toMatchObject({
      denied: [0, 1],
      retryAfterUs: 60_000_000,
    })
  })

  it('evaluates shadow limits without letting them block or be consumed when they deny', () => {
    const { store } = clocked()
    const shadow = limitSpec(1, 'h', 1, true)
    const enforce = limitSpec(10, 's', 3, false)
    expect(store.limit('bot', [key(shadow, 's'), key(enforce, 'e')])).toBe(ALLOWED)
    expect(store.limit('bot', [key(shadow, 's'), key(enforce, 'e')])).toEqual({
      allowed: true,
      denied: [0],
      retryAfterUs: 0,
      reply: -1,
    })
    expect(store.limit('bot', [key(shadow, 's'), key(enforce, 'e')])).toMatchObject({
      allowed: true,
      denied: [0],
    })
    // the enforcing limit consumed three times: its burst is spent
    expect(store.limit('bot', [key(shadow, 's'), key(enforce, 'e')])).toMatchObject({
      allowed: false,
      denied: [0, 1],
      retryAfterUs: 100_000,
    })
  })

  it('keeps groups apart', () => {
    const { store } = clocked()
    const one = limitSpec(1, 'h', 1, false)
    expect(store.limit('a', [key(one, 'k')])).toBe(ALLOWED)
    expect(store.limit('b', [key(one, 'k')])).toBe(ALLOWED)
    expect(store.limit('a', [key(one, 'k')]).allowed).toBe(false)
  })

  it('sets a reply-once mark for one interval: the first denial replies, the next ones do not', () => {
    const { store, advance } = clocked()
    const spec = limitSpec(20, 'min', 1, false) // T = 3 s
    const limits = [key(spec, 'c', 'r:c')]
    store.limit('bot', limits)
    expect(store.limit('bot', limits).reply).toBe(0)
    expect(store.limit('bot', limits).reply).toBe(-1)
    advance(2999)
    expect(store.limit('bot', limits).reply).toBe(-1)
    advance(1)
    // the limit itself passes again at 3 s; spend it, then the next denial replies once more
    expect(store.limit('bot', limits)).toBe(ALLOWED)
    expect(store.limit('bot', limits).reply).toBe(0)
  })

  it('replies for the first denying enforcing limit that has a reply, never for a shadow one', () => {
    const { store } = clocked()
    const shadow = limitSpec(1, 'h', 1, true)
    const plain = limitSpec(1, 'h', 1, false)
    const replying = limitSpec(1, 'h', 1, false)
    const limits = [key(shadow, 's', 'r:s'), key(plain, 'p'), key(replying, 'q', 'r:q')]
    store.limit('bot', limits)
    expect(store.limit('bot', limits)).toMatchObject({ denied: [0, 1, 2], reply: 2 })
    expect(store.limit('bot', limits)).toMatchObject({ denied: [0, 1, 2], reply: -1 })
  })

  it('forgets a key once its TAT has passed, and holds memory when a sender cycles through keys', () => {
    const { store, advance } = clocked({ maxEntries: 1000 })
    const spec = limitSpec(10, 's', 1, false)
    for (let i = 0; i < 100_000; i++) {
      store.limit('bot', [key(spec, `k${i}`)])
      advance(1)
    }
    expect(store.limitStates).toBeLessThanOrEqual(1000)
    expect(store.limitStates).toBeLessThan(200) // T is 100 ms: older states are expired and swept
    expect(store.size).toBe(0) // marks live apart: a flood of limit keys evicts no dedupe mark
  })

  it('keeps a key that is being denied from eviction by a flood of new keys', () => {
    const { store } = clocked({ maxEntries: 1000 })
    const spec = limitSpec(1, 'h', 1, false)
    store.limit('bot', [key(spec, 'abuser')])
    for (let i = 0; i < 10_000; i++) {
      store.limit('bot', [key(spec, `new${i}`)])
      expect(store.limit('bot', [key(spec, 'abuser')]).allowed).toBe(false)
    }
  })
})
