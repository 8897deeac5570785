/**
 * @module
 * One Bot API call made with a bot's real token, whoever asked for it: the egress listener (a bot
 * calling `/bot<credential>/<method>`, ./proxy.ts) or the reply executor (a bot's webhook answer
 * executed by botgate, ./reply.ts). Both go through {@link BotApiCalls.run}: the method filter of
 * the policy's `outbound` (narrowed by `replies.allow_methods` for replies), pacing to Telegram's
 * flood limits with transparent retries of its 429, the keep-alive pool to `api_base`, and one
 * `egress call` log line and one count per call, marked `via: egress` or `via: reply`.
 *
 * The caller hands over how to deliver the answer (stream it to the bot, or read it); the log
 * line is written once that is done, with the status the caller saw through.
 */

import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import { type Dispatcher, Pool } from 'undici'
import type { ChatLimits, ChatVerdict } from '../checks/outbound/chats.js'
import type { MethodFilter } from '../checks/outbound/index.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import { StoreError } from '../store/index.js'
import { canonicalMethod, METHOD_NAME, methodForLog, methodLabel } from '../telegram/methods.js'
import type { Attempt, ChatTarget, Pacer } from './pacing/index.js'
import { type PreparedCall, prepareCall, TOO_LARGE } from './prepare.js'

/** One bot that may call the Bot API through botgate. */
export interface BotApiBot {
  readonly name: string
  readonly token: string
  /** The policy's `outbound` method filter: calls through the egress listener. */
  readonly allows: MethodFilter
  /** The same narrowed by `replies.allow_methods`: calls of the bot's webhook answers. */
  readonly replyAllows: MethodFilter
  /** The policy's `outbound.chats`: the chats its calls may name; undefined: any. */
  readonly chats: ChatLimits | undefined
}

/** Who asked for a call: the bot through the egress listener, or its webhook answer. */
export type Via = 'egress' | 'reply'

export interface BotApiCall {
  readonly via: Via
  /** The Bot API method; for a download, its file path (`kind: 'file'`). */
  readonly method: string
  readonly kind: 'method' | 'file'
  readonly httpMethod: 'GET' | 'POST'
  /** The query string with its `?`, or ''. */
  readonly search: string
  /** The request headers Telegram gets (content type and length, accept, range). */
  readonly headers: Readonly<Record<string, string>>
  /** The body: read whole (it can be paced by its chat and sent again), streamed, or none. */
  readonly body: Buffer | Readable | undefined
}

/** Telegram's error shape, for answers of botgate's own. */
export interface TelegramError {
  readonly ok: false
  readonly error_code: number
  readonly description: string
  readonly parameters?: { readonly retry_after: number }
}

/** What a call came to: an answer of botgate's own (refused, unreachable) or Telegram's. */
export type CallAnswer =
  | { readonly kind: 'own'; readonly status: number; readonly body: TelegramError; readonly reason: string }
  | {
      readonly kind: 'telegram'
      readonly answer: Dispatcher.ResponseData
      /** The body when it had to be read already (a 429, read for its retry_after). */
      readonly text: string | undefined
      readonly queuedMs: number | undefined
    }

/** What the caller made of the answer, for the log line and the count. */
export interface Delivered {
  readonly status: number
  readonly reason?: string | undefined
  /** Telegram's `error_code`, when the caller read it. */
  readonly errorCode?: number | undefined
}

/** Telegram's answer to one attempt: the streamed answer, or a 429's body, read for its retry_after. */
interface Sent {
  readonly answer: Dispatcher.ResponseData
  readonly text: string | undefined
}

/** The method of a download (`/file/bot<token>/<path>`) in the log line and the metric. */
const FILE = 'file'

const TOO_LARGE_TEXT =
  'Request Entity Too Large: the upload is larger than botgate allows (egress.max_upload)'

/** botgate's own answer in Telegram's error shape. */
export function ownAnswer(
  status: number,
  description: string,
  reason: string,
  retryAfterS?: number,
): CallAnswer & { kind: 'own' } {
  const body: TelegramError =
    retryAfterS === undefined
      ? { ok: false, error_code: status, description }
      : { ok: false, error_code: status, description, parameters: { retry_after: retryAfterS } }
  return { kind: 'own', status, body, reason }
}

/** `parameters.retry_after` of a 429 body, when it has one. */
function retryAfterOf(text: string): number | undefined {
  try {
    const after = (JSON.parse(text) as { parameters?: { retry_after?: unknown } }).parameters?.retry_after
    return typeof after === 'number' && after > 0 ? after : undefined
  } catch {
    return undefined
  }
}

