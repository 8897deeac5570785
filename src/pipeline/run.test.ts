import { describe, expect, it } from 'vitest'
import { StoreError } from '../store/index.js'
import { Deferred } from './check.js'
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

describe('runChecks with deferred verdicts (store chains)', () => {
  /** A check whose verdict comes later, from a promise the test settles. */
  const deferred = (name: string, seen: string[], shadow = false) => {
    let settle!: (verdict: Verdict | undefined) => void
    let fail!: (error: unknown) => void
    const verdict = new Promise<Verdict | undefined>((resolve, reject) => {
      settle = resolve
      fail = reject
    })
    return {
      check: {
        name,
        shadow,
        effects: 'chained' as const,
        run: () => {
          seen.push(name)
          return Deferred.of(verdict, (v: Verdict | undefined) => v)
        },
      },
      settle: (v: Verdict | undefined) => settle(v),
      fail: (error: unknown) => fail(error),
    }
  }
  const pure = (verdict: Verdict | undefined, seen: string[], name: string, shadow = false) => ({
    ...check(verdict, shadow, false, seen, name),
    effects: 'none' as const,
  })

  it('runs pure and chained checks before the answer, then lets the earlier verdict outrank', async () => {
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen)
    const limits = deferred('limits', seen)
    const result = runChecks(
      [dedupe.check, pure(undefined, seen, 'commands'), limits.check],
      exchange(),
      undefined,
    )
    // Everything ran before any answer: one round trip for both steps.
    expect(seen).toEqual(['dedupe', 'commands', 'limits'])
    const duplicate = drop('duplicate_update')
    dedupe.settle(duplicate)
    limits.settle(undefined) // skipped by the store: an earlier step stopped the update
    expect(await result).toBe(duplicate)
  })

  it('lets a duplicate outrank a later pure drop, and the later drop decide when there is none', async () => {
    for (const existing of [drop('duplicate_update'), undefined]) {
      const seen: string[] = []
      const dedupe = deferred('dedupe', seen)
      const late = drop('command_not_allowed')
      const result = runChecks([dedupe.check, pure(late, seen, 'commands')], exchange(), undefined)
      dedupe.settle(existing)
      expect(await result).toBe(existing ?? late)
    }
  })

  it('stops running ahead at an enforcing pure verdict: no later step is asked for', async () => {
    const seen: string[] = []
    const blocks = deferred('blocked', seen)
    const limits = deferred('limits', seen)
    const invalid = drop('invalid_update')
    const result = runChecks(
      [blocks.check, pure(invalid, seen, 'schema'), limits.check],
      exchange(),
      undefined,
    )
    blocks.settle(undefined)
    expect(await result).toBe(invalid)
    expect(seen).toEqual(['blocked', 'schema'])
  })

  it('waits for the answer before a check of unknown effects, and runs it only when nothing decided', async () => {
    for (const first of [drop('duplicate_update'), undefined]) {
      const seen: string[] = []
      const dedupe = deferred('dedupe', seen)
      const result = runChecks(
        [dedupe.check, check(undefined, false, false, seen, 'chats'), pure(undefined, seen, 'content')],
        exchange(),
        undefined,
      )
      expect(seen).toEqual(['dedupe'])
      dedupe.settle(first)
      expect(await result).toBe(first)
      expect(seen).toEqual(first === undefined ? ['dedupe', 'chats', 'content'] : ['dedupe'])
    }
  })

  it('records shadow verdicts in check order, from deferred and pure checks alike, and carries on', async () => {
    const x = exchange()
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen, true)
    const limits = deferred('limits', seen)
    const result = runChecks(
      [dedupe.check, pure(drop('update_type_not_allowed'), seen, 'updates', true), limits.check],
      x,
      undefined,
    )
    limits.settle(undefined)
    dedupe.settle(drop('duplicate_update'))
    expect(await result).toBeUndefined()
    expect(x.would).toEqual(['duplicate_update', 'update_type_not_allowed'])
  })

  it('leaves the log detail of the check that decided, not of one that ran ahead and was outranked', async () => {
    const x = exchange()
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen)
    const noisy = {
      ...pure(drop('command_not_allowed'), seen, 'commands'),
      run: () => {
        x.detail = 'from a check that did not decide'
        return drop('command_not_allowed')
      },
    }
    const result = runChecks([dedupe.check, noisy], x, undefined)
    dedupe.settle(drop('duplicate_update'))
    expect(await result).toEqual(drop('duplicate_update'))
    expect(x.detail).toBeUndefined()
  })

  it('lets each chained check record what it found in check order, as if the runner had waited at it', async () => {
    const x = exchange()
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen, true)
    // Like the limits: its own shadow rule's verdict is recorded by the check, with its log detail.
    let answer!: (denied: boolean) => void
    const limits = {
      name: 'limits',
      shadow: false,
      effects: 'chained' as const,
      run: (ex: Exchange) =>
        Deferred.of<Verdict, boolean>(new Promise<boolean>((resolve) => (answer = resolve)), (denied) => {
          if (denied) {
            ex.noteShadow('rate_limited')
            ex.detail = 'limit per-chat (shadow)'
          }
          return undefined
        }),
    }
    const result = runChecks([dedupe.check, limits], x, undefined)
    // The store answers the later step first (one script answers both; callbacks run in any order).
    answer(true)
    await Promise.resolve()
    dedupe.settle(drop('duplicate_update'))
    expect(await result).toBeUndefined()
    expect(x.would).toEqual(['duplicate_update', 'rate_limited'])
    expect(x.detail).toBe('limit per-chat (shadow)')
  })

  it('restores the log detail of the checks before the one that decided when the chain fails', async () => {
    const x = exchange()
    const seen: string[] = []
    const store = { chain: () => ({}) } as never
    const dedupe = {
      name: 'dedupe',
      shadow: false,
      effects: 'chained' as const,
      run: (ex: Exchange) =>
        ex.chainOn(store) === undefined
          ? drop('duplicate_update')
          : Deferred.of<Verdict, undefined>(Promise.reject(new StoreError('redis: down')), () => undefined),
    }
    const content = {
      ...pure(undefined, seen, 'content'),
      run: () => {
        x.detail = 'content.forwarded'
        return drop('content_not_allowed')
      },
    }
    // Run again one operation at a time, the dedupe check decides before content runs.
    expect(await runChecks([dedupe, content], x, undefined)).toEqual(drop('duplicate_update'))
    expect(x.detail).toBeUndefined()
  })

  it('runs the checks again, one store operation at a time, when the chain fails', async () => {
    const x = exchange()
    const seen: string[] = []
    const chains: string[] = []
    // Chained checks that chain while the exchange lets them, as dedupe and limits do.
    const store = { chain: () => ({}) } as never
    const chained = (name: string, verdict: Verdict | undefined) => ({
      name,
      shadow: false,
      effects: 'chained' as const,
      run: (ex: Exchange) => {
        seen.push(name)
        if (ex.chainOn(store) === undefined) return verdict
        chains.push(name)
        return Deferred.of<Verdict, undefined>(
          Promise.reject(new StoreError('redis: no answer within 50 ms')),
          () => undefined,
        )
      },
    })
    const limited = drop('rate_limited')
    const result = runChecks(
      [chained('dedupe', undefined), pure(undefined, seen, 'updates'), chained('limits', limited)],
      x,
      undefined,
    )
    expect(await result).toBe(limited)
    expect(chains).toEqual(['dedupe', 'limits'])
    expect(seen).toEqual(['dedupe', 'updates', 'limits', 'dedupe', 'updates', 'limits'])
    expect(x.chainOn(store)).toBeUndefined()
  })

  it('passes any other failure on', async () => {
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen)
    const result = runChecks([dedupe.check], exchange(), undefined)
    dedupe.fail(new TypeError('bug'))
    await expect(result).rejects.toThrow(TypeError)
    expect(seen).toEqual(['dedupe'])
  })

  it('leaves no verdict on its way unhandled when a check after it throws', async () => {
    const seen: string[] = []
    const dedupe = deferred('dedupe', seen)
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const broken = {
        ...pure(undefined, seen, 'schema'),
        run: () => {
          throw new TypeError('bug')
        },
      }
      const result = Promise.resolve().then(() => runChecks([dedupe.check, broken], exchange(), undefined))
      // The chain then fails; the bug is what the run reports, once the chain has answered.
      dedupe.fail(new StoreError('redis: no answer within 50 ms'))
      await expect(result).rejects.toThrow(TypeError)
      await new Promise((resolve) => setTimeout(resolve, 10))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
