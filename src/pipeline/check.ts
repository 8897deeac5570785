/**
 * @module
 * The shape every check has: created once per config from its validated policy section
 * (precomputing sets, masks and replies), then run per request.
 *
 * Request checks run before the body is read and may only reject: nothing is known yet to be a
 * genuine update. Update checks run on a parsed, authenticated update and usually drop with 200.
 * A check returns `undefined` to pass; a promise only when it must wait (a store round trip), so
 * synchronous checks cost no microtask.
 */

import type { Update } from '../telegram/update.js'
import type { Exchange } from './exchange.js'
import type { Reject, Verdict } from './verdict.js'

export type Outcome<V> = V | undefined | Promise<V | undefined>

interface CheckBase {
  /** The policy section (or gateway feature) the check enforces; shown in logs and errors. */
  readonly name: string
  /** Shadow mode: the runner logs and counts the verdict as "would", then carries on. */
  readonly shadow: boolean
}

export interface RequestCheck extends CheckBase {
  run(exchange: Exchange): Outcome<Reject>
}

export interface UpdateCheck extends CheckBase {
  run(exchange: Exchange, update: Update): Outcome<Verdict>
}
