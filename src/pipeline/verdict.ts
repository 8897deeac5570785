/**
 * @module
 * What a check decides, as types that keep the two kinds of "no" apart:
 *
 * - {@link Reject}: the request is not a usable, authentic Telegram delivery (a forger, a scanner, a
 *   broken client). It gets an HTTP error, `{"ok":false,"error":"<reason>"}`, and nothing else.
 * - {@link Drop}: a genuine update that policy refuses. It is answered 200, because Telegram resends
 *   any non-2xx answer for up to 24 h and holds back the chat's later updates meanwhile
 *   (SPEC section 1), optionally with a webhook reply that answers the user.
 *
 * Passing is `undefined`, so the common path allocates nothing. Reasons are a closed set: logs,
 * metrics, dashboards and tests key on them (SPEC section 3).
 */

/** Reasons that answer with an HTTP error status. */
export type RejectReason =
  | 'unknown_route'
  | 'method_not_allowed'
  | 'ip_not_allowed'
  | 'banned'
  | 'rate_limited'
  | 'bad_secret'
  | 'unsupported_media_type'
  | 'body_too_large'
  | 'malformed_json'
  | 'duplicate_update'
  | 'store_unavailable'
  | 'internal_error'
  // Before any check: HTTP that could not be read as a request (SPEC section 7, slow or stuck clients).
  | 'request_timeout'
  | 'bad_request'

/** Reasons that answer 200 without forwarding. */
export type DropReason =
  | 'invalid_update'
  | 'update_type_not_allowed'
  | 'duplicate_update'
  | 'command_not_allowed'
  | 'command_forbidden'
  | 'command_for_other_bot'
  | 'rate_limited'
  | 'blocked'
  | 'chat_not_allowed'
  | 'user_not_allowed'
  | 'content_not_allowed'

/** Reasons that describe the forward to the upstream (SPEC section 3, the upstream outcome table). */
export type ForwardReason =
  | 'forwarded'
  | 'upstream_busy'
  | 'upstream_error'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'overloaded'
  // upstream.delivery: queued (docs/queue.md): kept for delivery, or not taken in.
  | 'queued'
  | 'queue_full'
  | 'queue_unavailable'

export type Reason = RejectReason | DropReason | ForwardReason

/** Every reason, for metrics that must exist at zero before the first request. */
export const REASONS: readonly Reason[] = [
  'forwarded',
  'unknown_route',
  'method_not_allowed',
  'ip_not_allowed',
  'banned',
  'rate_limited',
  'bad_secret',
  'unsupported_media_type',
  'body_too_large',
  'malformed_json',
  'invalid_update',
  'update_type_not_allowed',
  'duplicate_update',
  'command_not_allowed',
  'command_forbidden',
  'command_for_other_bot',
  'blocked',
  'chat_not_allowed',
  'user_not_allowed',
  'content_not_allowed',
  'upstream_busy',
  'upstream_error',
  'upstream_unreachable',
  'upstream_timeout',
  'overloaded',
  'queued',
  'queue_full',
  'queue_unavailable',
  'store_unavailable',
  'internal_error',
  'request_timeout',
  'bad_request',
]

export type RejectStatus = 400 | 401 | 403 | 404 | 405 | 408 | 413 | 415 | 429 | 431 | 500 | 503

export interface Reject {
  readonly kind: 'reject'
  readonly status: RejectStatus
  readonly reason: RejectReason
  /** Seconds, sent as `Retry-After` (Telegram honours it, capped at 3600). */
  readonly retryAfter?: number
}

/** A webhook reply the gateway itself sends for a dropped update (SPEC section 3, "Replies"). */
export interface WebhookReply {
  readonly method: 'sendMessage' | 'answerCallbackQuery'
  readonly [param: string]: unknown
}

export interface Drop {
  readonly kind: 'drop'
  readonly reason: DropReason
  readonly reply?: WebhookReply
}

export type Verdict = Reject | Drop

export function reject(status: RejectStatus, reason: RejectReason, retryAfter?: number): Reject {
  return Object.freeze(
    retryAfter === undefined
      ? { kind: 'reject', status, reason }
      : { kind: 'reject', status, reason, retryAfter },
  )
}

export function drop(reason: DropReason, reply?: WebhookReply): Drop {
  return Object.freeze(reply === undefined ? { kind: 'drop', reason } : { kind: 'drop', reason, reply })
}
