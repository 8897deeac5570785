/**
 * @module
 * The egress listener's handler: the Bot API's own protocol (`/bot<credential>/<method>`,
 * `/file/bot<credential>/<file_path>`), where `<credential>` is a bot's local egress key. The
 * handler finds the bot by its credential, refuses methods its policy's `outbound` does not allow,
 * swaps the credential for the real token and streams the call to `egress.api_base` over a
 * keep-alive pool, then streams the answer back with the token replaced by the credential.
 *
 * Bodies are never buffered: an upload of Telegram's 50 MB passes through chunk by chunk, as does
 * a 20 MB download. Answers keep Telegram's status; errors of botgate's own use Telegram's shape
 * `{"ok":false,"error_code":N,"description":"..."}`.
 */

import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { type Dispatcher, Pool } from 'undici'
import { GUARDED_METHODS, type MethodFilter } from '../checks/outbound/index.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import { type Attempt, type ChatTarget, chatTarget, type Pacer } from './pacing/index.js'
import { scrubText, TokenScrubber } from './scrub.js'

/** One bot reachable through the egress. */
export interface EgressBot {
  readonly name: string
  readonly credential: string
  readonly token: string
  /** The policy's `outbound` method filter. */
  readonly allows: MethodFilter
}

export interface EgressSettings {
  readonly apiBase: URL
  readonly bots: readonly EgressBot[]
  /** Telegram's flood limits (egress.pacing); one pacer outlives the generations of the config. */
  readonly pacer: Pacer
}

/**
 * Calls whose body is at most this large, as JSON or a form, are read before they are sent: their
 * chat_id paces them per chat, and a 429 from Telegram can be retried with the same body. Larger
 * ones and multipart uploads stream through as they arrive: paced by the bot's budget only, and
 * their 429 goes back to the bot (which pauses the chat or bot for the later calls all the same).
 */
const READ_BODY_LIMIT = 1024 * 1024

/** Telegram's answer to one attempt: the streamed answer, or a 429's body, read for its retry_after. */
interface Sent {
  readonly answer: Dispatcher.ResponseData
  readonly text: string | undefined
}

/** A call's body read whole when it is small JSON or a form; undefined: it streams. */
async function readSmallBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const type = (request.headers['content-type'] ?? '').toLowerCase()
  const length = Number(request.headers['content-length'])
  const readable =
    (type.startsWith('application/json') || type.startsWith('application/x-www-form-urlencoded')) &&
    Number.isSafeInteger(length) &&
    length <= READ_BODY_LIMIT
  if (!readable) return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > READ_BODY_LIMIT) throw new Error('body larger than its content-length')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** The chat a call is addressed to, from its query, JSON or form `chat_id`. */
