/**
 * @module
 * A small Bot API client for what botgate itself calls: setWebhook, getWebhookInfo and
 * deleteWebhook (the CLI) and sendMessage (alerts). Telegram's own servers are one endpoint among
 * others: the base URL is configurable for a local Bot API server (github.com/tdlib/telegram-bot-api)
 * or a test double.
 *
 * The bot token is part of every request URL (`<base>/bot<token>/<method>`, "Making requests" in
 * https://core.telegram.org/bots/api), so no URL built here is ever logged, thrown or returned:
 * failures are reported as Telegram's `error_code` and `description`, or as a network error code.
 */

/** Telegram's public Bot API endpoint. */
export const DEFAULT_API_BASE = 'https://api.telegram.org'

/** A file to upload as one multipart/form-data part (InputFile, "Sending files" in the Bot API docs). */
export interface UploadFile {
  readonly filename: string
  readonly content: Buffer
  readonly type?: string
}

export type ApiResult<T> =
  /** Telegram answered `{"ok": true, "result": ...}`. */
  | { readonly kind: 'ok'; readonly result: T; readonly description: string | undefined }
  /**
   * Telegram answered `{"ok": false, "error_code", "description", "parameters"}` (ResponseParameters:
   * `retry_after` on flood control), or the server answered with something that is not a Bot API
   * answer (a proxy's error page): then `errorCode` is the HTTP status.
   */
  | {
      readonly kind: 'error'
      readonly errorCode: number
      readonly description: string
      readonly retryAfter: number | undefined
    }
  /** No answer: connection refused or reset, DNS failure, TLS failure, or the timeout passed. */
  | { readonly kind: 'network'; readonly code: string }

export interface BotApiOptions {
  /** Default: https://api.telegram.org. */
  readonly apiBase?: string
  /** Milliseconds per call before giving up. Default: 10 s. */
  readonly timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 10_000

/** The error code of a failed fetch: undici puts the system error (ECONNREFUSED, ...) in `cause`. */
function networkCode(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'timeout'
  const cause = (error as { cause?: { code?: unknown; name?: unknown } } | undefined)?.cause
  if (typeof cause?.code === 'string') return cause.code
  if (typeof cause?.name === 'string' && cause.name !== 'Error') return cause.name
  return 'network_error'
}

/** Bot API parameters in a form field: strings as they are, everything else JSON-serialized. */
function formValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** `https://host/base/` -> `https://host/base`, so the method path joins with one slash. */
export function normaliseApiBase(base: string): string {
  return base.replace(/\/+$/, '')
}

/** An API base URL for messages: credentials in it (a proxy's user:password) are masked. */
export function displayApiBase(base: string): string {
  try {
    const url = new URL(base)
    if (url.password !== '') url.password = '****'
    return normaliseApiBase(url.href)
  } catch {
    return 'the configured API base'
  }
}

export class BotApi {
  readonly #token: string
  readonly #base: string
  readonly #timeoutMs: number

  constructor(token: string, options: BotApiOptions = {}) {
    this.#token = token
    this.#base = normaliseApiBase(options.apiBase ?? DEFAULT_API_BASE)
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /**
   * Calls `method` with `params` (undefined values are left out). Without files the body is JSON;
   * with files it is multipart/form-data, every other parameter a form field (arrays and objects
   * JSON-serialized, as the Bot API expects them in forms).
   */
  async call<T>(
    method: string,
    params: Readonly<Record<string, unknown>> = {},
    files: Readonly<Record<string, UploadFile>> = {},
    signal?: AbortSignal,
  ): Promise<ApiResult<T>> {
    const defined = Object.entries(params).filter(([, value]) => value !== undefined)
    let body: string | FormData
    const headers: Record<string, string> = {}
    if (Object.keys(files).length === 0) {
      body = JSON.stringify(Object.fromEntries(defined))
      headers['content-type'] = 'application/json'
    } else {
      const form = new FormData()
      for (const [name, value] of defined) form.append(name, formValue(value))
      for (const [name, file] of Object.entries(files)) {
        const blob = new Blob([file.content], { type: file.type ?? 'application/octet-stream' })
        form.append(name, blob, file.filename)
      }
      body = form
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    let response: Response
    let text: string
    try {
      response = await fetch(`${this.#base}/bot${this.#token}/${method}`, {
        method: 'POST',
        headers,
        body,
        signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      })
      text = await response.text()
    } catch (error) {
      return { kind: 'network', code: networkCode(error) }
    }
    return parseAnswer<T>(response.status, text)
  }
}

/** Reads a Bot API answer; anything else becomes an error named by its HTTP status. */
export function parseAnswer<T>(status: number, text: string): ApiResult<T> {
  let answer: Record<string, unknown> | undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      answer = parsed as Record<string, unknown>
  } catch {
    answer = undefined
  }
  const description = typeof answer?.description === 'string' ? answer.description : undefined
  if (answer?.ok === true) return { kind: 'ok', result: answer.result as T, description }
  if (answer?.ok === false) {
    const parameters = answer.parameters as { retry_after?: unknown } | undefined
    const retryAfter = parameters?.retry_after
    return {
      kind: 'error',
      errorCode: typeof answer.error_code === 'number' ? answer.error_code : status,
      description: description ?? `HTTP ${status}`,
      retryAfter: typeof retryAfter === 'number' && retryAfter >= 0 ? retryAfter : undefined,
    }
  }
  return {
    kind: 'error',
    errorCode: status,
    description: `HTTP ${status} without a Bot API answer (is the API base right?)`,
    retryAfter: undefined,
  }
}

/** "Telegram said: Bad Request: chat not found (error 400)" and the like, for people. */
export function describeFailure(
  result: Exclude<ApiResult<unknown>, { kind: 'ok' }>,
  apiBase: string,
): string {
  if (result.kind === 'network')
    return `cannot reach the Bot API at ${displayApiBase(apiBase)}: ${result.code}`
  const wait = result.retryAfter === undefined ? '' : `; retry after ${result.retryAfter} s`
  return `${result.description} (error ${result.errorCode}${wait})`
}

/** WebhookInfo (https://core.telegram.org/bots/api#webhookinfo), the fields botgate reads. */
export interface WebhookInfo {
  readonly url: string
  readonly has_custom_certificate: boolean
  readonly pending_update_count: number
  readonly ip_address?: string
  readonly last_error_date?: number
  readonly last_error_message?: string
  readonly last_synchronization_error_date?: number
  readonly max_connections?: number
  readonly allowed_updates?: readonly string[]
}
