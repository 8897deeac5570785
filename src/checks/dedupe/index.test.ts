import { describe, expect, it } from 'vitest'
import { type Answer, failure } from '../../pipeline/answer.js'
import { Exchange } from '../../pipeline/exchange.js'
import { StoreError } from '../../store/index.js'
import { MemoryStore } from '../../store/memory.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import { createDedupeCheck, settleDedupe } from './index.js'

const noError = (error: unknown) => {
  throw error
}

function setup(ttl = '1h') {
  let now = 0
  const store = new MemoryStore({ clock: () => now })
  const check = createDedupeCheck({ ttl }, false, {
    store,
    bot: 'b',
    upstreamTimeoutMs: 5000,
    onError: noError,
  })
  const update = (id: number) => readEnvelope({ update_id: id, message: {} }) as Update
  const run = (id: number) => {
    const exchange = new Exchange({} as never, 'r', 0)
    return { exchange, verdict: check?.run(exchange, update(id)) }
  }
  return { store, run, advance: (ms: number) => (now += ms) }
}

const OK: Answer = {
  status: 200,
  reason: 'forwarded',
  outcome: 'forwarded',
  body: null,
  contentType: undefined,
  retryAfter: undefined,
  close: false,
}
const DROPPED: Answer = { ...OK, reason: 'command_not_allowed', outcome: 'dropped' }
const FAILED = failure(502, 'upstream_unreachable', 'failed')
describe('the dedupe check', () => {
  it('lets the first copy through, holding an in-flight mark', () => {
    const { run, store } = setup()
    const first = run(1)
    expect(first.verdict).toBeUndefined()
    expect(first.exchange.dedupe).toMatchObject({ space: '{b}:dedupe:', id: 1 })
    expect(store.read({ space: '{b}:dedupe:', id: 1 })).toBe('inflight')
  })

  it('answers a concurrent copy 503 with Retry-After, never forwarding it', () => {
    const { run } = setup()
    run(1)
    expect(run(1).verdict).toEqual({ kind: 'reject', status: 503, reason: 'duplicate_update', retryAfter: 5 })
  })

  it('drops a copy of a delivered update with 200, for ttl', () => {
    const { run, advance } = setup('1h')
    const first = run(1)
    settleDedupe(first.exchange.dedupe!, OK)
    expect(run(1).verdict).toEqual({ kind: 'drop', reason: 'duplicate_update' })
    advance(3_599_999)
    expect(run(1).verdict).toMatchObject({ reason: 'duplicate_update' })
    advance(1)
    expect(run(1).verdict).toBeUndefined()
  })

  it('counts an update dropped by a later check as done', () => {
    const { run } = setup()
    const first = run(1)
    settleDedupe(first.exchange.dedupe!, DROPPED)
    expect(run(1).verdict).toMatchObject({ kind: 'drop', reason: 'duplicate_update' })
  })

  it('releases the mark when the forward failed, so the redelivery goes through', () => {
    const { run } = setup()
    const first = run(1)
    settleDedupe(first.exchange.dedupe!, FAILED)
    expect(run(1).verdict).toBeUndefined()
  })

  it('lets an in-flight mark expire soon after the upstream timeout (a replica died mid-forward)', () => {
    const { run, advance } = setup()
    run(1)
    advance(14_999)
    expect(run(1).verdict).toMatchObject({ status: 503 })
    advance(1)
    expect(run(1).verdict).toBeUndefined()
  })

  it('keeps ids of different bots apart, and is absent with dedupe: false', () => {
    const store = new MemoryStore()
    const a = createDedupeCheck({ ttl: '1h' }, false, {
      store,
      bot: 'a',
      upstreamTimeoutMs: 1000,
      onError: noError,
    })
    const b = createDedupeCheck({ ttl: '1h' }, false, {
      store,
      bot: 'b',
      upstreamTimeoutMs: 1000,
      onError: noError,
    })
    const update = readEnvelope({ update_id: 7, message: {} }) as Update
    expect(a?.run(new Exchange({} as never, 'r', 0), update)).toBeUndefined()
    expect(b?.run(new Exchange({} as never, 'r', 0), update)).toBeUndefined()
    expect(
      createDedupeCheck(false, false, { store, bot: 'c', upstreamTimeoutMs: 1000, onError: noError }),
    ).toBeUndefined()
  })
})

describe('the dedupe check with a store that cannot answer (on_error: closed)', () => {
  it('answers 503 store_unavailable, never a drop', async () => {
    const failing = new MemoryStore()
    failing.claim = (() => Promise.reject(new StoreError('down'))) as unknown as MemoryStore['claim']
    const check = createDedupeCheck({ ttl: '1h' }, false, {
      store: failing,
      bot: 'b',
      upstreamTimeoutMs: 1000,
      onError: noError,
    })
    const exchange = new Exchange({} as never, 'r', 0)
    const verdict = await check?.run(exchange, readEnvelope({ update_id: 1, message: {} }) as Update)
    expect(verdict).toEqual({ kind: 'reject', status: 503, reason: 'store_unavailable', retryAfter: 5 })
    expect(exchange.dedupe).toBeUndefined()
  })
})