function chatOf(search: string, type: string | undefined, body: Buffer | undefined): ChatTarget {
  if (body === undefined || body.length === 0)
    return chatTarget(new URLSearchParams(search).get('chat_id') ?? undefined)
  if ((type ?? '').toLowerCase().startsWith('application/json')) {
    try {
      const value: unknown = JSON.parse(body.toString('utf8'))
      return typeof value === 'object' && value !== null
        ? chatTarget((value as Record<string, unknown>).chat_id)
        : undefined
    } catch {
      return undefined // Telegram answers it 400; nothing to pace by
    }
  }
  return chatTarget(new URLSearchParams(body.toString('utf8')).get('chat_id') ?? undefined)
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

/** Headers of the bot's call passed on to Telegram; nothing else (no cookies, no auth, no host). */
const PASSED_REQUEST_HEADERS = ['content-type', 'content-length', 'accept', 'range']
/** Headers of Telegram's answer passed back; the length may change when the token is replaced. */
const PASSED_ANSWER_HEADERS = ['content-type', 'content-encoding', 'cache-control', 'last-modified', 'etag']

/** Most time Telegram may take to answer a call's headers; file downloads stream after that. */
const HEADERS_TIMEOUT_MS = 60_000

function digest(credential: string): string {
  return createHash('sha256').update(credential).digest('hex')
}

/** Methods the egress counts by name; any other is `other`, so made-up names cannot grow /metrics. */
const GUARDED_NAMES = new Set(GUARDED_METHODS)

/** A method's metric label: its name when Telegram knew it (not a 404) or a guarded one, else other. */
function metricMethod(method: string | undefined, status: number): string {
  if (method === undefined || !/^[A-Za-z]{1,64}$/.test(method)) return 'other'
  if (status === 403) return GUARDED_NAMES.has(method) ? method : 'other'
  return status === 404 || status === 401 ? 'other' : method
}

function telegramError(response: ServerResponse, code: number, description: string): void {
  const body = JSON.stringify({ ok: false, error_code: code, description })
  response.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  response.end(body)
}

/**
 * The egress of one config generation. Bots are looked up by the SHA-256 of the credential: the
 * lookup's time does not depend on how much of a guessed credential matches a real one.
 */
export class Egress {
  readonly #byDigest = new Map<string, EgressBot>()
  readonly #pool: Pool
  readonly #basePath: string
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  readonly #pacer: Pacer

  constructor(settings: EgressSettings, logger: Logger, metrics: GatewayMetrics) {
    this.#metrics = metrics
    this.#pacer = settings.pacer
    for (const bot of settings.bots) this.#byDigest.set(digest(bot.credential), bot)
    this.#pool = new Pool(settings.apiBase.origin, {
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: HEADERS_TIMEOUT_MS,
      keepAliveTimeout: 30_000,
    })
    this.#basePath = settings.apiBase.pathname.replace(/\/+$/, '')
    this.#logger = logger
  }

  /** Closes the pool once its calls are done. */
  close(): Promise<void> {
    return this.#pool.close()
  }

  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    const started = performance.now()
    void this.#handle(request, response, started).catch((error: unknown) => {
      // The error's name and code only: a message of the HTTP client could quote the URL, which
      // holds the token.
      const { name, code } = error as NodeJS.ErrnoException
      this.#logger.warn({ error: name, code }, 'egress call failed')
      if (!response.headersSent)
        telegramError(response, 502, 'Bad Gateway: botgate could not reach the Bot API')
      else response.destroy()
    })
  }

  async #handle(request: IncomingMessage, response: ServerResponse, started: number): Promise<void> {
    const url = request.url ?? '/'
    const query = url.indexOf('?')
    const path = query < 0 ? url : url.slice(0, query)
    const search = query < 0 ? '' : url.slice(query)
    const match = /^\/(file\/)?bot([^/]+)\/(.+)$/.exec(path)
    const entry = match === null ? undefined : this.#byDigest.get(digest(decodeURIComponent(match[2] ?? '')))
    if (match === null || entry === undefined) {
      request.resume()
      telegramError(response, match === null ? 404 : 401, match === null ? 'Not Found' : 'Unauthorized')
      this.#log(undefined, undefined, match === null ? 404 : 401, started)
      return
    }
    const isFile = match[1] !== undefined
    const rest = match[3] ?? ''
    const method = isFile ? 'file' : rest
    if (!isFile && (rest.includes('/') || !entry.allows(rest))) {
      request.resume()
      telegramError(response, 403, 'Forbidden: method not allowed by botgate policy')
      this.#log(entry.name, method, 403, started, 'method_not_allowed')
      return
    }
    if (request.method !== 'GET' && request.method !== 'POST') {
      request.resume()
      telegramError(response, 405, 'Method Not Allowed')
      this.#log(entry.name, method, 405, started)
      return
    }
    const headers: Record<string, string> = {}
    for (const name of PASSED_REQUEST_HEADERS) {
      const value = request.headers[name]
      if (typeof value === 'string') headers[name] = value
    }
    // Answers must be scannable for the token: ask for them uncompressed.
    headers['accept-encoding'] = 'identity'
    const { token, credential } = entry
    const upstreamPath = `${this.#basePath}/${isFile ? 'file/' : ''}bot${token}/${rest}${search}`
    const body = request.method === 'POST' && !isFile ? await readSmallBody(request) : undefined
    const send = async (): Promise<Attempt<Sent>> => {
      const answer = await this.#pool.request({
        path: upstreamPath,
        method: request.method as 'GET' | 'POST',
        headers,
        body: body ?? (request.method === 'POST' ? request : null),
      })
      if (answer.statusCode === 401) this.#metrics.bot(entry.name).alerts.egressRejected++
      if (answer.statusCode !== 429) return { value: { answer, text: undefined } }
      this.#metrics.bot(entry.name).alerts.egressFlood++
      // Telegram's flood control: small; read for its retry_after, and kept for the bot if it stays.
      const text = await answer.body.text()
      const retryAfterS = retryAfterOf(text)
      return { value: { answer, text }, ...(retryAfterS === undefined ? {} : { retryAfterS }) }
    }
    let answer: Dispatcher.ResponseData
    let text: string | undefined
    let queuedMs: number | undefined
    if (isFile) ({ answer, text } = (await send()).value)
    else {
      const chat = chatOf(search, request.headers['content-type'], body)
      const paced = await this.#pacer.run(
        {
          bot: entry.name,
          method: rest,
          chat,
          retriable: body !== undefined || request.method === 'GET',
        },
        send,
      )
      if (paced.kind === 'refused') {
        const payload = JSON.stringify({
          ok: false,
          error_code: 429,
          description: `Too Many Requests: retry after ${paced.retryAfterS}`,
          parameters: { retry_after: paced.retryAfterS },
        })
        response.writeHead(429, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        })
        response.end(payload)
        this.#log(entry.name, method, 429, started, paced.why)
        return
      }
      ;({ answer, text } = paced.value)
      queuedMs = paced.queuedMs
    }
    const out: Record<string, string> = {}
    for (const name of PASSED_ANSWER_HEADERS) {
      const value = answer.headers[name]
      if (typeof value === 'string') out[name] = value
    }
    const location = answer.headers.location
    if (typeof location === 'string') out.location = scrubText(location, token, credential)
    response.writeHead(answer.statusCode, out)
    // A compressed answer cannot be scanned for the token; only identity bodies pass through.
    if (out['content-encoding'] !== undefined && out['content-encoding'] !== 'identity') {
      answer.body.destroy()
      response.destroy()
      this.#log(entry.name, method, 502, started, 'compressed_answer')
      return
    }
    if (text !== undefined) response.end(scrubText(text, token, credential))
    else await pipeline(answer.body, new TokenScrubber(token, credential), response)
    this.#log(entry.name, method, answer.statusCode, started, undefined, queuedMs)
  }

  #log(
    bot: string | undefined,
    method: string | undefined,
    status: number,
    started: number,
    reason?: string,
    queuedMs?: number,
  ): void {
    const fields = {
      bot,
      method,
      status,
      reason,
      ms: Math.round((performance.now() - started) * 10) / 10,
      queued_ms: queuedMs === undefined ? undefined : Math.round(queuedMs * 10) / 10,
    }
    this.#metrics.egressCalls.labels(bot ?? '', metricMethod(method, status), String(status)).inc()
    if (status === 401 || status === 403 || status >= 500) this.#logger.warn(fields, 'egress call')
    else this.#logger.info(fields, 'egress call')
  }
}
