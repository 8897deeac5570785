/**
 * @module
 * One Bot API call as the pacer sees it, one attempt at Telegram, and what the pacer answers.
 */

/** Which chat a call targets: from chat_id (number or @username string); undefined = not chat-bound. */
export type ChatTarget = { readonly id: string; readonly kind: 'private' | 'group' } | undefined

export interface PacedCall {
  readonly bot: string
  readonly method: string
  readonly chat: ChatTarget
  /** false: the body cannot be sent again (a streamed upload); a 429 goes back to the bot as is. */
  readonly retriable: boolean
}

/** What one attempt at Telegram gave: `retryAfterS` set when Telegram answered 429 with parameters.retry_after. */
export interface Attempt<T> {
  readonly value: T
  readonly retryAfterS?: number
  /** The 429 was about the bot as a whole, not this chat. */
  readonly global?: boolean
}

export type RefusalReason = 'queue_full' | 'wait_too_long' | 'closing' | 'store_unavailable'

export type Paced<T> =
  | { readonly kind: 'sent'; readonly value: T; readonly queuedMs: number; readonly retries: number }
  | { readonly kind: 'refused'; readonly retryAfterS: number; readonly why: RefusalReason }
