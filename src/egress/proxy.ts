/**
 * @module
 * The egress listener's handler: the Bot API's own protocol (`/bot<credential>/<method>`,
 * `/file/bot<credential>/<file_path>`), where `<credential>` is a bot's local egress key. The
 * handler finds the bot by its credential and makes the call through {@link BotApiCalls} (the
 * method filter, pacing, the real token, the log line), then streams the answer back with the
 * token replaced by the credential.
 *
 * Bodies are never buffered: an upload of Telegram's 50 MB passes through chunk by chunk, as does
 * a 20 MB download. Answers keep Telegram's status; errors of botgate's own use Telegram's shape
 * `{"ok":false,"error_code":N,"description":"..."}`.
 */

import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { BotApiBot, BotApiCalls, CallAnswer, Delivered } from './calls.js'
import { scrubText, TokenScrubber } from './scrub.js'

/** One bot reachable through the egress listener: its Bot API calls, and its local credential. */
export interface EgressBot extends BotApiBot {
  readonly credential: string
}

/**
 * Calls whose body is at most this large, as JSON or a form, are read before they are sent: their
 * chat_id paces them per chat, and a 429 from Telegram can be retried with the same body. Larger
 * ones and multipart uploads stream through as they arrive: paced by the bot's budget only, and
 * their 429 goes back to the bot (which pauses the chat or bot for the later calls all the same).
 */
const READ_BODY_LIMIT = 1024 * 1024

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

/** Headers of the bot's call passed on to Telegram; nothing else (no cookies, no auth, no host). */
const PASSED_REQUEST_HEADERS = ['content-type', 'content-length', 'accept', 'range']
/** Headers of Telegram's answer passed back; the length may change when the token is replaced. */
const PASSED_ANSWER_HEADERS = ['content-type', 'content-encoding', 'cache-control', 'last-modified', 'etag']

function digest(credential: string): string {
  return createHash('sha256').update(credential).digest('hex')
}

function telegramError(response: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

/**
 * The egress listener of one config generation. Bots are looked up by the SHA-256 of the
 * credential: the lookup's time does not depend on how much of a guessed credential matches a
 * real one.
 */
export class EgressHandler {
  readonly #byDigest = new Map<string, EgressBot>()
  readonly #calls: BotApiCalls
  readonly #logger: Logger

  constructor(bots: readonly EgressBot[], calls: BotApiCalls, logger: Logger) {
    for (const bot of bots) this.#byDigest.set(digest(bot.credential), bot)
    this.#calls = calls
    this.#logger = logger
  }

  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    void this.#handle(request, response).catch((error: unknown) => {
      // The error's name and code only: a message could quote the URL, which holds the token.
      const { name, code } = error as NodeJS.ErrnoException
      this.#logger.warn({ error: name, code }, 'egress call failed')
      if (!response.headersSent)
        telegramError(response, 502, {
          ok: false,
          error_code: 502,
          description: 'Bad Gateway: botgate could not reach the Bot API',
        })
      else response.destroy()
    })
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now()
    const url = request.url ?? '/'
    const query = url.indexOf('?')
    const path = query < 0 ? url : url.slice(0, query)
    const search = query < 0 ? '' : url.slice(query)
    const match = /^\/(file\/)?bot([^/]+)\/(.+)$/.exec(path)
    const bot = match === null ? undefined : this.#byDigest.get(digest(decodeURIComponent(match[2] ?? '')))
    if (match === null || bot === undefined) {
      request.resume()
      const status = match === null ? 404 : 401
      const description = match === null ? 'Not Found' : 'Unauthorized'
      telegramError(response, status, { ok: false, error_code: status, description })
      this.#calls.log({ bot: undefined, method: undefined, via: 'egress' }, { status }, started)
      return
    }
    const isFile = match[1] !== undefined
    const rest = match[3] ?? ''
    if (request.method !== 'GET' && request.method !== 'POST') {
      request.resume()
      telegramError(response, 405, { ok: false, error_code: 405, description: 'Method Not Allowed' })
      this.#calls.log(
        { bot: bot.name, method: isFile ? 'file' : rest, via: 'egress' },
        { status: 405 },
        started,
      )
      return
    }
    const headers: Record<string, string> = {}
    for (const name of PASSED_REQUEST_HEADERS) {
      const value = request.headers[name]
      if (typeof value === 'string') headers[name] = value
    }
    const post = request.method === 'POST'
    const body = post && !isFile ? await readSmallBody(request) : undefined
    await this.#calls.run(
      bot,
      {
        via: 'egress',
        method: rest,
        kind: isFile ? 'file' : 'method',
        httpMethod: post ? 'POST' : 'GET',
        search,
        headers,
        body: body ?? (post ? request : undefined),
      },
      (answer) => this.#deliver(bot, request, response, answer),
    )
  }

  /** Streams the answer to the bot, with the token replaced by the credential. */
  async #deliver(
    bot: EgressBot,
    request: IncomingMessage,
    response: ServerResponse,
    answer: CallAnswer,
  ): Promise<Delivered> {
    if (answer.kind === 'own') {
      // A refused call's body was never read: drain it, so the connection stays usable.
      if (!request.readableEnded) request.resume()
      telegramError(response, answer.status, answer.body)
      return { status: answer.status, reason: answer.reason }
    }
    const { token, credential } = bot
    const telegram = answer.answer
    const out: Record<string, string> = {}
    for (const name of PASSED_ANSWER_HEADERS) {
      const value = telegram.headers[name]
      if (typeof value === 'string') out[name] = value
    }
    const location = telegram.headers.location
    if (typeof location === 'string') out.location = scrubText(location, token, credential)
    response.writeHead(telegram.statusCode, out)
    // A compressed answer cannot be scanned for the token; only identity bodies pass through.
    if (out['content-encoding'] !== undefined && out['content-encoding'] !== 'identity') {
      telegram.body.destroy()
      response.destroy()
      return { status: 502, reason: 'compressed_answer' }
    }
    if (answer.text !== undefined) response.end(scrubText(answer.text, token, credential))
    else await pipeline(telegram.body, new TokenScrubber(token, credential), response)
    // Telegram's error_code is its HTTP status; the body streamed past unread.
    return {
      status: telegram.statusCode,
      errorCode: telegram.statusCode >= 400 ? telegram.statusCode : undefined,
    }
  }
}
