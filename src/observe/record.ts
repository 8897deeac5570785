/**
 * @module
 * The end of every request: one log line with the fields of SPEC section 7, and the metrics.
 *
 * The line is a pino JSON line, in the format of the gateway's logger (see {@link ./logger.ts}),
 * written to the logger's own destination. It is serialized here, field by field, rather than by
 * pino: its fields are fixed, and pino's generic serializer, shared with every other log call in
 * the process, measured at about a fifth of the gateway's CPU time per request in the benchmark;
 * built here, the line costs about 10,000 instructions, under 4% of a request (callgrind). Being
 * an explicit list, it also keeps headers, tokens and message text out by construction; text and
 * captions appear only with `log.message_text: true`.
 */

import { type DestinationStream, pino } from 'pino'
import type { Answer } from '../pipeline/answer.js'
import type { Exchange } from '../pipeline/exchange.js'
import { isoTime, type Logger } from './logger.js'
import type { BotMetrics } from './metrics.js'

/**
 * What a log line reads of a request: an {@link Exchange}, or for HTTP that never became a request
 * (a client error on the socket), the same facts without one.
 */
export type Recorded = Pick<
  Exchange,
  'startedAt' | 'requestId' | 'client' | 'update' | 'would' | 'detail' | 'upstreamStatus' | 'upstreamMs'
>

/** `.000` to `.999`: the fraction of a millisecond, by microseconds. */
const MICROSECONDS = Array.from({ length: 1000 }, (_, us) => `.${String(us).padStart(3, '0')}`)

/**
 * Milliseconds to the microsecond, as JSON text (`17.120`). Written from whole microseconds: V8
 * turns a small integer into text from a cache, where the shortest text of a double (`17.12`) cost
 * about 150 ns more per field, timed on its own.
 */
export function msText(value: number): string {
  const us = Math.max(0, Math.round(value * 1000))
  return `${Math.floor(us / 1000)}${MICROSECONDS[us % 1000] as string}`
}

export class RequestLog {
  readonly #logger: Logger
  readonly #destination: DestinationStream
  readonly #messageText: boolean
  /** The logger's base fields, as its lines carry them. */
  readonly #base: string
  /** `"bot":<name>` per bot name, quoted once: names come from the config, a handful per process. */
  readonly #botFields = new Map<string, string>()

  constructor(logger: Logger, options: { messageText: boolean }) {
    this.#logger = logger
    this.#destination = (logger as unknown as Record<symbol, DestinationStream>)[
      pino.symbols.streamSym
    ] as DestinationStream
    this.#messageText = options.messageText
    this.#base = `,"pid":${process.pid}`
  }

  /** Counts the request in `metrics` and writes its log line. */
  record(bot: string, metrics: BotMetrics, exchange: Recorded, answer: Answer): void {
    const elapsed = performance.now() - exchange.startedAt
    metrics.request(answer.reason, answer.outcome)
    // One field increment for the alert monitor, which reads the counts on its own timer.
    metrics.alerts.count(answer.reason)
    metrics.duration.observe(elapsed / 1000)
    const would = exchange.would
    if (would !== undefined) for (const reason of would) metrics.shadow(reason)

    const level = answer.status >= 500 ? 'warn' : 'info'
    if (!this.#logger.isLevelEnabled(level)) return
    // Reasons and request ids are the gateway's own ASCII; anything that came from outside (bot
    // names, update types, commands, an unparsable X-Forwarded-For entry, notes) is JSON.stringify'd.
    let botField = this.#botFields.get(bot)
    if (botField === undefined) {
      botField = `,"bot":${JSON.stringify(bot)}`
      this.#botFields.set(bot, botField)
    }
    let line = `{"level":"${level}"${isoTime()}${this.#base}${botField},"reason":"${answer.reason}","status":${answer.status},"ms":${msText(elapsed)}`
    const update = exchange.update
    if (update !== undefined) {
      line += `,"update_id":${update.id},"update_type":${JSON.stringify(update.type)}`
      if (update.chatId !== undefined) line += `,"chat_id":${update.chatId}`
      if (update.userId !== undefined) line += `,"user_id":${update.userId}`
      if (update.command !== undefined) line += `,"command":${JSON.stringify(update.command)}`
      if (this.#messageText && update.text !== undefined) line += `,"text":${JSON.stringify(update.text)}`
    }
    if (exchange.client !== undefined) line += `,"ip":${JSON.stringify(exchange.client.text)}`
    line += `,"request_id":"${exchange.requestId}"`
    if (would !== undefined) line += `,"would":${JSON.stringify(would)}`
    if (exchange.detail !== undefined) line += `,"detail":${JSON.stringify(exchange.detail)}`
    if (exchange.upstreamStatus !== undefined) line += `,"upstream_status":${exchange.upstreamStatus}`
    if (exchange.upstreamMs !== undefined) line += `,"upstream_ms":${msText(exchange.upstreamMs)}`
    this.#destination.write(`${line},"msg":"request"}\n`)
  }
}
