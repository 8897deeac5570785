/**
 * @module
 * The HTTP answer a request ends with, built from a verdict or from the upstream's outcome.
 * Error bodies are `{"ok":false,"error":"<reason>"}` and reveal nothing else: no stack, no check
 * name, no config detail (SPEC section 3).
 */

import type { Drop, Reason, Reject } from './verdict.js'

/**
 * How a request ended, for "forwarded vs dropped vs rejected" at a glance in metrics. `queued`:
 * kept in the bot's queue (upstream.delivery: queued), delivered later.
 */
export type Outcome = 'forwarded' | 'queued' | 'dropped' | 'rejected' | 'failed'

export interface Answer {
  readonly status: number
  readonly reason: Reason
  readonly outcome: Outcome
  /** null: no body. */
  readonly body: string | Buffer | null
  readonly contentType: string | undefined
  readonly retryAfter: string | undefined
  /** Close the connection after answering: the request body was not read to its end. */
  readonly close: boolean
}

export const JSON_TYPE = 'application/json'

const errorBodies = new Map<Reason, string>()

/** `{"ok":false,"error":"<reason>"}`, built once per reason. */
export function errorBody(reason: Reason): string {
  let body = errorBodies.get(reason)
  if (body === undefined) {
    body = JSON.stringify({ ok: false, error: reason })
    errorBodies.set(reason, body)
  }
  return body
}

export function failure(
  status: number,
  reason: Reason,
  outcome: Outcome,
  options: { retryAfter?: string | undefined; close?: boolean } = {},
): Answer {
  return {
    status,
    reason,
    outcome,
    body: errorBody(reason),
    contentType: JSON_TYPE,
    retryAfter: options.retryAfter,
    close: options.close ?? false,
  }
}

export function rejectAnswer(verdict: Reject, close: boolean): Answer {
  return failure(verdict.status, verdict.reason, 'rejected', {
    retryAfter: verdict.retryAfter === undefined ? undefined : String(verdict.retryAfter),
    close,
  })
}

/** 200, so Telegram does not resend; with the gateway's own webhook reply when the drop has one. */
export function dropAnswer(verdict: Drop): Answer {
  return {
    status: 200,
    reason: verdict.reason,
    outcome: 'dropped',
    body: verdict.reply === undefined ? null : JSON.stringify(verdict.reply),
    contentType: verdict.reply === undefined ? undefined : JSON_TYPE,
    retryAfter: undefined,
    close: false,
  }
}
