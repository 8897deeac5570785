/**
 * @module
 * `store.on_error`, applied once, in front of the Redis store, for every operation: rate limits
 * and marks (dedupe, reply-once) alike. Checks receive this wrapper and never see a Redis error:
 *
 * - `local`: the operation runs on an in-process {@link MemoryStore} instead, so limits and dedupe
 *   keep working per replica (each replica allows up to the full limit on its own);
 * - `open`: the operation answers as if nothing were stored: limits allow, claims succeed, reads
 *   find nothing, writes do nothing; the update is forwarded;
 * - `closed`: the operation rejects with {@link StoreError}; checks answer 503 + Retry-After
 *   (`store_unavailable`), so Telegram delivers the update again later.
 *
 * No outcome of a store failure is ever a rate limit. A circuit breaker keeps a failing Redis off
 * the request path: after the first failure (an error, a timeout or a lost connection) operations
 * go straight to `on_error` while a PING, at once and then every {@link PROBE_INTERVAL_MS}, checks
 * whether Redis is back; the first PING answered in time closes the circuit again. So a dead or stalled Redis costs
 * one timeout, not one per request. Each change is logged once (never per request), counted, and
 * shown on /readyz; `closed` makes the replica unready while Redis is down.
 */

import type { Logger } from '../observe/logger.js'
import type { StoreMetrics, StoreOperation } from '../observe/metrics.js'
import type { OnError } from './config.js'
import {
  ALLOWED,
  type BlocksAnswer,
  type BlocksQuery,
  type Chain,
  type Entry,
  type LimitKey,
  type LimitOutcome,
  type MarkKey,
  type Maybe,
  type Skipped,
  type Store,
  StoreError,
} from './index.js'
import type { MemoryStore } from './memory.js'

/** How often a down store is probed. */
export const PROBE_INTERVAL_MS = 500

/** The back-end the guard protects: a store that can be probed. */
export interface GuardedBackend extends Store {
  ping(): Promise<void>
}

/** The store's state for /readyz and logs. */
export interface StoreHealth {
  /** The shared store answers. */
  readonly up: boolean
  /** Requests can be served: the store is up, or `on_error` serves them without it. */
  readonly ready: boolean
  readonly detail: string
}

export interface GuardOptions {
  readonly backend: GuardedBackend
  readonly onError: OnError
  /** Serves operations under `on_error: local`. */
  readonly local: MemoryStore
  readonly metrics: StoreMetrics
  readonly logger: Logger
  readonly probeIntervalMs?: number
}

const UNAVAILABLE = 'store unavailable'

/** What a guarded chain reports to its guard. */
interface ChainWatcher {
  /** A step answered, `started` being when its chain was opened. */
  answered(operation: StoreOperation, started: number): void
  /** The chain failed; called once per chain, for its first step to see it. */
  failed(operation: StoreOperation, error: StoreError): void
}

/**
 * A back-end chain, watched as single operations are: each step's time is observed as its
 * operation's (the blocks step as a read), and a failure takes the store down, once per chain. A
 * failed chain is not answered per `on_error` here: its steps reject, and the runner runs the
 * update's checks again one operation at a time (src/pipeline/run.ts), which the guard, now down,
 * answers as `on_error` says.
 */
class GuardedChain implements Chain {
  readonly #inner: Chain
  readonly #watcher: ChainWatcher
  readonly #started = performance.now()
  #failed = false

  constructor(inner: Chain, watcher: ChainWatcher) {
    this.#inner = inner
    this.#watcher = watcher
  }

  blocks(query: BlocksQuery): Promise<BlocksAnswer | Skipped> {
    return this.#watch('read', this.#inner.blocks(query))
  }

  claim(
    key: MarkKey,
    value: string,
    ttlMs: number,
    passTaken: boolean,
  ): Promise<string | undefined | Skipped> {
    return this.#watch('claim', this.#inner.claim(key, value, ttlMs, passTaken))
  }

  limit(group: string, keys: readonly LimitKey[]): Promise<LimitOutcome | Skipped> {
    return this.#watch('limit', this.#inner.limit(group, keys))
  }

