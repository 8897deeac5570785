/**
 * @module
 * The runner: applies checks in their fixed order; the first verdict decides, unless its check is
 * in shadow mode, in which case the verdict is recorded on the exchange and the run continues.
 * Shadow mode lives here, once, so no check can get it wrong.
 *
 * A check whose store work joined the update's chain (src/store/index.ts, `Chain`) answers with a
 * {@link Deferred}: its verdict is on its way. The runner then goes on with the checks after it
 * that change nothing (`effects: 'none'`) or whose store work joins the same chain
 * (`effects: 'chained'`), each chained step being applied by the store only if the steps before it
 * let the update through. It stops at the first check of unknown effects, at an enforcing verdict
 * found on the way, or at the end; then it waits for the chain's answer (one round trip for all
 * of its steps) and decides exactly as if it had waited at each check: the first enforcing
 * verdict in check order wins, so a duplicate still outranks a later check's drop, and a limit is
 * consumed only for an update every check before it let through. What the checks record on the
 * exchange is replayed in check order too, up to the check that decides: the log detail each left,
 * and each chained check's decision on its answer (its shadow verdicts, its detail, the dedupe
 * mark it holds), so the log line and the metrics read as they would have one check at a time.
 */

import { StoreError } from '../store/index.js'
import { type Decided, Deferred, type Outcome } from './check.js'
import type { Exchange } from './exchange.js'
import type { Verdict } from './verdict.js'

interface Runnable<V extends Verdict, A> {
  readonly shadow: boolean
  readonly effects?: 'none' | 'chained'
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
): Decided<V> {
  for (let i = from; i < checks.length; i++) {
    const check = checks[i] as Runnable<V, A>
    const detail = exchange.detail
    const outcome = check.run(exchange, arg)
    if (outcome === undefined) continue
    if (outcome instanceof Deferred) return runAhead(checks, exchange, arg, i, outcome, detail)
    if (isPromise(outcome)) {
      return outcome.then((verdict): Decided<V> => {
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

/** A log detail a check left as it was. */
const KEPT: unique symbol = Symbol('kept')

/** A check that ran ahead of the chain's answer: what it answered, and the log detail it set. */
interface Ahead<V extends Verdict, A> {
  readonly check: Runnable<V, A>
  readonly outcome: Outcome<V>
  readonly detail: string | undefined | typeof KEPT
}

/** What the runner waits for from a check that ran ahead. */
function pending<V extends Verdict, A>({ outcome }: Ahead<V, A>): unknown {
  return outcome instanceof Deferred ? outcome.decision : outcome
}

/**
 * From `checks[first]`, whose verdict is `deferred` (`detail`: the log detail before it ran): runs
 * ahead as the module comment says, then decides, replaying in check order what each check
 * recorded: the log detail each left, then each chained check's decision on its answer, up to the
 * first enforcing verdict. When the chain fails (the store could not answer), nothing of it is
 * trusted: the checks from `first` on run again, each store operation its own call, which the
 * store answers as `store.on_error` says.
 */
function runAhead<V extends Verdict, A>(
  checks: readonly Runnable<V, A>[],
  exchange: Exchange,
  arg: A,
  first: number,
  deferred: Deferred<V>,
  detail: string | undefined,
): Promise<V | undefined> {
  const ahead: Ahead<V, A>[] = [
    {
      check: checks[first] as Runnable<V, A>,
      outcome: deferred,
      detail: exchange.detail === detail ? KEPT : exchange.detail,
    },
  ]
  // Where the run goes on once the chain has answered; -1: an enforcing verdict was found on the way.
  let next = first + 1
  try {
    for (; next < checks.length; next++) {
      const check = checks[next] as Runnable<V, A>
      if (check.effects === undefined) break
      const before = exchange.detail
      const outcome = check.run(exchange, arg)
      const after = exchange.detail
      if (outcome === undefined && after === before) continue
      ahead.push({ check, outcome, detail: after === before ? KEPT : after })
      if (outcome !== undefined && !(outcome instanceof Deferred) && !isPromise(outcome) && !check.shadow) {
        next = -1
        break
      }
    }
  } catch (error) {
    // A check threw (a bug: answered 500). The steps already asked for are still on their way:
    // wait for them, so that a failed chain leaves no rejection unhandled (which would end the
    // process), then let the error go on.
    exchange.endChain()
    return Promise.allSettled(ahead.map(pending)).then(() => {
      throw error
    })
  }
  exchange.endChain()
  exchange.detail = detail
  return Promise.all(ahead.map(pending)).then(
    (answers): Decided<V> => {
      for (let j = 0; j < ahead.length; j++) {
        const { check, outcome, detail: left } = ahead[j] as Ahead<V, A>
        if (left !== KEPT) exchange.detail = left
        const verdict =
          outcome instanceof Deferred ? (answers[j] as () => V | undefined)() : (answers[j] as V | undefined)
        if (verdict === undefined) continue
        if (!check.shadow) return verdict
        exchange.noteShadow(verdict.reason)
      }
      return next < 0 ? undefined : runChecks(checks, exchange, arg, next)
    },
    (error: unknown) => {
      if (!(error instanceof StoreError)) throw error
      exchange.stopChains()
      return runChecks(checks, exchange, arg, first)
    },
  )
}
