/**
 * @module
 * Shared state behind one small interface, so that with `store: redis` every replica sees the
 * same dedupe marks, reply-once marks, blocks and rate limits, and with `store: memory` (the
 * default, one instance) nothing leaves the process.
 *
 * Marks are string values with a time to live. Rate limits are GCRA states ({@link ./gcra.ts}),
 * evaluated several at once by {@link Store.limit} so that one request costs one round trip and
 * consumes only when every limit passes.
 *
 * Methods may answer synchronously (the memory store does, so the request path pays no microtask
 * for it) or with a promise (the Redis store); callers handle both. A back-end that cannot answer
 * rejects with {@link StoreError}. The store the gateway hands to checks is wrapped by
 * {@link ./guard.ts}, which applies `store.on_error`: under `local` and `open` it answers in the
 * back-end's place and never rejects; under `closed` it rejects with {@link StoreError}, which a
 * check turns into 503 + Retry-After (`store_unavailable`), never into a verdict of its own.
 */

/** A value now, or later. */
export type Maybe<T> = T | Promise<T>

/**
 * The key of one of the many marks a bot sets per update (dedupe's): an integer (the update id)
 * in a space of the bot's own. Its text form, the key in Redis, is `space` followed by `id`. The
 * memory store keeps such marks by their number, with no string per mark: a string key per update
 * had to be allocated, hashed, kept, copied out of the young generation and marked among 100,000
 * others (a claim and its settling, timed on their own: 3.4-3.9 us per update with string keys,
 * 2.0-2.6 us numbered; 100,000 marks in 11.4 MB of heap against 3.7 MB).
 */
export interface NumberedKey {
  /** What precedes the number in the key's text form, e.g. `{bot}:dedupe:`. */
  readonly space: string
  /** An integer. */
  readonly id: number
}

/**
 * A mark's key: a string, or a {@link NumberedKey}. A numbered key and the string of its text form
 * name the same mark in Redis, but not in the memory store, which keeps the two apart: address a
 * mark always in the same form (dedupe's marks are only ever numbered).
 */
export type MarkKey = string | NumberedKey

/** The text form of a mark's key: its key in Redis, and in {@link Store.list}. */
export function keyText(key: MarkKey): string {
  return typeof key === 'string' ? key : `${key.space}${key.id}`
}

/** A mark and how long it still lives. */
export interface Entry {
  readonly key: string
  readonly value: string
  readonly ttlMs: number
}

/**
 * One rate limit, computed once from its policy rule: GCRA with emission interval T and burst B
 * (B requests may arrive at once, then one per T; SPEC section 6).
 */
export interface LimitSpec {
  /** T, the emission interval (period / N), in whole microseconds, at least 1. */
  readonly intervalUs: number
  /** T x B, the delay variation tolerance of GCRA, in microseconds. */
  readonly toleranceUs: number
  /** `mode: shadow`: evaluated and reported, never blocks the request or the others' consumption. */
  readonly shadow: boolean
}

/** One limit applied to one key, for one request. */
export interface LimitKey {
  readonly spec: LimitSpec
  /** The limit's key inside the request's group, e.g. `per-chat:c:4242`. */
  readonly key: string
  /**
   * A reply-once mark (inside the group): when this limit denies the request, the mark is set
   * for one interval unless it is set already; the outcome says whether it was, so a chat gets
   * this limit's reply at most once per 1/rate (SPEC section 3, "Replies").
   */
  readonly replyKey: string | undefined
}

/** What {@link Store.limit} decided. */
export interface LimitOutcome {
  /** No enforcing limit denied; every limit that passed has consumed. */
  readonly allowed: boolean
  /** Indexes (into the keys given) of the limits that denied, enforcing and shadow, ascending. */
  readonly denied: readonly number[]
  /** Microseconds until every enforcing limit would pass; 0 when allowed. */
  readonly retryAfterUs: number
  /** Index of the denying limit whose reply-once mark this call set (reply now), or -1. */
  readonly reply: number
}

/** The outcome of a request that every limit let through: shared, so passing allocates nothing. */
export const ALLOWED: LimitOutcome = Object.freeze({
  allowed: true,
  denied: Object.freeze([]) as readonly number[],
  retryAfterUs: 0,
  reply: -1,
})

