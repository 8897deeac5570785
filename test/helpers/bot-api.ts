/**
 * A local HTTP server that speaks the Bot API protocol, standing in for api.telegram.org (which
 * this machine cannot reach): `GET` or `POST /bot<token>/<method>` with query, JSON,
 * form-urlencoded or multipart/form-data parameters, answering `{"ok":true,"result":...}` or
 * `{"ok":false,"error_code":N,"description":"..."}` like Telegram ("Making requests",
 * https://core.telegram.org/bots/api). It keeps each bot's webhook so setWebhook, getWebhookInfo
 * and deleteWebhook behave consistently, records every call, and can be told to fail the next
 * calls of a method (for example with a 429 carrying `parameters.retry_after`).
 */

import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedFile {
  readonly filename: string
  readonly type: string
  readonly content: Buffer
}

export interface ApiCall {
  readonly token: string
  readonly method: string
  readonly httpMethod: string
  /** The body's media type without parameters (`application/json`, `multipart/form-data`, ...), or ''. */
  readonly contentType: string
  /**
   * The parameters as sent: JSON values for a JSON body, strings for query, form and multipart
   * fields (where the Bot API expects arrays and objects JSON-serialized).
   */
  readonly params: Readonly<Record<string, unknown>>
  readonly files: Readonly<Record<string, RecordedFile>>
}

/** An answer to script: HTTP status and JSON body, or raw text (a proxy's error page). */
export interface ScriptedAnswer {
  readonly status: number
  readonly body: unknown
}

/** Flood control, as Telegram answers it (ResponseParameters.retry_after). */
export function tooManyRequests(retryAfter: number): ScriptedAnswer {
  return {
    status: 429,
    body: {
      ok: false,
      error_code: 429,
      description: `Too Many Requests: retry after ${retryAfter}`,
      parameters: { retry_after: retryAfter },
    },
  }
}

export function apiError(code: number, description: string): ScriptedAnswer {
  return { status: code, body: { ok: false, error_code: code, description } }
}

interface Parsed {
  readonly params: Record<string, unknown>
  readonly files: Record<string, RecordedFile>
  readonly contentType: string
}

interface Webhook {
  url: string
  has_custom_certificate: boolean
  pending_update_count: number
  ip_address?: string
  last_error_date?: number
  last_error_message?: string
  max_connections?: number
  allowed_updates?: string[]
  secret_token?: string
}

function emptyWebhook(): Webhook {
  return { url: '', has_custom_certificate: false, pending_update_count: 0 }
}

/** The methods this stand-in answers, by lower-cased name. */
const KNOWN_METHODS = new Map(
  ['setWebhook', 'getWebhookInfo', 'deleteWebhook', 'sendMessage', 'answerCallbackQuery', 'getMe'].map(
    (name) => [name.toLowerCase(), name],
  ),
)

/** Telegram's secret_token rule (setWebhook): 1-256 characters of A-Z a-z 0-9 _ -. */
const SECRET_TOKEN = /^[A-Za-z0-9_-]{1,256}$/

