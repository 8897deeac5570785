/**
 * @module
 * GCRA, the generic cell rate algorithm (ITU-T I.371, the "virtual scheduling" form), as rate
 * limiters use it: one timestamp per key, the theoretical arrival time (TAT) of the next request
 * if requests came exactly one per emission interval T. With burst B the delay variation
 * tolerance is T x B: a request conforms when admitting it keeps the TAT no more than T x B ahead
 * of now, so B requests may arrive at once and then one per T. Denied requests leave the TAT as it
 * was. (Brandur Leach, "Rate Limiting, Cells, and GCRA", brandur.org/rate-limiting, and redis-cell
 * describe the same arithmetic; their "max_burst" is our B - 1.)
 *
 * Everything is in whole microseconds so the memory store and the Redis script (src/store/lua.ts,
 * which mirrors these three functions line by line) compute exactly the same numbers; a TAT near
 * 2^51 stays an exact integer in a double (JavaScript and Redis Lua alike).
 *
 * A stored TAT further ahead than T x B (possible only after the rule was tightened, or after the
 * clock stepped back) is clamped to T x B ahead: the key counts as fully used under the rule now in
 * force, instead of blocking for as long as the old rule would have.
 */

import type { LimitSpec } from './index.js'

/** Microseconds in each rate unit of the policy (`N/s`, `N/min`, `N/h`, `N/day`). */
export const PERIOD_US = { s: 1e6, min: 60e6, h: 3600e6, day: 86_400e6 } as const

export type RateUnit = keyof typeof PERIOD_US

/** The longest burst window allowed (T x B): a year, which keeps every TAT far below 2^53. */
export const MAX_TOLERANCE_US = 365 * PERIOD_US.day

/**
 * The limit of `count` requests per `unit` with `burst` at once. T is rounded to whole
 * microseconds, so a rate is exact to within a microsecond per interval.
 */
export function limitSpec(count: number, unit: RateUnit, burst: number, shadow: boolean): LimitSpec {
  const intervalUs = Math.max(1, Math.round(PERIOD_US[unit] / count))
  return { intervalUs, toleranceUs: intervalUs * burst, shadow }
}

/** The TAT after admitting one more request, from the stored TAT (undefined: the key is fresh). */
export function nextTat(stored: number | undefined, now: number, spec: LimitSpec): number {
  let tat = stored === undefined || stored < now ? now : stored
  const ceiling = now + spec.toleranceUs
  if (tat > ceiling) tat = ceiling
  return tat + spec.intervalUs
}

/** Whether the request that would move the TAT to `next` conforms. */
export function conforms(next: number, now: number, spec: LimitSpec): boolean {
  return next - now <= spec.toleranceUs
}

/** For a request that does not conform: microseconds until it would. */
export function waitUs(next: number, now: number, spec: LimitSpec): number {
  return next - spec.toleranceUs - now
}
