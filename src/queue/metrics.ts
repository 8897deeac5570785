/**
 * @module
 * The queue's metrics on the gateway's registry (listed in docs/monitoring.md). Gauges are what
 * this replica sees of the shards it holds, so summing them over replicas gives the bot's queue.
 *
 * - `botgate_queue_length{bot}`: updates waiting in the shards this replica holds.
 * - `botgate_queue_oldest_seconds{bot}`: age of the oldest of them.
 * - `botgate_queue_shards_held{bot}`: shards this replica delivers.
 * - `botgate_queue_dead_letters{bot}`: dead letters kept (reported by the holder of shard 0; 0 elsewhere).
 * - `botgate_queue_deliveries_total{bot,outcome}`: delivered, retried (a failed attempt that will be
 *   tried again), dead (moved to the dead letters).
 * - `botgate_queue_delivery_seconds{bot}`: from taking an update in to its delivery.
 */

import { Counter, Gauge, Histogram, type Registry } from '../observe/prometheus.js'

export type DeliveryOutcome = 'delivered' | 'retried' | 'dead'

export interface QueueMetrics {
  /** A queued bot's counters at zero, so rates and alerts have a series from the start. */
  start(bot: string): void
  held(bot: string, shards: number): void
  /** The held shards' length and oldest entry's age (ms; 0 when empty). */
  backlog(bot: string, length: number, oldestMs: number): void
  dead(bot: string, count: number): void
  delivery(bot: string, outcome: DeliveryOutcome): void
  /** An update delivered `ms` after it was taken in. */
  latency(bot: string, ms: number): void
}

/** Seconds: from a quick delivery to a bot that was down for hours. */
const LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 21_600, 86_400]

export function queueMetrics(registry: Registry): QueueMetrics {
  const length = registry.register(
    new Gauge('botgate_queue_length', 'Updates waiting in the queue shards this replica holds, by bot.', [
      'bot',
    ]),
  )
  const oldest = registry.register(
    new Gauge(
      'botgate_queue_oldest_seconds',
      'Age of the oldest update in the queue shards this replica holds, seconds, by bot.',
      ['bot'],
    ),
  )
  const held = registry.register(
    new Gauge('botgate_queue_shards_held', 'Queue shards this replica delivers, by bot.', ['bot']),
  )
  const dead = registry.register(
    new Gauge(
      'botgate_queue_dead_letters',
      'Dead letters kept, by bot (reported by the holder of shard 0).',
      ['bot'],
    ),
  )
  const deliveries = registry.register(
    new Counter(
      'botgate_queue_deliveries_total',
      'Queued deliveries by bot and outcome: delivered, retried (failed, tried again later), dead.',
      ['bot', 'outcome'],
    ),
  )
  const latency = registry.register(
    new Histogram(
      'botgate_queue_delivery_seconds',
      'Time from taking a queued update in to its delivery to the upstream, seconds.',
      ['bot'],
      LATENCY_BUCKETS,
    ),
  )
  return {
    start: (bot) => {
      for (const outcome of ['delivered', 'retried', 'dead'] as const) deliveries.labels(bot, outcome)
    },
    held: (bot, shards) => held.labels(bot).set(shards),
    backlog: (bot, n, oldestMs) => {
      length.labels(bot).set(n)
      oldest.labels(bot).set(oldestMs / 1000)
    },
    dead: (bot, count) => dead.labels(bot).set(count),
    delivery: (bot, outcome) => deliveries.labels(bot, outcome).inc(),
    latency: (bot, ms) => latency.labels(bot).observe(ms / 1000),
  }
}
