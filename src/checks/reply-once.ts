/**
 * @module
 * A gateway reply that a chat or user gets at most once per period: the refusals of `chats` and
 * `users` answer with a text ("This bot is private."), and a sender who keeps writing must not turn
 * each refused update into another message from the bot. The mark lives in the store, so with
 * `store: redis` all replicas share it, as they share the limits' reply-once marks (SPEC section 3,
 * "Replies").
 */

import { isPromise } from '../pipeline/run.js'
import type { Drop, Reject } from '../pipeline/verdict.js'
import type { Store } from '../store/index.js'
import { storeFailure } from './store.js'

/**
 * `withReply` when this call set the mark `key` (nobody was answered within `periodMs`), else
 * `silent`. A store failure answers as the store's `on_error` says (src/checks/store.ts): a reply
 * is not worth refusing a genuine update for, but `closed` means the operator wants no guesswork.
 */
export function replyOnce(
  store: Store,
  key: string,
  periodMs: number,
  withReply: Drop,
  silent: Drop,
): Drop | Promise<Drop | Reject> {
  const choose = (previous: string | undefined): Drop => (previous === undefined ? withReply : silent)
  const claimed = store.claim(key, '1', periodMs)
  return isPromise(claimed) ? claimed.then(choose, storeFailure) : choose(claimed)
}
