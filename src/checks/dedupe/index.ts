/**
 * @module
 * Policy section `dedupe` (check 10): an update Telegram delivers again is not forwarded again.
 *
 * Telegram resends an update until it gets a 2xx answer, and after a week without updates the
 * next `update_id` is random (Bot API, "Update"), so duplicates are recognised by membership in a
 * set of recent ids with a time to live, never by "greater than the last one". The marks live in
 * the store (shared by replicas with `store: redis`):
 *
 * - the first copy claims `inflight` (a short time to live: the upstream timeout and a margin, so
 *   a replica that dies mid-forward cannot block redeliveries for long);
 * - when it ends delivered (the upstream answered 2xx) or dropped by policy, the mark becomes
 *   `done` for `ttl`: later copies are dropped with 200;
 * - when its forward failed, the mark is removed: Telegram's redelivery is forwarded again;
 * - a copy arriving while the first is in flight is answered 503 with Retry-After, so it is never
 *   forwarded twice and Telegram simply tries again a little later.
 */

import { type Static, Type } from '@sinclair/typebox'
import { DURATION_PATTERN, parseDuration } from '../../config/units.js'
import type { Answer } from '../../pipeline/answer.js'
import { Deferred, type UpdateCheck } from '../../pipeline/check.js'
import type { Exchange, HeldMark } from '../../pipeline/exchange.js'
import { isPromise } from '../../pipeline/run.js'
import { drop, reject, type Verdict } from '../../pipeline/verdict.js'
import { type NumberedKey, SKIPPED, type Store } from '../../store/index.js'
import { SectionMode } from '../mode.js'
import { storeFailure } from '../store.js'

export const dedupeSchema = Type.Union(
  [
    Type.Literal(false, { description: 'Turn deduplication off.' }),
    Type.Object(
      {
        mode: Type.Optional(SectionMode),
        ttl: Type.String({
          pattern: DURATION_PATTERN,
          default: '24h',
          description:
            'How long a delivered update id is remembered. Default: 24h (Telegram stops resending after 24 h).',
          errorMessage: 'must be a duration like 24h',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  {
    default: {},
    description:
      'Check 10: drop updates Telegram delivers again (200). A mapping, or false to turn it off. Default: on, 24h.',
    errorMessage: 'must be a mapping like { ttl: 24h }, or false',
  },
)

export type DedupePolicy = Static<typeof dedupeSchema>

const INFLIGHT = 'inflight'
const DONE = 'done'
/** Seconds a concurrent copy is asked to wait: the first copy's forward is usually done by then. */
export const DUPLICATE_RETRY_AFTER = 5
/** Beyond the upstream timeout, how long an in-flight mark outlives a replica that died mid-forward. */
const INFLIGHT_MARGIN_MS = 10_000

const DUPLICATE = drop('duplicate_update')
const IN_FLIGHT = reject(503, 'duplicate_update', DUPLICATE_RETRY_AFTER)

/**
 * The dedupe mark a request holds, to settle once its answer is known; it is the mark's key too
 * (the bot's space and the update id). A class, so the per-update object carries no closure.
 */
export class DedupeClaim implements NumberedKey, HeldMark {
  readonly marks: DoneMarks
  readonly space: string
  readonly id: number

  constructor(marks: DoneMarks, space: string, id: number) {
    this.marks = marks
    this.space = space
    this.id = id
  }

  /**
   * Delivered, queued for delivery or dropped by policy is done for `ttl`; anything else (the upstream failed, the
   * gateway was overloaded) releases the mark so Telegram's redelivery goes through. Runs off the
   * answer's path: the answer never waits for it.
   */
  settle(answer: Answer): void {
    this.marks.settle(
      this,
      answer.outcome === 'forwarded' || answer.outcome === 'queued' || answer.outcome === 'dropped',
    )
  }
}

/**
 * Settles one bot's marks: `done` for `ttl`, or removed. Off the answer's path: a failure is
 * reported, never thrown. (With Redis, the marks settled in one event-loop iteration go out in one
 * command: see src/store/batch.ts.)
 */
export class DoneMarks {
  readonly #store: Store
  readonly #ttlMs: number
  readonly #onError: (error: unknown) => void

  constructor(store: Store, ttlMs: number, onError: (error: unknown) => void) {
    this.#store = store
    this.#ttlMs = ttlMs
    this.#onError = onError
  }

  /** `done` for `ttl` when `done`, else removed. */
  settle(key: NumberedKey, done: boolean): void {
    try {
      const result = done ? this.#store.put(key, DONE, this.#ttlMs) : this.#store.remove(key)
      if (isPromise(result)) result.catch(this.#onError)
    } catch (error) {
      this.#onError(error)
    }
  }
}

function verdictFor(
  existing: string | undefined,
  exchange: Exchange,
  claim: DedupeClaim,
): Verdict | undefined {
  if (existing === undefined) {
    exchange.dedupe = claim
    return undefined
  }
  return existing === DONE ? DUPLICATE : IN_FLIGHT
}

export function createDedupeCheck(
  policy: DedupePolicy,
  shadow: boolean,
  deps: { store: Store; bot: string; upstreamTimeoutMs: number; onError: (error: unknown) => void },
): UpdateCheck | undefined {
  if (policy === false) return undefined
  const marks = new DoneMarks(deps.store, parseDuration(policy.ttl), deps.onError)
  const inflightMs = deps.upstreamTimeoutMs + INFLIGHT_MARGIN_MS
  const { store } = deps
  // The {bot} hash tag keeps a bot's marks in the slot of its limit keys on Redis Cluster.
  const space = `{${deps.bot}}:dedupe:`
  return {
    name: 'dedupe',
    shadow,
    effects: 'chained',
    run(exchange, update) {
      // The claim is the mark's key: no string per update (see NumberedKey).
      const claim = new DedupeClaim(marks, space, update.id)
      const chain = exchange.chainOn(store)
      if (chain !== undefined) {
        // In shadow mode a duplicate is only reported, so the steps after the claim still apply.
        return Deferred.of(chain.claim(claim, INFLIGHT, inflightMs, shadow), (value) =>
          value === SKIPPED ? undefined : verdictFor(value, exchange, claim),
        )
      }
      const existing = store.claim(claim, INFLIGHT, inflightMs)
      // A store that cannot answer (on_error: closed) gets 503 store_unavailable, never a drop.
      if (isPromise(existing))
        return existing.then((value) => verdictFor(value, exchange, claim), storeFailure)
      return verdictFor(existing, exchange, claim)
    },
  }
}

/** After the answer: settles the mark a request holds ({@link DedupeClaim.settle}). */
export function settleDedupe(claim: HeldMark, answer: Answer): void {
  claim.settle(answer)
}
