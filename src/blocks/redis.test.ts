/**
 * Blocks on the machine's real Redis, through two stores as two replicas would hold them: a block
 * set through one applies to the other's very next update, even to reads that share one GET.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  client,
  keysAndCleanup,
  redisStoreConfig,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from '../../test/helpers/redis.js'
import { RedisStore } from '../store/redis.js'
import { Blocks } from './index.js'

const shared = await sharedRedisAvailable()

function open(prefix: string): RedisStore {
  return new RedisStore({ config: redisStoreConfig(SHARED_REDIS_URL, prefix) })
}

describe.skipIf(!shared)('blocks shared by two replicas on Redis', () => {
  const prefix = testPrefix('blocks')
  const stores = [open(prefix), open(prefix)]
  const [a, b] = stores.map((store) => new Blocks(store)) as [Blocks, Blocks]

  beforeAll(async () => {
    for (const store of stores) expect(await store.waitReady(2000)).toBe(true)
  })

  afterAll(async () => {
    const admin = client(SHARED_REDIS_URL)
    await admin.connect()
    const left = await keysAndCleanup(admin, prefix)
    admin.disconnect()
    await Promise.all(stores.map((store) => store.close()))
    expect([...left].filter(([, ttl]) => ttl < 0)).toEqual([])
  })

  it('a block set on one replica applies to the next update on the other, and unblock too', async () => {
    const view = b.forBot('shop')
    expect(await view.match(42, 7)).toBeUndefined()
    await a.block('shop', 'chat', 42, 60_000)
    // The updates read in one event-loop iteration share one GET of the generation: all see it.
    const seen = await Promise.all([view.match(42, 7), view.match(42, 8), view.match(43, 7)])
    expect(seen).toEqual(['chat', 'chat', undefined])
    await a.unblock('shop', 'chat', 42)
    expect(await view.match(42, 7)).toBeUndefined()
  })

  it('a block is honoured between any two updates, however fast they follow each other', async () => {
    const view = b.forBot('fast')
    for (let i = 0; i < 20; i++) {
      // An update read while the block is being written may or may not see it; the first one read
      // after the write completed must.
      const during = view.match(1000 + i, undefined)
      await a.block('fast', 'chat', 1000 + i, 60_000)
      await during
      expect(await view.match(1000 + i, undefined)).toBe('chat')
    }
  })

  it('a block set on one replica stops the next chained update on the other, before its claim', async () => {
    const store = stores[1] as RedisStore
    const view = b.forBot('chained')
    /** One update's chain on the second replica: the blocks step, then a dedupe claim. */
    const update = async (chat: number, id: number) => {
      const chain = store.chain()
      if (chain === undefined) throw new Error('a standalone Redis chains')
      const [kind, claim] = await Promise.all([
        view.matchOn(chain, chat, 7),
        chain.claim({ space: '{chained}:dedupe:', id }, 'inflight', 60_000, false),
      ])
      return { kind, claimed: claim === undefined }
    }
    expect(await update(42, 1)).toEqual({ kind: undefined, claimed: true })
    await a.block('chained', 'chat', 42, 60_000)
    // A generation the replica has no snapshot of: the block keys decide, in the same round trip.
    expect(await update(42, 2)).toEqual({ kind: 'chat', claimed: false })
    expect(await update(43, 3)).toEqual({ kind: undefined, claimed: true })
    // Once the snapshot is refreshed, it decides under its generation; a change makes it stale again.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await update(42, 4)).toEqual({ kind: 'chat', claimed: false })
    await a.unblock('chained', 'chat', 42)
    expect(await update(42, 5)).toEqual({ kind: undefined, claimed: true })
    await a.block('chained', 'user', 7, 60_000)
    expect(await update(44, 6)).toEqual({ kind: 'user', claimed: false })
  })
})
