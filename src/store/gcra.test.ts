import { describe, expect, it } from 'vitest'
import { conforms, limitSpec, nextTat, waitUs } from './gcra.js'

describe('limitSpec', () => {
  it('turns N per period into an interval in whole microseconds and the tolerance T x B', () => {
    expect(limitSpec(10, 's', 3, false)).toEqual({ intervalUs: 100_000, toleranceUs: 300_000, shadow: false })
    expect(limitSpec(20, 'min', 5, true)).toEqual({
      intervalUs: 3_000_000,
      toleranceUs: 15_000_000,
      shadow: true,
    })
    expect(limitSpec(3, 'h', 3, false).intervalUs).toBe(1_200_000_000)
    expect(limitSpec(1, 'day', 1, false).intervalUs).toBe(86_400_000_000)
    // 7/s is 142857.14... us: rounded to the microsecond
    expect(limitSpec(7, 's', 1, false).intervalUs).toBe(142_857)
    expect(limitSpec(1_000_000, 's', 1, false).intervalUs).toBe(1)
  })
})

describe('GCRA arithmetic', () => {
  const spec = limitSpec(10, 's', 3, false) // T = 100 ms, B = 3
  const now = 1_000_000_000

  it('admits a fresh key: its TAT becomes now + T', () => {
    const next = nextTat(undefined, now, spec)
    expect(next).toBe(now + 100_000)
    expect(conforms(next, now, spec)).toBe(true)
  })

  it('admits B at once, then the next waits exactly T', () => {
    let tat: number | undefined
    for (let i = 0; i < 3; i++) {
      const next = nextTat(tat, now, spec)
      expect(conforms(next, now, spec)).toBe(true)
      tat = next
    }
    expect(tat).toBe(now + 300_000)
    const next = nextTat(tat, now, spec)
    expect(conforms(next, now, spec)).toBe(false)
    expect(waitUs(next, now, spec)).toBe(100_000)
    // one microsecond early: still 1 us to wait; on time: admitted
    expect(waitUs(nextTat(tat, now + 99_999, spec), now + 99_999, spec)).toBe(1)
    expect(conforms(nextTat(tat, now + 100_000, spec), now + 100_000, spec)).toBe(true)
  })

  it('treats a TAT in the past as now: an idle key is a fresh key', () => {
    expect(nextTat(now - 5, now, spec)).toBe(now + 100_000)
  })

  it('clamps a TAT further ahead than T x B (a tightened rule) to fully used', () => {
    const next = nextTat(now + 10_000_000, now, spec)
    expect(next).toBe(now + 400_000)
    expect(waitUs(next, now, spec)).toBe(100_000)
  })
})
