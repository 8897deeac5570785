import { describe, expect, it } from 'vitest'
import { Exchange } from './exchange.js'
import { runChecks } from './run.js'
import { drop, reject, type Verdict } from './verdict.js'

const exchange = () => new Exchange({} as never, 'id', 0)
const check = (
  verdict: Verdict | undefined,
  shadow = false,
  async = false,
  seen: string[] = [],
  name = 'c',
) => ({
  name,
  shadow,
  run: () => {
    seen.push(name)
    return async ? Promise.resolve(verdict) : verdict
  },
})

describe('runChecks', () => {
  it('passes with undefined, synchronously, when every check does', () => {
    expect(runChecks([check(undefined), check(undefined)], exchange(), undefined)).toBeUndefined()
  })

  it('stops at the first verdict, in order', () => {
    const seen: string[] = []
    const first = drop('command_not_allowed')
    const result = runChecks(
      [
        check(undefined, false, false, seen, 'a'),
        check(first, false, false, seen, 'b'),
        check(reject(403, 'ip_not_allowed'), false, false, seen, 'c'),
      ],
      exchange(),
      undefined,
    )
    expect(result).toBe(first)
    expect(seen).toEqual(['a', 'b'])
  })

  it('records a shadowed verdict as "would" and carries on', () => {
    const x = exchange()
    const final = reject(401, 'bad_secret')
    expect(runChecks([check(drop('rate_limited'), true), check(undefined), check(final)], x, undefined)).toBe(
      final,
    )
    expect(x.would).toEqual(['rate_limited'])
  })

  it('continues asynchronously after a check that returns a promise, with the same semantics', async () => {
    const x = exchange()
    const seen: string[] = []
    const last = drop('duplicate_update')
    const result = runChecks(
      [
        check(drop('blocked'), true, true, seen, 'a'),
        check(undefined, false, true, seen, 'b'),
        check(undefined, false, false, seen, 'c'),
        check(last, false, true, seen, 'd'),
      ],
      x,
      undefined,
    )
    expect(result).toBeInstanceOf(Promise)
    expect(await result).toBe(last)
    expect(seen).toEqual(['a', 'b', 'c', 'd'])
    expect(x.would).toEqual(['blocked'])
  })
})
