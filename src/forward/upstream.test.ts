import { describe, expect, it } from 'vitest'
import { Upstream, UpstreamPools } from './upstream.js'

const config = (url: string, timeoutMs = 25_000) => ({
  url: new URL(url),
  timeoutMs,
  secretToken: undefined,
  sign: undefined,
  queue: undefined,
})

describe('UpstreamPools', () => {
  it('gives bots with the same origin and connect timeout one pool', () => {
    const pools = new UpstreamPools()
    const a = new Upstream(config('http://127.0.0.1:8081/a'), pools)
    const b = new Upstream(config('http://user:pw@127.0.0.1:8081/b?x=1'), pools)
    const other = new Upstream(config('http://127.0.0.1:8082/a'), pools)
    // Connect timeouts are capped at 10 s: 25 s and 10 s connect alike, 5 s does not.
    const capped = new Upstream(config('http://127.0.0.1:8081/a', 10_000), pools)
    const faster = new Upstream(config('http://127.0.0.1:8081/a', 5_000), pools)
    expect(a.poolKey).toBe(b.poolKey)
    expect(capped.poolKey).toBe(a.poolKey)
    expect(new Set([a.poolKey, other.poolKey, faster.poolKey]).size).toBe(3)
    expect(pools.size).toBe(3)
  })

  it('closes only the pools no generation uses, and makes a new one when one is needed again', async () => {
    const pools = new UpstreamPools()
    const kept = new Upstream(config('http://127.0.0.1:8081/'), pools)
    const gone = new Upstream(config('http://127.0.0.1:8082/'), pools)
    pools.release(new Set([kept.poolKey]))
    expect(pools.size).toBe(1)
    const again = new Upstream(config('http://127.0.0.1:8082/'), pools)
    expect(again.poolKey).toBe(gone.poolKey)
    expect(pools.size).toBe(2)
    await pools.destroy()
    expect(pools.size).toBe(0)
  })
})
