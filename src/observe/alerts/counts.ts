/**
 * @module
 * The request path's only part in alerting: one object of plain number fields per bot, created
 * once with the bot's metrics, and a switch on the answer's reason that increments one of them.
 * No allocation, no lookup by string, no await; the alert monitor reads and resets the fields
 * on its own timer, off the request path.
 */

import type { Reason } from '../../pipeline/verdict.js'

/** The counts alerting reads, in the order messages list them. */
export const UPSTREAM_REASONS = [
  'upstream_unreachable',
  'upstream_timeout',
  'upstream_error',
  'upstream_busy',
] as const satisfies readonly Reason[]

export type UpstreamReason = (typeof UPSTREAM_REASONS)[number]

export interface CountSnapshot {
  readonly badSecret: number
  readonly ipNotAllowed: number
  readonly forwarded: number
  readonly upstream: Readonly<Record<UpstreamReason, number>>
  /** Automatic bans raised (section `bans`, enforced): not a request reason, counted by the ban itself. */
  readonly bans: number
  /** Egress calls Telegram answered 401: the bot's token is revoked or wrong. */
  readonly egressRejected: number
  /** Egress calls Telegram answered 429 (flood control), retried or not. */
  readonly egressFlood: number
  /** Queued updates moved to the dead letters (upstream.delivery: queued). */
  readonly deadLetters: number
}

export class AlertCounts {
  badSecret = 0
  ipNotAllowed = 0
  forwarded = 0
  upstreamUnreachable = 0
  upstreamTimeout = 0
  upstreamError = 0
  upstreamBusy = 0
  bans = 0
  egressRejected = 0
  egressFlood = 0
  deadLetters = 0

  /** Called once per answered request with its reason (from recordRequest). */
  count(reason: Reason): void {
    switch (reason) {
      case 'forwarded':
        this.forwarded++
        return
      case 'bad_secret':
        this.badSecret++
        return
      case 'ip_not_allowed':
        this.ipNotAllowed++
        return
      case 'upstream_unreachable':
        this.upstreamUnreachable++
        return
      case 'upstream_timeout':
        this.upstreamTimeout++
        return
      case 'upstream_error':
        this.upstreamError++
        return
      case 'upstream_busy':
        this.upstreamBusy++
        return
      default:
        return
    }
  }

  /** The counts since the last call, and zero again: for the monitor's timer, never per request. */
  drain(): CountSnapshot {
    const snapshot: CountSnapshot = {
      badSecret: this.badSecret,
      ipNotAllowed: this.ipNotAllowed,
      forwarded: this.forwarded,
      upstream: {
        upstream_unreachable: this.upstreamUnreachable,
        upstream_timeout: this.upstreamTimeout,
        upstream_error: this.upstreamError,
        upstream_busy: this.upstreamBusy,
      },
      bans: this.bans,
      egressRejected: this.egressRejected,
      egressFlood: this.egressFlood,
      deadLetters: this.deadLetters,
    }
    this.badSecret = 0
    this.ipNotAllowed = 0
    this.forwarded = 0
    this.upstreamUnreachable = 0
    this.upstreamTimeout = 0
    this.upstreamError = 0
    this.upstreamBusy = 0
    this.bans = 0
    this.egressRejected = 0
    this.egressFlood = 0
    this.deadLetters = 0
    return snapshot
  }
}