/** What a {@link Chain} step answers when an earlier step of its chain stopped the update. */
export const SKIPPED: unique symbol = Symbol('skipped')
export type Skipped = typeof SKIPPED

/**
 * The blocks step of a chain (src/blocks): whether an update's chat or sender is blocked. The
 * rule is the one src/blocks applies with single reads: no generation, nothing is blocked; the
 * generation of the local snapshot, the snapshot's verdict holds; another generation, the block
 * keys themselves say.
 */
export interface BlocksQuery {
  /** The bot's generation key. */
  readonly generationKey: string
  /** The generation the local snapshot was listed under, or undefined. */
  readonly known: string | undefined
  /** Under that generation, the index (into `keys`) of the key the snapshot finds blocked, or -1. */
  readonly knownFound: number
  /** The block keys to read when the generation is another, in order of precedence. */
  readonly keys: readonly string[]
}

export interface BlocksAnswer {
  /** The generation read, or undefined when the bot has none. */
  readonly generation: string | undefined
  /** Index (into the query's keys) of the block that applies, or -1: not blocked. */
  readonly found: number
}

/**
 * Store steps of one update that depend on one another, applied in the order they were added, in
 * one round trip: each step is applied only when every step before it let the update through
 * (not blocked; claimed, unless the claim lets a taken mark through). A step after one that
 * stopped the update changes nothing and answers {@link SKIPPED}. So the checks of an update can
 * add their steps one after the other without waiting for the answers in between, and each step
 * still happens exactly when it would have with one round trip per step (src/pipeline/run.ts).
 *
 * A step's promise rejects with {@link StoreError} when the store cannot answer; then every step
 * of the chain does, and none may be assumed applied or not.
 */
export interface Chain {
  /** Stops the update when a block applies. */
  blocks(query: BlocksQuery): Promise<BlocksAnswer | Skipped>
  /**
   * {@link Store.claim}. Stops the update when the mark is taken, unless `passTaken` (shadow
   * mode: the duplicate is only reported).
   */
  claim(key: MarkKey, value: string, ttlMs: number, passTaken: boolean): Promise<string | undefined | Skipped>
  /** {@link Store.limit}. Stops the update when an enforcing limit denies it. */
  limit(group: string, keys: readonly LimitKey[]): Promise<LimitOutcome | Skipped>
}

export interface Store {
  readonly kind: 'memory' | 'redis'
  /**
   * Sets `key` to `value` for `ttlMs` unless it is set already (Redis `SET NX PX`). Returns
   * undefined when this call set it, else the value already there.
   */
  claim(key: MarkKey, value: string, ttlMs: number): Maybe<string | undefined>
  /** Sets `key` to `value` for `ttlMs`, replacing any value. */
  put(key: MarkKey, value: string, ttlMs: number): Maybe<void>
  /** The value of `key`, or undefined when it is not set (or expired). */
  read(key: MarkKey): Maybe<string | undefined>
  /** Removes `key`. */
  remove(key: MarkKey): Maybe<void>
  /**
   * Every live mark whose key (in its text form) starts with `prefix`: for admin listings, never
   * on the request path.
   */
  list(prefix: string): Promise<Entry[]>
  /**
   * Evaluates every limit of one request atomically: each denies when admitting one more request
   * would exceed its burst; if no enforcing limit denies, every limit that passed consumes one
   * request, else nothing is consumed (denied requests cost nothing, SPEC section 6).
   *
   * `group` keeps the keys of one request together (the bot's name): in Redis it is the hash tag,
   * so one request's keys share one Cluster slot and one script can touch them all.
   */
  limit(group: string, keys: readonly LimitKey[]): Maybe<LimitOutcome>
  /**
   * A {@link Chain} for the steps of one update, when this store can apply them in one round trip
   * now; undefined when it cannot (the memory store answers at once anyway; Redis is down, or a
   * Cluster, whose block keys live in other slots than the bot's). Then each step is one call.
   */
  chain?(): Chain | undefined
  close(): Promise<void>
}

/** The store could not answer (Redis down or slower than its timeout). Never a rate limit. */
export class StoreError extends Error {
  override name = 'StoreError'
}

/** Milliseconds since the epoch; injected so tests never sleep to cross a window. */
export type Clock = () => number

export const systemClock: Clock = () => Date.now()