export interface BotApiSettings {
  readonly apiBase: URL
  /** Telegram's flood limits (egress.pacing); one pacer outlives the generations of the config. */
  readonly pacer: Pacer
  /** `egress.max_upload`: most bytes of a streamed body. */
  readonly maxUploadBytes: number
  /** `egress.timeout`: for Telegram's answer headers, and between parts of its body. */
  readonly timeoutMs: number
}

/**
 * The Bot API calls of one config generation: its pool to `api_base`. A reload makes a new one
 * and closes the old one once its calls are done.
 */
export class BotApiCalls {
  readonly #pool: Pool
  readonly #basePath: string
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  readonly #pacer: Pacer
  readonly #maxUpload: number

  constructor(settings: BotApiSettings, logger: Logger, metrics: GatewayMetrics) {
    this.#pacer = settings.pacer
    this.#maxUpload = settings.maxUploadBytes
    this.#pool = new Pool(settings.apiBase.origin, {
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 30_000,
    })
    this.#basePath = settings.apiBase.pathname.replace(/\/+$/, '')
    this.#logger = logger
    this.#metrics = metrics
  }

  /** Closes the pool once its calls are done. */
  close(): Promise<void> {
    return this.#pool.close()
  }

  /**
   * Makes `call` for `bot` and hands the answer to `deliver`; logs and counts it once delivered.
   * Rejects only when `deliver` does (the bot went away while its answer streamed).
   */
  async run(
    bot: BotApiBot,
    call: BotApiCall,
    deliver: (answer: CallAnswer) => Promise<Delivered>,
  ): Promise<void> {
    const started = performance.now()
    // Telegram lower-cases the method (./../telegram/methods.ts): the filter, pacing, Telegram
    // and the log line all get the spec's spelling, so no spelling is treated as another method.
    const canonical = call.kind === 'method' ? canonicalMethod(call.method) : undefined
    const named = canonical === undefined ? call : { ...call, method: canonical }
    const { answer, chat } = await this.#answer(bot, named)
    const delivered = await deliver(answer)
    const queuedMs = answer.kind === 'telegram' ? answer.queuedMs : undefined
    this.log(
      { bot: bot.name, method: call.kind === 'file' ? FILE : named.method, via: call.via },
      delivered,
      started,
      queuedMs,
      chat,
    )
  }

  async #answer(bot: BotApiBot, call: BotApiCall): Promise<{ answer: CallAnswer; chat: ChatTarget }> {
    if (call.kind === 'method') {
      const allows = call.via === 'reply' ? bot.replyAllows : bot.allows
      // Only plain names: Telegram percent-decodes the path, so `deleteWebhoo%6B` is deleteWebhook.
      if (!METHOD_NAME.test(call.method) || !allows(call.method)) {
        const reason = call.via === 'reply' ? 'reply_method_not_allowed' : 'method_not_allowed'
        return {
          answer: ownAnswer(403, 'Forbidden: method not allowed by botgate policy', reason),
          chat: undefined,
        }
      }
    }
    const limited = call.kind === 'method' ? (bot.chats?.argumentsOf(call.method) ?? []) : []
    const prepared =
      call.kind === 'file' ? undefined : await prepareCall(call, { limited, maxUpload: this.#maxUpload })
    if (prepared === TOO_LARGE)
      return { answer: ownAnswer(413, TOO_LARGE_TEXT, 'upload_too_large'), chat: undefined }
    const chat = prepared?.chat
    if (prepared !== undefined && bot.chats !== undefined) {
      const refused = await this.#checkChats(bot.chats, call.method, prepared)
      if (refused !== undefined) {
        prepared.guard?.discard()
        return { answer: refused, chat }
      }
    }
    const answer = await this.#send(bot, call, prepared)
    // Refused or failed: the rest of a streamed body is read and dropped, so the bot can finish
    // sending it and read the answer.
    if (answer.kind === 'own') prepared?.guard?.discard()
    return { answer, chat }
  }

  /** `outbound.chats` on the call's chats: undefined when they may be addressed, else the refusal. */
  async #checkChats(
    limits: ChatLimits,
    method: string,
    prepared: PreparedCall,
  ): Promise<CallAnswer | undefined> {
    let verdict: ChatVerdict
    try {
      verdict = await limits.check(method, prepared.chats)
    } catch (error) {
      if (!(error instanceof StoreError)) throw error
      return ownAnswer(503, 'Service Unavailable: botgate cannot check the chat now', 'store_unavailable', 1)
    }
    if (verdict === 'chat_not_allowed')
      return ownAnswer(403, 'Forbidden: chat not allowed by botgate policy', verdict)
    if (verdict === 'chat_unreadable')
      return ownAnswer(
        403,
        'Forbidden: botgate could not read the chat of this call: send chat_id before any file',
        verdict,
      )
    return undefined
  }

  /** Sends the call, paced unless it is a download; botgate's own answer when it cannot. */
  async #send(bot: BotApiBot, call: BotApiCall, prepared: PreparedCall | undefined): Promise<CallAnswer> {
    const path = `${this.#basePath}/${call.kind === 'file' ? 'file/' : ''}bot${bot.token}/${call.method}${call.search}`
    const headers = { ...(prepared?.headers ?? call.headers), 'accept-encoding': 'identity' }
    const body = prepared === undefined ? call.body : prepared.body
    const send = async (): Promise<Attempt<Sent>> => {
      const answer = await this.#pool.request({ path, method: call.httpMethod, headers, body: body ?? null })
      if (answer.statusCode === 401) this.#metrics.bot(bot.name).alerts.egressRejected++
      if (answer.statusCode !== 429) return { value: { answer, text: undefined } }
      this.#metrics.bot(bot.name).alerts.egressFlood++
      // Telegram's flood control: small; read for its retry_after, and kept for the bot if it stays.
      const text = await answer.body.text()
      const retryAfterS = retryAfterOf(text)
      return { value: { answer, text }, ...(retryAfterS === undefined ? {} : { retryAfterS }) }
    }
    try {
      if (prepared === undefined) {
        const { answer, text } = (await send()).value
        return { kind: 'telegram', answer, text, queuedMs: undefined }
      }
      const paced = await this.#pacer.run(
        {
          bot: bot.name,
          method: call.method,
          chat: prepared.chat,
          retriable: body === undefined || body instanceof Buffer,
        },
        send,
      )
      if (paced.kind === 'refused')
        return ownAnswer(
          429,
          `Too Many Requests: retry after ${paced.retryAfterS}`,
          paced.why,
          paced.retryAfterS,
        )
      return { kind: 'telegram', ...paced.value, queuedMs: paced.queuedMs }
    } catch (error) {
      const stopped = prepared?.guard?.stopped
      if (stopped === 'upload_too_large') return ownAnswer(413, TOO_LARGE_TEXT, stopped)
      if (stopped === 'chat_unreadable')
        return ownAnswer(
          403,
          'Forbidden: botgate could not read the chat of this call: a chat_id came after a file',
          stopped,
        )
      // The error's name and code only: a message of the HTTP client could quote the URL, which
      // holds the token.
      const { name, code } = error as NodeJS.ErrnoException
      this.#logger.warn({ bot: bot.name, via: call.via, error: name, code }, 'egress call failed')
      if (code === 'UND_ERR_HEADERS_TIMEOUT')
        return ownAnswer(504, 'Gateway Timeout: the Bot API did not answer in time', 'bot_api_timeout')
      return ownAnswer(502, 'Bad Gateway: botgate could not reach the Bot API', 'bot_api_unreachable')
    }
  }

  /** The `egress call` line and `botgate_egress_calls_total`; also for calls that named no bot. */
  log(
    call: { readonly bot: string | undefined; readonly method: string | undefined; readonly via: Via },
    delivered: Delivered,
    started: number,
    queuedMs?: number,
    chat?: ChatTarget,
  ): void {
    const { status, reason, errorCode } = delivered
    const method = call.method === FILE ? FILE : methodForLog(call.method)
    const fields = {
      bot: call.bot,
      via: call.via,
      method,
      chat_id: chat?.id,
      status,
      error_code: errorCode,
      reason,
      ms: Math.round((performance.now() - started) * 10) / 10,
      queued_ms: queuedMs === undefined ? undefined : Math.round(queuedMs * 10) / 10,
    }
    this.#metrics.egressCalls
      .labels(
        call.bot ?? '',
        method === FILE ? FILE : methodLabel(method),
        String(status),
        call.via,
        reason ?? '',
      )
      .inc()
    if (status === 401 || status === 403 || status >= 500) this.#logger.warn(fields, 'egress call')
    else this.#logger.info(fields, 'egress call')
  }
}
