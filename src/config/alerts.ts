/**
 * @module
 * The `alerts` section: the bot that sends operator alerts, the chat they go to, and the
 * thresholds per interval (docs/alerts.md).
 */

import type { RawAlerts } from './schema.js'
import type { SecretReader } from './secrets.js'
import { parseDuration } from './units.js'

/** Thresholds per interval; undefined turns that alert off. */
export interface AlertThresholds {
  readonly badSecret: number | undefined
  readonly ipNotAllowed: number | undefined
  readonly upstreamFailures: number | undefined
  readonly bans: number | undefined
  readonly egressTokenRejected: number | undefined
  readonly egressFlood: number | undefined
  readonly deadLetters: number | undefined
}

export interface AlertsConfig {
  readonly token: string
  readonly chatId: number | string
  readonly messageThreadId: number | undefined
  readonly apiBase: string
  readonly intervalMs: number
  readonly thresholds: AlertThresholds
  readonly storeOutage: boolean
  readonly reloadRefused: boolean
}

/** Shorter alert intervals risk Telegram's flood limits for messages to one chat. */
const MIN_ALERT_INTERVAL_MS = 10_000

export function resolveAlerts(
  reader: SecretReader,
  raw: RawAlerts | undefined,
  warnings: string[],
): AlertsConfig | undefined {
  if (raw === undefined) return undefined
  const at = ['alerts']
  const token = reader.botToken(
    raw as Record<string, unknown>,
    at,
    '(or give token_file): alerts are sent by a bot, with its token',
  )
  let apiBase: URL | undefined
  try {
    apiBase = new URL(raw.api_base)
  } catch {
    reader.source.issue([...at, 'api_base'], 'must be an http(s) URL')
  }
  if (apiBase !== undefined && apiBase.protocol === 'http:' && !isLoopback(apiBase.hostname)) {
    warnings.push(
      'alerts: api_base is plain http to another host: the alert bot token crosses the network unencrypted',
    )
  }
  const intervalMs = parseDuration(raw.interval)
  if (intervalMs === 0) reader.source.issue([...at, 'interval'], 'must be more than 0')
  else if (intervalMs < MIN_ALERT_INTERVAL_MS) {
    warnings.push(
      `alerts: interval ${raw.interval} is under 10s: alerts may run into Telegram's flood limits`,
    )
  }
  if (token === undefined || apiBase === undefined || intervalMs === 0) return undefined
  const count = (value: number | false) => (value === false ? undefined : value)
  return {
    token,
    chatId: raw.chat_id,
    messageThreadId: raw.message_thread_id,
    apiBase: raw.api_base,
    intervalMs,
    thresholds: {
      badSecret: count(raw.bad_secret),
      ipNotAllowed: count(raw.ip_not_allowed),
      upstreamFailures: count(raw.upstream_failures),
      bans: count(raw.bans),
      egressTokenRejected: count(raw.egress_token_rejected),
      egressFlood: count(raw.egress_flood),
      deadLetters: count(raw.dead_letters),
    },
    storeOutage: raw.store_outage,
    reloadRefused: raw.reload_refused,
  }
}

export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname.startsWith('127.')
}
