/**
 * @module
 * Shared state behind one small interface, so that with `store: redis` every replica sees the
 * same dedupe marks, reply-once marks, blocks and rate limits, and with `store: memory` (the
 * default, one instance) nothing leaves the process.
 *
 * Marks are string values with a time to live. Methods may answer synchronously (the memory
 * store does, so the request path pays no microtask for it) or with a promise (the Redis store);
 * callers handle both. A back-end that cannot answer rejects with {@link StoreError}; what that
 * means for a request (fall back, let through, refuse) is the caller's policy, never a verdict
 * of its own.
 */

/** A value now, or later. */
export type Maybe<T> = T | Promise<T>

/** A mark and how long it still lives. */
export interface Entry {
  readonly key: string
  readonly value: string
  readonly ttlMs: number
}

export interface Store {
  readonly kind: 'memory' | 'redis'
  /**
   * Sets `key` to `value` for `ttlMs` unless it is set already (Redis `SET NX PX`). Returns
   * undefined when this call set it, else the value already there.
   */
  claim(key: string, value: string, ttlMs: number): Maybe<string | undefined>
  /** Sets `key` to `value` for `ttlMs`, replacing any value. */
  put(key: string, value: string, ttlMs: number): Maybe<void>
  /** The value of `key`, or undefined when it is not set (or expired). */
  read(key: string): Maybe<string | undefined>
  /** Removes `key`. */
  remove(key: string): Maybe<void>
  /** Every live mark whose key starts with `prefix`: for admin listings, never on the request path. */
  list(prefix: string): Promise<Entry[]>
  close(): Promise<void>
}

/** The store could not answer (Redis down or slower than its timeout). Never a rate limit. */
export class StoreError extends Error {
  override name = 'StoreError'
}

/** Milliseconds since the epoch; injected so tests never sleep to cross a window. */
export type Clock = () => number

export const systemClock: Clock = () => Date.now()
