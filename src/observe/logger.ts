/**
 * @module
 * The gateway's logger: pino JSON lines. Redaction paths are compiled once by pino; they guard any
 * object that could carry a secret (headers, configs). The request line itself is built from an
 * explicit list of fields, so secrets, tokens and message text never enter it in the first place.
 */

import { type DestinationStream, type Logger, pino } from 'pino'
import { LogDestination } from './log-destination.js'

export type { Logger }

/**
 * Paths pino censors wherever these keys appear at the top of a logged object or under the named
 * parents. No path starts with a wildcard: a leading wildcard makes pino run every field of every
 * line through the redactor, which measured at a tenth of the gateway's CPU per request.
 */
export const REDACT_PATHS = [
  'secret_token',
  'secretToken',
  'token',
  'key',
  'authorization',
  'headers.authorization',
  'headers["x-telegram-bot-api-secret-token"]',
  'config.bots[*].secret_token',
  'config.bots[*].upstream.secret_token',
  'bot.secret_token',
  'bot.secretToken',
]

/** What the standard output destination reports to. */
export interface StdoutOptions {
  /**
   * Counts log lines dropped because the reader was too slow (`botgate_log_lines_dropped_total`).
   * @default none
   */
  readonly dropped?: { inc(by: number): void }
}

/**
 * Standard output, batched and written asynchronously through a bounded buffer: see
 * {@link LogDestination}. Flushed when the process exits.
 */
export function stdoutDestination(options: StdoutOptions = {}): DestinationStream {
  // Opening process.stdout makes a pipe or socket on fd 1 non-blocking (Node opens it as a libuv
  // stream), so a full pipe answers the destination's writes with EAGAIN instead of holding a
  // threadpool thread. main.ts opens it too; this keeps the destination's premise where it is used.
  void process.stdout
  const destination = new LogDestination(1, { ...options, notice: droppedNotice })
  process.once('exit', () => destination.flushSync())
  return destination
}

/** The pino options of every botgate logger. */
function loggerOptions(level: string) {
  return {
    level,
    base: { pid: process.pid },
    timestamp: () => isoTime(),
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  }
}

let isoSecond = Number.NaN
let isoPrefix = ''

/**
 * pino's `timestamp` option: `,"time":"2026-11-21T15:49:17.022Z"`, as pino's own isoTime writes it,
 * formatting the date only once per second (a Date and toISOString per line cost a tenth of the line).
 */
export function isoTime(now = Date.now()): string {
  const second = Math.floor(now / 1000)
  if (second !== isoSecond) {
    isoSecond = second
    isoPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`
  }
  const ms = now - second * 1000
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`
}

export function createLogger(level: string, destination: DestinationStream = stdoutDestination()): Logger {
  return pino(loggerOptions(level), destination)
}

/**
 * The line saying where the log has a gap: written by the destination itself, ahead of the first
 * lines kept after the gap (a logger call from inside the destination's write would re-enter it),
 * and formatted by a pino logger of its own, made on first use, so it reads like every other line.
 */
let noticeText = ''
let noticeLogger: Logger | undefined

function droppedNotice(count: number): string {
  noticeLogger ??= pino(loggerOptions('warn'), {
    write(line: string) {
      noticeText = line
    },
  })
  noticeLogger.warn({ dropped: count }, `log lines dropped: ${count} while the log reader was slow`)
  return noticeText
}

/**
 * Writes out buffered lines; call before exiting. With the stdout destination, waits at most
 * `FLUSH_WAIT_MS` for a stuck reader.
 */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()))
}
