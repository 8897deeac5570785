import { describe, expect, it } from 'vitest'
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