  #watch<T>(operation: StoreOperation, step: Promise<T>): Promise<T> {
    return step.then(
      (value) => {
        this.#watcher.answered(operation, this.#started)
        return value
      },
      (error: unknown) => {
        if (error instanceof StoreError && !this.#failed) {
          this.#failed = true
          this.#watcher.failed(operation, error)
        }
        throw error
      },
    )
  }
}

const OPEN_ANSWERS = {
  claim: undefined,
  put: undefined,
  read: undefined,
  remove: undefined,
  limit: ALLOWED,
} as const

export class GuardedStore implements Store {
  readonly kind = 'redis'
  readonly #backend: GuardedBackend
  readonly #onError: OnError
  readonly #local: MemoryStore
  readonly #metrics: StoreMetrics
  readonly #logger: Logger
  readonly #probeIntervalMs: number
  #up = false
  #downSince = 0
  #probe: NodeJS.Timeout | undefined
  #probing = false
  #closed = false
  /** The guard whose circuit this one follows: itself, or the guard {@link shared} was made from. */
  readonly #owner: GuardedStore
  /**
   * The same store for state that lives only in Redis (blocks, src/blocks): while Redis is down its
   * operations reject with {@link StoreError}, whatever `on_error` says, so that its users answer
   * from what they last read (the blocks snapshot) or say that they cannot (the admin API's 503),
   * never from an in-process store that has never held that state (under `local`) or from
   * nothing (under `open`). It follows this guard's circuit: one health, one probe, one log.
   */
  readonly shared: Store
  readonly #watcher: ChainWatcher = {
    answered: (operation, started) =>
      this.#metrics.duration[operation].observe((performance.now() - started) / 1000),
    failed: (operation, error) => {
      this.#metrics.errors[operation].inc()
      this.#owner.#down(operation, error)
    },
  }

  /** `owner`: only for {@link shared}, the guard whose circuit it follows. */
  constructor(options: GuardOptions, owner?: GuardedStore) {
    this.#backend = options.backend
    this.#onError = options.onError
    this.#local = options.local
    this.#metrics = options.metrics
    this.#logger = options.logger
    this.#probeIntervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS
    this.#owner = owner ?? this
    if (owner === undefined) {
      this.#metrics.up.set(0)
      this.shared = new GuardedStore({ ...options, onError: 'closed' }, this)
    } else {
      this.shared = this
    }
  }

  /** Marks the store up (startup found Redis ready), or down with the reason, probing until it answers. */
  begin(ready: boolean): void {
    if (ready) this.#recover()
    else this.#down('connect', new StoreError('redis: not reachable at startup'))
  }

  health(): StoreHealth {
    if (this.#up) return { up: true, ready: true, detail: 'up' }
    return {
      up: false,
      ready: this.#onError !== 'closed',
      detail: `down (on_error ${this.#onError})`,
    }
  }

  /** The connection was lost: stop sending to it at once rather than after a failed request. */
  lost(error: StoreError | undefined): void {
    if (this.#up) this.#down('connection', error ?? new StoreError('redis: connection closed'))
    else if (error !== undefined) this.#logger.debug({ store: 'redis', error: error.message }, 'store error')
  }

  /** The connection is ready again: probe now instead of at the next interval. */
  ready(): void {
    if (!this.#up) this.#runProbe()
  }

  #down(operation: StoreOperation | 'connect' | 'connection', error: StoreError): void {
    if (!this.#up && this.#probe !== undefined) return
    this.#up = false
    this.#downSince = performance.now()
    this.#metrics.up.set(0)
    this.#logger.warn(
      { store: 'redis', operation, error: error.message, on_error: this.#onError },
      `store unavailable: ${consequence(this.#onError)} until it answers again`,
    )
    if (this.#closed || this.#probe !== undefined) return
    this.#probe = setInterval(() => this.#runProbe(), this.#probeIntervalMs)
    this.#probe.unref()
    // A blip (one slow answer) should cost one round trip of degraded service, not an interval.
    this.#runProbe()
  }

  #runProbe(): void {
    if (this.#probing || this.#closed) return
    this.#probing = true
    this.#backend.ping().then(
      () => {
        this.#probing = false
        this.#recover()
      },
      (error: unknown) => {
        this.#probing = false
        this.#metrics.errors.ping.inc()
        this.#logger.debug({ store: 'redis', error: (error as Error).message }, 'store probe failed')
      },
    )
  }

  #recover(): void {
    if (this.#probe !== undefined) {
      clearInterval(this.#probe)
      this.#probe = undefined
    }
    if (this.#up || this.#closed) return
    const wasDown = this.#downSince !== 0
    this.#up = true
    this.#metrics.up.set(1)
    if (wasDown) {
      const downMs = Math.round(performance.now() - this.#downSince)
      this.#logger.info({ store: 'redis', down_ms: downMs }, 'store recovered: shared state in use again')
    } else {
      this.#logger.info({ store: 'redis', on_error: this.#onError }, 'store connected')
    }
  }

  /** Runs `attempt` on Redis while it is up; otherwise, or when it fails, answers per `on_error`. */
  #run<T>(operation: StoreOperation, attempt: () => Promise<T>, local: () => Maybe<T>, open: T): Maybe<T> {
    if (!this.#owner.#up) return this.#instead(operation, local, open)
    const started = performance.now()
    return attempt().then(
      (value) => {
        this.#metrics.duration[operation].observe((performance.now() - started) / 1000)
        return value
      },
      (error: unknown) => {
        if (!(error instanceof StoreError)) throw error
        this.#metrics.errors[operation].inc()
        this.#owner.#down(operation, error)
        return this.#instead(operation, local, open)
      },
    )
  }

  #instead<T>(operation: StoreOperation, local: () => Maybe<T>, open: T): Maybe<T> {
    this.#metrics.fallbacks[operation].inc()
    if (this.#onError === 'local') return local()
    if (this.#onError === 'open') return open
    return Promise.reject(new StoreError(UNAVAILABLE))
  }

  claim(key: MarkKey, value: string, ttlMs: number): Maybe<string | undefined> {
    return this.#run(
      'claim',
      () => this.#backend.claim(key, value, ttlMs) as Promise<string | undefined>,
      () => this.#local.claim(key, value, ttlMs),
      OPEN_ANSWERS.claim,
    )
  }

  put(key: MarkKey, value: string, ttlMs: number): Maybe<void> {
    return this.#run(
      'put',
      () => this.#backend.put(key, value, ttlMs) as Promise<void>,
      () => this.#local.put(key, value, ttlMs),
      OPEN_ANSWERS.put,
    )
  }

  read(key: MarkKey): Maybe<string | undefined> {
    return this.#run(
      'read',
      () => this.#backend.read(key) as Promise<string | undefined>,
      () => this.#local.read(key),
      OPEN_ANSWERS.read,
    )
  }

  remove(key: MarkKey): Maybe<void> {
    return this.#run(
      'remove',
      () => this.#backend.remove(key) as Promise<void>,
      () => this.#local.remove(key),
      OPEN_ANSWERS.remove,
    )
  }

  list(prefix: string): Promise<Entry[]> {
    return Promise.resolve(
      this.#run(
        'list',
        () => this.#backend.list(prefix),
        () => this.#local.list(prefix),
        [] as Entry[],
      ),
    )
  }

  limit(group: string, keys: readonly LimitKey[]): Maybe<LimitOutcome> {
    return this.#run(
      'limit',
      () => this.#backend.limit(group, keys) as Promise<LimitOutcome>,
      () => this.#local.limit(group, keys),
      OPEN_ANSWERS.limit,
    )
  }

  /** The back-end's chain while the store is up; undefined while it is down (see {@link GuardedChain}). */
  chain(): Chain | undefined {
    if (!this.#owner.#up) return undefined
    const chain = this.#backend.chain?.()
    return chain === undefined ? undefined : new GuardedChain(chain, this.#watcher)
  }

  async close(): Promise<void> {
    // The shared view closes with its owner.
    if (this.#owner !== this) return
    this.#closed = true
    if (this.#probe !== undefined) clearInterval(this.#probe)
    this.#probe = undefined
    await Promise.all([this.#backend.close(), this.#local.close()])
  }
}

/** What users get while Redis is down, in the words of the warning. */
export function consequence(onError: OnError): string {
  switch (onError) {
    case 'local':
      return 'on_error local: each replica applies limits and dedupe on its own'
    case 'open':
      return 'on_error open: limits and dedupe are not applied, updates are forwarded'
    case 'closed':
      return 'on_error closed: updates that need the store are answered 503 with Retry-After'
  }
}