/** A form value that the Bot API reads as JSON (arrays, booleans, numbers), else the string. */
function jsonish(value: unknown): unknown {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

export class FakeBotApi {
  readonly calls: ApiCall[] = []
  /** Tokens this server knows; others get 401 Unauthorized, as Telegram answers a revoked token. */
  readonly tokens: Set<string>
  /** Each bot's webhook state, by token; tests may set `last_error_message` and the like. */
  readonly webhooks = new Map<string, Webhook>()
  /** The Bot API server refuses plain-http webhook URLs; a local server started with --local does not. */
  requireHttps = true
  readonly #script = new Map<string, ScriptedAnswer[]>()
  readonly #server: http.Server
  readonly #sockets = new Set<import('node:net').Socket>()
  #nextMessageId = 1
  #listeners: (() => void)[] = []

  private constructor(tokens: readonly string[]) {
    this.tokens = new Set(tokens)
    this.#server = http.createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        void this.#handle(request, Buffer.concat(chunks)).then(
          ({ status, body }) => {
            const text = typeof body === 'string' ? body : JSON.stringify(body)
            response.writeHead(status, {
              'content-type': typeof body === 'string' ? 'text/html' : 'application/json',
            })
            response.end(text)
          },
          () => {
            response.writeHead(500).end()
          },
        )
      })
    })
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start(tokens: readonly string[]): Promise<FakeBotApi> {
    const api = new FakeBotApi(tokens)
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', () => resolve()))
    return api
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  /** The next calls of `method` get these answers, in order, instead of the normal one. */
  failNext(method: string, ...answers: ScriptedAnswer[]): void {
    this.#script.set(method, [...(this.#script.get(method) ?? []), ...answers])
  }

  webhook(token: string): Webhook {
    let webhook = this.webhooks.get(token)
    if (webhook === undefined) {
      webhook = emptyWebhook()
      this.webhooks.set(token, webhook)
    }
    return webhook
  }

  /** Calls of one method, in order. */
  callsOf(method: string): ApiCall[] {
    return this.calls.filter((call) => call.method === method)
  }

  /** Waits until `count` calls of `method` were received (bounded). */
  async waitForCalls(method: string, count: number, timeoutMs = 15_000): Promise<ApiCall[]> {
    const deadline = Date.now() + timeoutMs
    while (this.callsOf(method).length < count) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${count} ${method} call(s); got ${this.callsOf(method).length}`,
        )
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200)
        this.#listeners.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.callsOf(method)
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async #parse(request: http.IncomingMessage, body: Buffer, url: URL): Promise<Parsed> {
    const params: Record<string, unknown> = Object.fromEntries(url.searchParams)
    const files: Record<string, RecordedFile> = {}
    const header = request.headers['content-type'] ?? ''
    const contentType = header.split(';')[0]?.trim().toLowerCase() ?? ''
    if (contentType === 'application/json' && body.length > 0) {
      Object.assign(params, JSON.parse(body.toString('utf8')) as Record<string, unknown>)
    } else if (contentType === 'application/x-www-form-urlencoded') {
      Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString('utf8'))))
    } else if (contentType === 'multipart/form-data') {
      const form = await new Response(body, { headers: { 'content-type': header } }).formData()
      for (const [name, value] of form.entries()) {
        if (typeof value === 'string') params[name] = value
        else
          files[name] = {
            filename: value.name,
            type: value.type,
            content: Buffer.from(await value.arrayBuffer()),
          }
      }
    }
    return { params, files, contentType }
  }

  async #handle(request: http.IncomingMessage, body: Buffer): Promise<ScriptedAnswer> {
    const url = new URL(request.url ?? '/', 'http://localhost')
    // As Telegram's server: the path percent-decoded, the method's case ignored
    // (tdlib/telegram-bot-api: HttpReader::parse_url, Query::Query). Calls are recorded by the
    // spec's spelling of their method.
    let pathname: string
    try {
      pathname = decodeURIComponent(url.pathname)
    } catch {
      return apiError(404, 'Not Found')
    }
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(pathname)
    if (match === null) return apiError(404, 'Not Found')
    const [, token = '', given = ''] = match
    const method = KNOWN_METHODS.get(given.toLowerCase()) ?? given
    let parsed: Parsed
    try {
      parsed = await this.#parse(request, body, url)
    } catch {
      return apiError(400, "Bad Request: can't parse request body")
    }
    this.calls.push({ token, method, httpMethod: request.method ?? '', ...parsed })
    for (const listener of this.#listeners.splice(0)) listener()
    if (!this.tokens.has(token)) return apiError(401, 'Unauthorized')
    const scripted = this.#script.get(method)?.shift()
    if (scripted !== undefined) return scripted
    return this.#answer(token, method, parsed.params, parsed.files)
  }

  #answer(
    token: string,
    method: string,
    params: Record<string, unknown>,
    files: Record<string, RecordedFile>,
  ): ScriptedAnswer {
    const ok = (result: unknown, description?: string) => ({
      status: 200,
      body: description === undefined ? { ok: true, result } : { ok: true, result, description },
    })
    switch (method) {
      case 'setWebhook': {
        const target = typeof params.url === 'string' ? params.url : undefined
        if (target === undefined) return apiError(400, 'Bad Request: url is required')
        if (target === '') {
          this.webhooks.set(token, emptyWebhook())
          return ok(true, 'Webhook was deleted')
        }
        if (this.requireHttps && !target.startsWith('https://'))
          return apiError(400, 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook')
        const secret = params.secret_token
        if (secret !== undefined && (typeof secret !== 'string' || !SECRET_TOKEN.test(secret)))
          return apiError(400, 'Bad Request: secret token contains unallowed characters')
        const maxConnections = jsonish(params.max_connections)
        if (
          maxConnections !== undefined &&
          (typeof maxConnections !== 'number' || maxConnections < 1 || maxConnections > 100)
        )
          return apiError(400, 'Bad Request: bad webhook: max_connections must be between 1 and 100')
        const previous = this.webhook(token)
        const allowed = jsonish(params.allowed_updates)
        const webhook: Webhook = {
          url: target,
          has_custom_certificate: files.certificate !== undefined,
          pending_update_count:
            jsonish(params.drop_pending_updates) === true ? 0 : previous.pending_update_count,
          max_connections: typeof maxConnections === 'number' ? maxConnections : 40,
        }
        if (typeof params.ip_address === 'string') webhook.ip_address = params.ip_address
        // "If not specified, the previous setting will be used" (setWebhook, allowed_updates).
        if (Array.isArray(allowed)) {
          if (allowed.length > 0) webhook.allowed_updates = allowed as string[]
        } else if (previous.allowed_updates !== undefined) webhook.allowed_updates = previous.allowed_updates
        if (typeof secret === 'string') webhook.secret_token = secret
        this.webhooks.set(token, webhook)
        return ok(true, 'Webhook was set')
      }
      case 'getWebhookInfo': {
        const { secret_token: _secret, ...info } = this.webhook(token)
        return ok(info)
      }
      case 'deleteWebhook': {
        const previous = this.webhook(token)
        const drop = jsonish(params.drop_pending_updates) === true
        this.webhooks.set(token, {
          ...emptyWebhook(),
          pending_update_count: drop ? 0 : previous.pending_update_count,
        })
        return ok(true, previous.url === '' ? 'Webhook is already deleted' : 'Webhook was deleted')
      }
      case 'sendMessage': {
        const chatId = jsonish(params.chat_id)
        const text = params.text
        if (chatId === undefined || chatId === '') return apiError(400, 'Bad Request: chat_id is empty')
        if (typeof text !== 'string' || text === '')
          return apiError(400, 'Bad Request: message text is empty')
        if (text.length > 4096) return apiError(400, 'Bad Request: message is too long')
        return ok({
          message_id: this.#nextMessageId++,
          date: Math.floor(Date.now() / 1000),
          chat: { id: chatId, type: 'supergroup' },
          text,
        })
      }
      case 'answerCallbackQuery':
        if (typeof params.callback_query_id !== 'string' || params.callback_query_id === '')
          return apiError(
            400,
            'Bad Request: query is too old and response timeout expired or query ID is invalid',
          )
        return ok(true)
      case 'getMe':
        return ok({ id: Number(token.split(':')[0]), is_bot: true, first_name: 'Test', username: 'test_bot' })
      default:
        return apiError(404, 'Not Found')
    }
  }
}
