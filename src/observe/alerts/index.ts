/**
 * @module
 * Operator alerts to a Telegram chat (config `alerts`): a timer reads the per-bot counts the
 * request path increments ({@link AlertCounts}), {@link AlertRules} decides what is due, and
 * {@link AlertSender} delivers it. Events come in through methods: {@link Alerts.reloadRefused}
 * from the gateway's reload, {@link Alerts.storeDown} and {@link Alerts.storeUp} from the store.
 *
 * Everything here runs on timers and promises of its own: the request path never waits for it,
 * and an alert that cannot be delivered is logged, never raised.
 */

import { hostname } from 'node:os'
import { ConfigError } from '../../config/errors.js'
import type { AlertsConfig } from '../../config/load.js'
import type { Logger } from '../logger.js'
import type { AlertCounts } from './counts.js'
import { type Alert, AlertRules, type RuleSettings } from './rules.js'
import { AlertSender, type SenderOptions, type SendTarget } from './sender.js'

export { AlertCounts } from './counts.js'
export type { Alert, AlertKind } from './rules.js'

/** The counts of every bot now served, by bot name. */
export type CountSource = () => Iterable<readonly [string, AlertCounts]>

export interface AlertsDeps {
  readonly logger: Logger
  readonly counts: CountSource
  /** Milliseconds since the epoch. Default: Date.now. */
  readonly now?: () => number
  /** Names this instance in messages. Default: the host name. */
  readonly instance?: string
  /** Sender tuning for tests (backoff, waits). */
  readonly sender?: Omit<SenderOptions, 'logger'>
}

/** The timer reads counts this often: a tenth of the interval, between 50 ms and 1 s. */
function pollMs(intervalMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(intervalMs / 10)))
}

function targetOf(config: AlertsConfig): SendTarget {
  return {
    token: config.token,
    apiBase: config.apiBase,
    chatId: config.chatId,
    messageThreadId: config.messageThreadId,
  }
}

export class Alerts {
  readonly #deps: AlertsDeps
  readonly #now: () => number
  readonly #instance: string
  #config: AlertsConfig | undefined
  #rules: AlertRules | undefined
  #sender: AlertSender | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(deps: AlertsDeps) {
    this.#deps = deps
    this.#now = deps.now ?? Date.now
    this.#instance = deps.instance ?? hostname()
  }

  get enabled(): boolean {
    return this.#config !== undefined
  }

  /** Applies the `alerts` section of a (re)loaded config; undefined turns alerts off. */
  configure(config: AlertsConfig | undefined): void {
    const previous = this.#config
    this.#config = config
    if (config === undefined) {
      if (previous !== undefined) void this.#shutdownSender()
      clearInterval(this.#timer)
      this.#timer = undefined
      this.#rules = undefined
      return
    }
    const settings = this.#settings(config)
    if (this.#rules === undefined) {
      // Counts from before alerts were on are not news; start from zero.
      for (const [, counts] of this.#deps.counts()) counts.drain()
      this.#rules = new AlertRules(settings)
    } else this.#rules.configure(settings)
    if (this.#sender === undefined)
      this.#sender = new AlertSender(targetOf(config), { ...this.#deps.sender, logger: this.#deps.logger })
    else this.#sender.retarget(targetOf(config))
    if (previous === undefined || previous.intervalMs !== config.intervalMs) {
      clearInterval(this.#timer)
      this.#timer = setInterval(() => this.poll(), pollMs(config.intervalMs))
      this.#timer.unref()
    }
  }

  #settings(config: AlertsConfig): RuleSettings {
    return {
      intervalMs: config.intervalMs,
      thresholds: config.thresholds,
      storeOutage: config.storeOutage,
      reloadRefused: config.reloadRefused,
      instance: this.#instance,
    }
  }

  /** Reads and resets the counts, and sends what is due. Runs on the timer; public for tests. */
  poll(): void {
    const rules = this.#rules
    if (rules === undefined) return
    const snapshots = [...this.#deps.counts()].map(([bot, counts]) => [bot, counts.drain()] as const)
    this.#send(rules.observe(this.#now(), snapshots))
  }

  /**
   * For the store: it stopped answering. `detail` is a short error code (`ECONNREFUSED`,
   * `timeout`); anything that is not one, a URL for instance, is left out of the message.
   * Call it on every failure; repeated calls during one outage only count.
   */
  storeDown(detail?: string): void {
    if (this.#rules !== undefined) this.#send(this.#rules.storeDown(this.#now(), detail))
  }

  /** For the store: it answers again after {@link storeDown}. */
  storeUp(): void {
    if (this.#rules !== undefined) this.#send(this.#rules.storeUp(this.#now()))
  }

  /** For the gateway: a reload was refused; the message names the problems' key paths only. */
  reloadRefused(trigger: string, error: unknown): void {
    if (this.#rules === undefined) return
    const paths = error instanceof ConfigError ? error.issues.map((issue) => issue.path) : []
    this.#send(this.#rules.reloadRefused(this.#now(), trigger, paths))
  }

  #send(alerts: readonly Alert[]): void {
    for (const alert of alerts) this.#sender?.enqueue(alert)
  }

  /** Resolves when queued alerts have been delivered or given up (tests). */
  async idle(): Promise<void> {
    await this.#sender?.idle()
  }

  async #shutdownSender(): Promise<void> {
    const sender = this.#sender
    this.#sender = undefined
    await sender?.stop()
  }

  /** Stops the timer and the sender; alerts still waiting are logged as not sent. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#rules = undefined
    this.#config = undefined
    await this.#shutdownSender()
  }
}
