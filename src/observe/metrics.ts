/**
 * @module
 * botgate's metrics, named and labelled once here; the dashboards and alert rules in
 * deploy/monitoring refer to these names.
 */

import type { Outcome } from '../pipeline/answer.js'
import type { Reason } from '../pipeline/verdict.js'
import { methodLabel } from '../telegram/methods.js'
import { AlertCounts } from './alerts/counts.js'
import {
  Counter,
  type CounterChild,
  Gauge,
  type GaugeChild,
  Histogram,
  type HistogramChild,
  Registry,
} from './prometheus.js'

/** Seconds. Webhook forwards are milliseconds; the tail reaches Telegram's 60 s limit. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]

/** Seconds. Redis round trips are well under a millisecond; past `store.timeout` (50 ms) they fail. */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]

/** The label value for requests that matched no bot. */
export const NO_BOT = '-'

/** Store operations, as the `operation` label of the store metrics. */
export const STORE_OPERATIONS = ['limit', 'claim', 'put', 'read', 'remove', 'list', 'ping'] as const

export type StoreOperation = (typeof STORE_OPERATIONS)[number]

/** The store's handles, one child per operation created up front. */
export interface StoreMetrics {
  readonly up: GaugeChild
  readonly errors: Readonly<Record<StoreOperation, CounterChild>>
  readonly fallbacks: Readonly<Record<StoreOperation, CounterChild>>
  readonly duration: Readonly<Record<StoreOperation, HistogramChild>>
}

/** Per-operation children of one metric. */
function byOperation<C>(child: (operation: StoreOperation) => C): Record<StoreOperation, C> {
  return Object.fromEntries(STORE_OPERATIONS.map((operation) => [operation, child(operation)])) as Record<
    StoreOperation,
    C
  >
}

export class BotMetrics {
  readonly #requests: Counter
  readonly #shadow: Counter
  readonly #egressCalls: Counter
  readonly #name: string
  /** Counter children by outcome, then reason: both are the gateway's own constant strings, so no key is built per request. */
  readonly #byOutcome = new Map<Outcome, Map<Reason, CounterChild>>()
  readonly duration: HistogramChild
  readonly upstream: HistogramChild
  readonly inflight: GaugeChild
  /** What the alert monitor reads (bad secrets, refused sources, upstream failures); kept across reloads. */
  readonly alerts = new AlertCounts()

  constructor(metrics: GatewayMetrics, name: string) {
    this.#name = name
    this.#requests = metrics.requests
    this.#shadow = metrics.shadow
    this.#egressCalls = metrics.egressCalls
    this.duration = metrics.duration.labels(name)
    this.upstream = metrics.upstreamDuration.labels(name)
    this.inflight = metrics.inflight.labels(name)
  }

  request(reason: Reason, outcome: Outcome): void {
    let byReason = this.#byOutcome.get(outcome)
    if (byReason === undefined) {
      byReason = new Map()
      this.#byOutcome.set(outcome, byReason)
    }
    let child = byReason.get(reason)
    if (child === undefined) {
      child = this.#requests.labels(this.#name, reason, outcome)
      byReason.set(reason, child)
    }
    child.inc()
  }

  shadow(reason: Reason): void {
    this.#shadow.labels(this.#name, reason).inc()
  }

