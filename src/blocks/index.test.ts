import { describe, expect, it } from 'vitest'
import { isPromise } from '../pipeline/run.js'
import { type Entry, type LimitKey, type Store, StoreError } from '../store/index.js'
import { MemoryStore } from '../store/memory.js'
import { Blocks } from './index.js'

const T0 = Date.UTC(2025, 5, 1)

/** A fake clock and a memory store on it: two "replicas" share one store, as with redis. */
function setup() {
  const clock = { now: T0 }
  const store = new MemoryStore({ clock: () => clock.now })
  const replica = () => new Blocks(store, { clock: () => clock.now, maxPerBot: 3 })
  return { clock, store, replica }
}

/** Records every key read, to show what the request path costs. */
class CountingStore implements Store {
  readonly kind = 'memory'
  readonly reads: string[] = []
  readonly inner: Store
  constructor(inner: Store) {
    this.inner = inner
  }
  claim(key: string, value: string, ttlMs: number) {
    return this.inner.claim(key, value, ttlMs)
  }
  put(key: string, value: string, ttlMs: number) {
    return this.inner.put(key, value, ttlMs)
  }
  read(key: string) {
    this.reads.push(key)
    return this.inner.read(key)
  }
  remove(key: string) {
    return this.inner.remove(key)
  }
  list(prefix: string): Promise<Entry[]> {
    return this.inner.list(prefix)
  }
  limit(group: string, keys: readonly LimitKey[]) {
    return this.inner.limit(group, keys)
  }
  close() {
    return this.inner.close()
  }
}

/** Answers with promises, like redis; `failing` makes every call reject with StoreError. */
class AsyncStore implements Store {
  readonly kind = 'redis'
  failing = false
  readonly inner: Store
  constructor(inner: Store) {
    this.inner = inner
  }
  #answer<T>(value: T | Promise<T>): Promise<T> {
    return this.failing ? Promise.reject(new StoreError('down')) : Promise.resolve(value)
  }
  claim(key: string, value: string, ttlMs: number) {
    return this.#answer(this.inner.claim(key, value, ttlMs))
  }
  put(key: string, value: string, ttlMs: number) {
    return this.#answer(this.inner.put(key, value, ttlMs))
  }
  read(key: string) {
    return this.#answer(this.inner.read(key))
  }
  remove(key: string) {
    return this.#answer(this.inner.remove(key))
  }
  list(prefix: string) {
    return this.#answer(this.inner.list(prefix))
  }
  limit(group: string, keys: readonly LimitKey[]) {
    return this.#answer(this.inner.limit(group, keys))
  }
  close() {
    return this.inner.close()
  }
}

/** Lets background refreshes (a resolved list) complete. */
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('Blocks with the memory store: the request path stays synchronous', () => {
  it('nothing blocked: undefined, synchronously', () => {
    const view = setup().replica().forBot('shop')
    const result = view.match(1, 2)
    expect(isPromise(result)).toBe(false)
    expect(result).toBeUndefined()
  })

  it('a blocked chat or user is found at once, then from the snapshot, never through a promise', async () => {
    const blocks = setup().replica()
    const view = blocks.forBot('shop')
    await blocks.block('shop', 'chat', -100123, 60_000)
    await blocks.block('shop', 'user', 42, 60_000)
    for (let round = 0; round < 2; round++) {
      const results = [view.match(-100123, 7), view.match(5, 42), view.match(5, 7), view.match(undefined, 42)]
      expect(results.some(isPromise)).toBe(false)
      expect(results).toEqual(['chat', 'user', undefined, 'user'])
      await settle() // the snapshot refresh started by the first round completes
    }
  })

  it('blocks are per bot', async () => {
    const blocks = setup().replica()
    await blocks.block('shop', 'chat', 5, 60_000)
    expect(blocks.forBot('news').match(5, 5)).toBeUndefined()
  })

  it('a block ends with its duration, in the store and in the snapshot', async () => {
    const { clock, replica } = setup()
    const blocks = replica()
    const view = blocks.forBot('shop')
    await blocks.block('shop', 'chat', 5, 60_000)
    expect(view.match(5, undefined)).toBe('chat')
    await settle()
    clock.now += 59_999
    expect(view.match(5, undefined)).toBe('chat')
    clock.now += 1
    expect(view.match(5, undefined)).toBeUndefined()
    expect(await blocks.list()).toEqual([])
  })

  it('unblock applies at once, and says whether there was a block', async () => {
    const blocks = setup().replica()
    const view = blocks.forBot('shop')
    await blocks.block('shop', 'user', 9, 60_000)
    expect(view.match(undefined, 9)).toBe('user')
    await settle()
    expect(await blocks.unblock('shop', 'user', 9)).toBe(true)
    expect(view.match(undefined, 9)).toBeUndefined()
    expect(await blocks.unblock('shop', 'user', 9)).toBe(false)
  })

  it('every replica honours a block at once, even one whose snapshot said "none"', async () => {
    const { replica } = setup()
    const a = replica()
    const b = replica()
    await a.block('shop', 'chat', 1, 60_000)
    expect(b.forBot('shop').match(1, undefined)).toBe('chat')
    await settle()
    await a.block('shop', 'chat', 2, 60_000) // b's snapshot is now one generation behind
    expect(b.forBot('shop').match(2, undefined)).toBe('chat')
    await a.unblock('shop', 'chat', 1)
    expect(b.forBot('shop').match(1, undefined)).toBeUndefined()
  })

  it('reads one key per update in the steady state, blocks or not', async () => {
    const clock = { now: T0 }
    const store = new CountingStore(new MemoryStore({ clock: () => clock.now }))
    const blocks = new Blocks(store, { clock: () => clock.now })
    const view = blocks.forBot('shop')
    view.match(1, 1)
    expect(store.reads).toEqual(['blocks:shop'])
    await blocks.block('shop', 'chat', 1, 60_000)
    store.reads.length = 0
    expect(view.match(1, 2)).toBe('chat') // new generation: direct reads, and a refresh starts
    expect(store.reads).toEqual(['blocks:shop', 'block:shop:chat:1', 'block:shop:user:2'])
    await settle()
    store.reads.length = 0
    for (let i = 0; i < 5; i++) view.match(i, i + 10)
    expect(store.reads).toEqual(Array(5).fill('blocks:shop'))
  })
})

