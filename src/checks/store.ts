/**
 * @module
 * What a check answers when the store cannot (`store.on_error: closed`, Redis down or slower than
 * `store.timeout`): 503 with Retry-After, reason `store_unavailable`. Telegram resends the update
 * later (SPEC section 1); it is never answered as a rate limit or a duplicate. Under `local` and
 * `open` the store answers in Redis's place and checks never get here (src/store/guard.ts).
 */

import { type Reject, reject } from '../pipeline/verdict.js'
import { StoreError } from '../store/index.js'

/** Seconds Telegram is asked to wait before resending (it honours Retry-After, up to 3600 s). */
export const STORE_RETRY_AFTER_SECONDS = 5

export const STORE_UNAVAILABLE: Reject = reject(503, 'store_unavailable', STORE_RETRY_AFTER_SECONDS)

/**
 * The rejection handler of a store promise: a {@link StoreError} becomes {@link STORE_UNAVAILABLE};
 * anything else is a bug and propagates (answered 500 `internal_error`).
 */
export function storeFailure(error: unknown): Reject {
  if (error instanceof StoreError) return STORE_UNAVAILABLE
  throw error
}