  /**
   * A webhook answer withheld from Telegram (its method or chat refused by policy): counted with
   * the Bot API calls, `via: answer`, with the status the egress gives the same refusal.
   */
  answerWithheld(method: string | undefined, reason: string): void {
    const status = reason === 'store_unavailable' ? '503' : '403'
    this.#egressCalls.labels(this.#name, methodLabel(method), status, 'answer', reason).inc()
  }
}

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests = this.registry.register(
    new Counter('botgate_requests_total', 'Requests answered, by bot, reason code and outcome.', [
      'bot',
      'reason',
      'outcome',
    ]),
  )
  readonly shadow = this.registry.register(
    new Counter(
      'botgate_shadow_verdicts_total',
      'Verdicts of checks in shadow mode: would have dropped or rejected.',
      ['bot', 'reason'],
    ),
  )
  readonly duration = this.registry.register(
    new Histogram(
      'botgate_request_duration_seconds',
      'Time from request to answer, seconds.',
      ['bot'],
      LATENCY_BUCKETS,
    ),
  )
  readonly upstreamDuration = this.registry.register(
    new Histogram(
      'botgate_upstream_duration_seconds',
      'Time the upstream took to answer a forward, seconds.',
      ['bot'],
      LATENCY_BUCKETS,
    ),
  )
  readonly inflight = this.registry.register(
    new Gauge('botgate_inflight_requests', 'Authenticated requests being processed now.', ['bot']),
  )
  readonly reloads = this.registry.register(
    new Counter('botgate_config_reloads_total', 'Config reloads, by result (success or failure).', [
      'result',
    ]),
  )
  readonly egressCalls = this.registry.register(
    new Counter(
      'botgate_egress_calls_total',
      'Bot API calls made with bot tokens, by bot, method (as the Bot API spec spells it, any case; other: a name the spec does not know, or no bot), HTTP status, via (egress: the egress listener; reply: a webhook answer botgate executed; answer: a webhook answer botgate withheld from Telegram) and reason (botgate refused or could not send it; empty: Telegram answered).',
      ['bot', 'method', 'status', 'via', 'reason'],
    ),
  )
  readonly lastReload = this.registry.register(
    new Gauge(
      'botgate_config_last_reload_success_timestamp_seconds',
      'When the running config was loaded, Unix seconds.',
    ),
  )
  readonly storeUp = this.registry.register(
    new Gauge(
      'botgate_store_up',
      'Whether the store answers: 1 up, 0 down (on_error applies). Always 1 for the memory store.',
      ['store'],
    ),
  )
  readonly storeErrors = this.registry.register(
    new Counter(
      'botgate_store_errors_total',
      'Redis operations that failed: errors, timeouts, lost connections, failed probes. Never counted as rate limits.',
      ['operation'],
    ),
  )
  readonly storeFallbacks = this.registry.register(
    new Counter(
      'botgate_store_fallbacks_total',
      'Store operations answered by store.on_error (local, open or closed) because Redis was down or failed.',
      ['operation', 'on_error'],
    ),
  )
  readonly storeDuration = this.registry.register(
    new Histogram(
      'botgate_store_duration_seconds',
      'Store operations that succeeded, seconds (operations of one event-loop iteration share one Redis round trip).',
      ['operation'],
      STORE_BUCKETS,
    ),
  )
  readonly limitExceeded = this.registry.register(
    new Counter(
      'botgate_limit_exceeded_total',
      'Requests a rate limit denied, by bot, limit name and mode (enforce: refused; shadow: would have been).',
      ['bot', 'limit', 'mode'],
    ),
  )
  readonly bans = this.registry.register(
    new Counter(
      'botgate_bans_total',
      'Automatic bans raised (policy section bans), by bot, kind (ip or user) and mode (enforce, or shadow: would have been).',
      ['bot', 'kind', 'mode'],
    ),
  )
  readonly logLinesDropped = this.registry.register(
    new Counter(
      'botgate_log_lines_dropped_total',
      'Log lines dropped because the log reader (stdout) was slower than the traffic or gone; logging never waits for it.',
    ),
  )
  readonly info = this.registry.register(
    new Gauge('botgate_build_info', 'Version of the running botgate.', ['version', 'node']),
  )
  readonly rss = this.registry.register(
    new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.'),
  )
  readonly heap = this.registry.register(new Gauge('nodejs_heap_used_bytes', 'V8 heap in use, bytes.'))
  readonly started = this.registry.register(
    new Gauge('process_start_time_seconds', 'Start time of the process, Unix seconds.'),
  )

  readonly #bots = new Map<string, BotMetrics>()

  constructor(version: string) {
    this.info.labels(version, process.version).set(1)
    this.started.labels().set(Math.round(Date.now() / 1000 - process.uptime()))
    this.reloads.labels('success')
    this.reloads.labels('failure')
    this.registry.onCollect(() => {
      const memory = process.memoryUsage()
      this.rss.labels().set(memory.rss)
      this.heap.labels().set(memory.heapUsed)
    })
  }

  /** The store's handles: `type` memory or redis, `onError` as configured (memory: none). */
  store(type: 'memory' | 'redis', onError: string): StoreMetrics {
    const up = this.storeUp.labels(type)
    up.set(1)
    return {
      up,
      errors: byOperation((operation) => this.storeErrors.labels(operation)),
      fallbacks: byOperation((operation) => this.storeFallbacks.labels(operation, onError)),
      duration: byOperation((operation) => this.storeDuration.labels(operation)),
    }
  }

  /** The handles of one bot; the same object across reloads, so counters keep counting. */
  bot(name: string): BotMetrics {
    let bot = this.#bots.get(name)
    if (bot === undefined) {
      bot = new BotMetrics(this, name)
      this.#bots.set(name, bot)
    }
    return bot
  }

  render(): string {
    return this.registry.render()
  }
}
