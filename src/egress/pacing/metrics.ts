/**
 * @module
 * {@link PacingMetrics} on the gateway's registry. Kept here, not in src/observe/metrics.ts, until
 * the egress proxy mounts pacing: whoever registers these lists them in docs/monitoring.md.
 *
 * - `botgate_egress_queue_depth{bot}`: calls waiting for their turn now.
 * - `botgate_egress_queue_wait_seconds{bot}`: how long calls waited before going to Telegram.
 * - `botgate_egress_telegram_429_total{bot}`: Telegram's 429 answers.
 * - `botgate_egress_retries_total{bot}`: calls sent again after Telegram's 429.
 * - `botgate_egress_refused_total{bot,reason}`: calls the pacer answered 429 itself (queue_full,
 *   wait_too_long, closing, store_unavailable).
 */

import { Counter, Gauge, Histogram, type Registry } from '../../observe/prometheus.js'
import type { RefusalReason } from './call.js'

/** What pacing reports; {@link pacingMetrics} implements it on the gateway's registry. */
export interface PacingMetrics {
  /** Calls of the bot waiting for their turn now. */
  queueDepth(bot: string, depth: number): void
  /** A call went to Telegram after waiting `ms` (its first attempt). */
  sent(bot: string, waitedMs: number): void
  /** Telegram answered 429. */
  tooMany(bot: string): void
  /** A call was sent again after Telegram's 429. */
  retried(bot: string): void
  /** A call was answered 429 by the pacer itself. */
  refused(bot: string, why: RefusalReason): void
}

/** Seconds: from no wait to the longest `max_wait` a sane config has. */
const WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export function pacingMetrics(registry: Registry): PacingMetrics {
  const depth = registry.register(
    new Gauge('botgate_egress_queue_depth', 'Bot API calls waiting for their turn under pacing, by bot.', [
      'bot',
    ]),
  )
  const wait = registry.register(
    new Histogram(
      'botgate_egress_queue_wait_seconds',
      'Time Bot API calls waited under pacing before going to Telegram, seconds.',
      ['bot'],
      WAIT_BUCKETS,
    ),
  )
  const tooMany = registry.register(
    new Counter(
      'botgate_egress_telegram_429_total',
      "Telegram's 429 (flood) answers to Bot API calls, by bot.",
      ['bot'],
    ),
  )
  const retries = registry.register(
    new Counter('botgate_egress_retries_total', "Bot API calls sent again after Telegram's 429, by bot.", [
      'bot',
    ]),
  )
  const refused = registry.register(
    new Counter(
      'botgate_egress_refused_total',
      'Bot API calls pacing answered 429 itself, by bot and reason (queue_full, wait_too_long, closing, store_unavailable).',
      ['bot', 'reason'],
    ),
  )
  return {
    queueDepth: (bot: string, value: number) => depth.labels(bot).set(value),
    sent: (bot: string, waitedMs: number) => wait.labels(bot).observe(waitedMs / 1000),
    tooMany: (bot: string) => tooMany.labels(bot).inc(),
    retried: (bot: string) => retries.labels(bot).inc(),
    refused: (bot: string, why: RefusalReason) => refused.labels(bot, why).inc(),
  }
}
