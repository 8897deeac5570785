/**
 * @module
 * Delivers alert messages with sendMessage, one at a time, off the request path.
 *
 * Retries are bounded: at most `maxAttempts` tries per message. A 429 answer waits the
 * `parameters.retry_after` seconds Telegram asks for (ResponseParameters, "Flood control" in
 * https://core.telegram.org/bots/api), capped; network errors, timeouts and 5xx answers back off
 * exponentially. Other errors (400 chat not found, 401 bad token, 403 bot not in the chat) will not
 * get better by retrying and are logged at once. The queue is bounded too: when alerts pile up
 * behind a long wait, the oldest are dropped and counted.
 *
 * Logs name the alert kind and Telegram's error code and description, never the request URL,
 * which holds the bot token.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { BotApi } from '../../telegram/bot-api.js'
import type { Logger } from '../logger.js'
import type { Alert } from './rules.js'

export interface SendTarget {
  readonly token: string
  readonly apiBase: string
  readonly chatId: number | string
  readonly messageThreadId: number | undefined
}

export interface SenderOptions {
  readonly logger: Logger
  /** Tries per message, the first included. Default: 5. */
  readonly maxAttempts?: number
  /** First backoff after a network error or 5xx, doubled each time. Default: 1 s. */
  readonly backoffMs?: number
  /** Longest backoff. Default: 60 s. */
  readonly maxBackoffMs?: number
  /** Longest wait honoured from retry_after, seconds. Default: 3600 (what Telegram caps it at). */
  readonly maxRetryAfterS?: number
  /** Messages waiting at most; past it the oldest go. Default: 20. */
  readonly maxQueue?: number
  /** Per-call timeout. Default: 10 s. */
  readonly timeoutMs?: number
  /** Waits `ms` or rejects when `signal` aborts; injected by unit tests. */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<unknown>
}

type Outcome = 'sent' | 'failed' | 'stopped'

export class AlertSender {
  readonly #logger: Logger
  readonly #maxAttempts: number
  readonly #backoffMs: number
  readonly #maxBackoffMs: number
  readonly #maxRetryAfterMs: number
  readonly #maxQueue: number
  readonly #timeoutMs: number
  readonly #wait: (ms: number, signal: AbortSignal) => Promise<unknown>
  readonly #queue: Alert[] = []
  readonly #stop = new AbortController()
  #target: SendTarget
  #api: BotApi
  #running: Promise<void> | undefined

  constructor(target: SendTarget, options: SenderOptions) {
    this.#logger = options.logger
    this.#maxAttempts = options.maxAttempts ?? 5
    this.#backoffMs = options.backoffMs ?? 1000
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000
    this.#maxRetryAfterMs = (options.maxRetryAfterS ?? 3600) * 1000
    this.#maxQueue = options.maxQueue ?? 20
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#wait = options.wait ?? ((ms, signal) => sleep(ms, undefined, { signal }))
    this.#target = target
    this.#api = new BotApi(target.token, { apiBase: target.apiBase, timeoutMs: this.#timeoutMs })
  }

  /** Where messages go from now on (a reload changed the chat, token or API base). */
  retarget(target: SendTarget): void {
    this.#target = target
    this.#api = new BotApi(target.token, { apiBase: target.apiBase, timeoutMs: this.#timeoutMs })
  }

  enqueue(alert: Alert): void {
    if (this.#stop.signal.aborted) return
    this.#queue.push(alert)
    while (this.#queue.length > this.#maxQueue) {
      const dropped = this.#queue.shift()
      this.#logger.warn({ kind: dropped?.kind }, 'alert dropped: too many alerts waiting to be sent')
    }
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined
    })
  }

  /** Resolves when every queued message has been sent or given up. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  /** Stops: the message in progress and those waiting are abandoned (and logged). */
  async stop(): Promise<void> {
    this.#stop.abort()
    await this.idle()
    if (this.#queue.length > 0) {
      this.#logger.warn({ kinds: this.#queue.map((alert) => alert.kind) }, 'alerts not sent: shutting down')
      this.#queue.length = 0
    }
  }

  async #drain(): Promise<void> {
    for (let alert = this.#queue.shift(); alert !== undefined; alert = this.#queue.shift()) {
      if ((await this.#send(alert)) === 'stopped') {
        this.#queue.unshift(alert)
        return
      }
    }
  }

  async #send(alert: Alert): Promise<Outcome> {
    const signal = this.#stop.signal
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return 'stopped'
      const target = this.#target
      const result = await this.#api.call(
        'sendMessage',
        { chat_id: target.chatId, message_thread_id: target.messageThreadId, text: alert.text },
        {},
        signal,
      )
      if (result.kind === 'ok') {
        this.#logger.info({ kind: alert.kind, attempt }, 'alert sent')
        return 'sent'
      }
      if (signal.aborted) return 'stopped'
      const failure =
        result.kind === 'network'
          ? { code: result.code }
          : { error_code: result.errorCode, description: result.description }
      const retryable = result.kind === 'network' || result.errorCode === 429 || result.errorCode >= 500
      if (!retryable || attempt >= this.#maxAttempts) {
        this.#logger.warn(
          { kind: alert.kind, attempts: attempt, ...failure },
          retryable ? 'alert not sent: giving up after retries' : 'alert not sent: Telegram refused it',
        )
        return 'failed'
      }
      let waitMs: number
      if (result.kind === 'error' && result.errorCode === 429 && result.retryAfter !== undefined) {
        // Flood control: Telegram says how long to wait; asking sooner only earns another 429.
        waitMs = Math.min(result.retryAfter * 1000, this.#maxRetryAfterMs)
        this.#logger.warn(
          { kind: alert.kind, attempt, retry_after: result.retryAfter },
          'alert delayed: Telegram asked to retry later',
        )
      } else {
        waitMs = Math.min(this.#backoffMs * 2 ** (attempt - 1), this.#maxBackoffMs)
        this.#logger.warn(
          { kind: alert.kind, attempt, wait_ms: waitMs, ...failure },
          'alert send failed: retrying',
        )
      }
      try {
        await this.#wait(waitMs, signal)
      } catch {
        return 'stopped'
      }
    }
  }
}
