/**
 * @module
 * The runner: applies checks in their fixed order; the first verdict decides, unless its check is
 * in shadow mode, in which case the verdict is recorded on the exchange and the run continues.
 * Shadow mode lives here, once, so no check can get it wrong.
 */

import type { Outcome } from './check.js'
import type { Exchange } from './exchange.js'
import type { Verdict } from './verdict.js'

interface Runnable<V extends Verdict, A> {
  readonly shadow: boolean
  run(exchange: Exchange, arg: A): Outcome<V>
}

export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function'
}

/**
 * Runs `checks[from..]`. Stays synchronous while every check is, so a pipeline of in-memory checks
 * costs no microtask; continues asynchronously after the first check that returns a promise.
 */
export function runChecks<V extends Verdict, A>(
  checks: readonly Runnable<V, A>[],
  exchange: Exchange,
  arg: A,
  from = 0,
): Outcome<V> {
  for (let i = from; i < checks.length; i++) {
    const check = checks[i] as Runnable<V, A>
    const outcome = check.run(exchange, arg)
    if (outcome === undefined) continue
    if (isPromise(outcome)) {
      return outcome.then((verdict): Outcome<V> => {
        if (verdict !== undefined && !check.shadow) return verdict
        if (verdict !== undefined) exchange.noteShadow(verdict.reason)
        return runChecks(checks, exchange, arg, i + 1)
      })
    }
    if (!check.shadow) return outcome
    exchange.noteShadow(outcome.reason)
  }
  return undefined
}
