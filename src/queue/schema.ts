/**
 * @module
 * The `upstream.delivery` and `upstream.queue` keys of a bot, and their compilation into a
 * {@link QueueConfig}. `delivery: queued` keeps each clean update in a Redis Stream of the bot and
 * delivers it from there (docs/queue.md); `direct`, the default, forwards it while Telegram waits.
 */

import { type Static, Type } from '@sinclair/typebox'
import { parseRate, RATE_PATTERN } from '../checks/limits/index.js'
import { DURATION_PATTERN, parseDuration } from '../config/units.js'
import { limitSpec } from '../store/gcra.js'
import type { LimitSpec } from '../store/index.js'

const duration = (fallback: string, description: string) =>
  Type.Optional(
    Type.String({
      pattern: DURATION_PATTERN,
      default: fallback,
      description: `${description} A duration like 500ms, 25s, 5m, 24h or 7d. Default: ${fallback}.`,
      errorMessage: 'must be a duration like 500ms, 25s, 5m, 24h or 7d',
    }),
  )

const count = (fallback: number, minimum: number, maximum: number, description: string) =>
  Type.Optional(
    Type.Integer({
      minimum,
      maximum,
      default: fallback,
      description: `${description} Default: ${fallback}.`,
    }),
  )

export const deliverySchema = Type.Optional(
  Type.Union([Type.Literal('direct'), Type.Literal('queued')], {
    default: 'direct',
    description:
      "direct: forward each clean update while Telegram waits (its answer is the bot's). queued: keep it in a Redis Stream, answer Telegram 200 at once, deliver it at the bot's pace, in order per chat (needs store: redis). Default: direct.",
    errorMessage: 'must be direct or queued',
  }),
)

export const queueSchema = Type.Object(
  {
    shards: count(
      4,
      1,
      64,
      'Streams the queue is split into, by chat: each is delivered by one replica at a time, so replicas share the work.',
    ),
    max_len: count(
      100_000,
      1,
      100_000_000,
      'Updates the queue may hold; past it new ones are answered 503 + Retry-After (Telegram keeps them).',
    ),
    max_age: duration(
      '24h',
      'An update not delivered after this goes to the dead letters (Telegram gives up after 24h).',
    ),
    max_attempts: count(
      100,
      1,
      1_000_000,
      'Failed deliveries of one update before it goes to the dead letters.',
    ),
    retry_min: duration('1s', 'Wait after the first failed delivery; it doubles with each failure.'),
    retry_max: duration('1m', 'The longest wait between two deliveries of one update.'),
    max_inflight: count(10, 1, 10_000, 'Deliveries of this bot under way at once, per replica.'),
    rate: Type.Optional(
      Type.String({
        pattern: RATE_PATTERN,
        description:
          'Optional: deliveries per period over every replica (N/s, N/min, N/h or N/day), shared through Redis. Absent: no limit but max_inflight.',
        errorMessage: 'must be a rate like 20/s: N/s, N/min, N/h or N/day',
      }),
    ),
    lease: duration(
      '15s',
      "How long a replica's hold on a shard lasts without renewal: a replica that dies leaves its updates to another after this.",
    ),
    poll: duration('100ms', 'How often a replica looks for updates that other replicas received.'),
    dead_max_len: count(10_000, 1, 10_000_000, 'Dead letters kept; past it the oldest are trimmed.'),
  },
  {
    additionalProperties: false,
    description: 'With delivery: queued: how the queue of this bot is kept and delivered (docs/queue.md).',
  },
)

export type QueueSection = Static<typeof queueSchema>

/** The queue of one bot, as the admission and the delivery use it. */
export interface QueueConfig {
  readonly shards: number
  readonly maxLen: number
  readonly maxAgeMs: number
  readonly maxAttempts: number
  readonly retryMinMs: number
  readonly retryMaxMs: number
  readonly maxInflight: number
  /** `rate`: one GCRA over every replica; undefined: none. */
  readonly rate: LimitSpec | undefined
  readonly leaseMs: number
  readonly pollMs: number
  readonly deadMaxLen: number
}

/**
 * The longest wait a Node.js timer keeps (2^31 - 1 ms, some 24.8 days): a longer one fires at
 * once (a TimeoutOverflowWarning), which would turn a long backoff or poll into a tight loop.
 */
const MAX_TIMER_MS = 2 ** 31 - 1

/** A duration the delivery waits with a timer: at most {@link MAX_TIMER_MS}. */
function timerDuration(text: string): number {
  return Math.min(MAX_TIMER_MS, parseDuration(text))
}

/** The section with its defaults. */
export function compileQueue(raw: Partial<QueueSection> | undefined): QueueConfig {
  const section = raw ?? {}
  let rate: LimitSpec | undefined
  if (section.rate !== undefined) {
    const { count: n, unit } = parseRate(section.rate)
    rate = limitSpec(n, unit, n, false)
  }
  return {
    shards: section.shards ?? 4,
    maxLen: section.max_len ?? 100_000,
    maxAgeMs: parseDuration(section.max_age ?? '24h'),
    maxAttempts: section.max_attempts ?? 100,
    retryMinMs: timerDuration(section.retry_min ?? '1s'),
    retryMaxMs: timerDuration(section.retry_max ?? '1m'),
    maxInflight: section.max_inflight ?? 10,
    rate,
    leaseMs: timerDuration(section.lease ?? '15s'),
    pollMs: timerDuration(section.poll ?? '100ms'),
    deadMaxLen: section.dead_max_len ?? 10_000,
  }
}