describe('Blocks with a store that answers with promises (redis)', () => {
  it('answers through a promise with the same results', async () => {
    const store = new AsyncStore(new MemoryStore())
    const blocks = new Blocks(store)
    const view = blocks.forBot('shop')
    expect(await view.match(1, 1)).toBeUndefined()
    await blocks.block('shop', 'chat', 1, 60_000)
    const found = view.match(1, 2)
    expect(isPromise(found)).toBe(true)
    expect(await found).toBe('chat')
    await settle()
    expect(await view.match(1, 2)).toBe('chat')
    expect(await view.match(3, 2)).toBeUndefined()
  })

  it('when the store fails, the last snapshot decides and nothing rejects', async () => {
    const store = new AsyncStore(new MemoryStore())
    const blocks = new Blocks(store)
    const view = blocks.forBot('shop')
    await blocks.block('shop', 'user', 7, 60_000)
    await view.match(undefined, 7)
    await settle()
    store.failing = true
    await expect(view.match(undefined, 7)).resolves.toBe('user')
    await expect(view.match(undefined, 8)).resolves.toBeUndefined()
    await expect(blocks.block('shop', 'user', 8, 60_000)).rejects.toBeInstanceOf(StoreError)
  })
})

describe('Blocks: the admin side', () => {
  it('lists live blocks sorted, with what is left of each, of one bot or all', async () => {
    const { clock, replica } = setup()
    const blocks = replica()
    await blocks.block('shop', 'user', 3, 120_000, { note: 'spam', by: 'alice' })
    await blocks.block('shop', 'chat', -5, 60_000)
    await blocks.block('news', 'chat', 1, 60_000)
    clock.now += 10_000
    expect(await blocks.list('shop')).toEqual([
      { bot: 'shop', kind: 'chat', id: -5, until: T0 + 60_000, at: T0, ttlMs: 50_000 },
      {
        bot: 'shop',
        kind: 'user',
        id: 3,
        until: T0 + 120_000,
        at: T0,
        note: 'spam',
        by: 'alice',
        ttlMs: 110_000,
      },
    ])
    expect((await blocks.list()).map((block) => `${block.bot}/${block.kind}/${block.id}`)).toEqual([
      'news/chat/1',
      'shop/chat/-5',
      'shop/user/3',
    ])
  })

  it('a block again replaces the first, and the cap counts only new blocks', async () => {
    const blocks = setup().replica() // at most 3 per bot
    for (const id of [1, 2, 3]) expect(await blocks.block('shop', 'chat', id, 60_000)).toBeDefined()
    expect(await blocks.block('shop', 'chat', 4, 60_000)).toBeUndefined()
    const again = await blocks.block('shop', 'chat', 2, 120_000, { note: 'longer' })
    expect(again).toMatchObject({ id: 2, until: T0 + 120_000, note: 'longer' })
    expect((await blocks.list('shop')).map((block) => block.id)).toEqual([1, 2, 3])
  })
})
