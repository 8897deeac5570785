/**
 * @module
 * The shape every check has: created once per config from its validated policy section
 * (precomputing sets, masks and replies), then run per request.
 *
 * Request checks run before the body is read and may only reject: nothing is known yet to be a
 * genuine update. Update checks run on a parsed, authenticated update and usually drop with 200.
 * A check returns `undefined` to pass; a promise only when it must wait (a store round trip), so
 * synchronous checks cost no microtask; a {@link Deferred} when its store work joined the update's
 * chain, so that later checks may run before the store answers (see run.ts).
 */

import type { Update } from '../telegram/update.js'
import type { Exchange } from './exchange.js'
import type { Reject, Verdict } from './verdict.js'

/** What a run of checks decides: a verdict, undefined to pass, or a promise of either. */
export type Decided<V> = V | undefined | Promise<V | undefined>

/**
 * A verdict on its way from the store, from a step the check added to the update's chain
 * (src/store/index.ts, `Chain`): the runner may run the next checks before the store answers.
 * Once it has, the runner calls `decide` with the answer, in check order and only if no check
 * before decided, so whatever the check records on the exchange (its log detail, a shadow verdict,
 * the mark it holds) happens exactly as if the runner had waited at this check. A chained step that
 * an earlier step stopped answers `SKIPPED`, which `decide` turns into undefined.
 */
export class Deferred<V> {
  /** Resolves, once the store has answered, to the check's decision on that answer. */
  readonly decision: Promise<() => V | undefined>

  private constructor(decision: Promise<() => V | undefined>) {
    this.decision = decision
  }

  /** `decide`, to be called with the store's `answer` when the runner comes to this check. */
  static of<V, T>(answer: Promise<T>, decide: (answer: T) => V | undefined): Deferred<V> {
    return new Deferred(answer.then((value) => () => decide(value)))
  }
}

export type Outcome<V> = Decided<V> | Deferred<V>

/**
 * What a check may do while the store steps of earlier checks are on their way (run.ts):
 * - `none`: it is synchronous and changes nothing (but the exchange's log detail, along with a
 *   verdict), so it may run before they answer;
 * - `chained`: its store work joins the update's chain whenever one is open, so it happens
 *   only if the steps before it let the update through.
 * Unset: the runner waits for every earlier answer before it runs the check.
 */
export type Effects = 'none' | 'chained'

interface CheckBase {
  /** The policy section (or gateway feature) the check enforces; shown in logs and errors. */
  readonly name: string
  /** Shadow mode: the runner logs and counts the verdict as "would", then carries on. */
  readonly shadow: boolean
  /** See {@link Effects}; unset: unknown, the runner waits before it. */
  readonly effects?: Effects
}

export interface RequestCheck extends CheckBase {
  run(exchange: Exchange): Outcome<Reject>
}

export interface UpdateCheck extends CheckBase {
  run(exchange: Exchange, update: Update): Outcome<Verdict>
}
