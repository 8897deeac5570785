/**
 * @module
 * The client for one bot's upstream: an undici connection pool with keep-alive, one deadline per
 * forward, and the upstream's answer read into memory up to 1 MiB (a webhook reply is a single Bot
 * API call; nothing legitimate comes near that).
 *
 * The pools are shared: one per upstream origin (and connect timeout), for every bot that forwards
 * there, kept across reloads ({@link UpstreamPools}). A pool per bot cost 18.6 KB of heap per bot
 * before it opened a connection (186 MB for 10,000 bots, most of a gateway's memory) and a
 * reload built them all again. A shared pool has no connection cap of its own: each bot's
 * `max_inflight` bounds what it sends (checked before the forward, SPEC section 3), so a busy bot
 * cannot queue another's forwards behind its own.
 *
 * Requests go through undici's low-level `dispatch` with a handler object: no stream, no WHATWG
 * Request/Response and no promise per chunk. Measured with callgrind on this path, a forward this
 * way costs fewer instructions than node:http's `request` with a keep-alive Agent, and far fewer
 * than the global fetch().
 */

import { type Dispatcher, Pool } from 'undici'
import type { UpstreamConfig } from '../config/load.js'

/** The largest upstream answer passed back to Telegram. */
export const MAX_REPLY_BYTES = 1024 * 1024

export type UpstreamResult =
  /** The upstream answered; a 2xx answer's body is kept (at most MAX_REPLY_BYTES), others' not. */
  | {
      readonly kind: 'answer'
      readonly status: number
      readonly contentType: string | undefined
      readonly retryAfter: string | undefined
      readonly body: Buffer
    }
  /** The upstream answered 2xx with a body over MAX_REPLY_BYTES; it was not read to the end. */
  | { readonly kind: 'too_large'; readonly status: number }
  /** No connection, or it broke before a complete answer: refused, reset, DNS failure. */
  | { readonly kind: 'unreachable'; readonly code: string }
  /** No complete answer within the timeout. */
  | { readonly kind: 'timeout' }

/** What the gateway adds to each forward. Only these headers reach the upstream (SPEC section 3). */
export interface ForwardHeaders {
  readonly forwardedFor: string
  readonly forwardedProto: string
  readonly requestId: string
  /** Extra header name/value pairs added by forward features (a signature). */
  readonly extra?: readonly string[]
}

const EMPTY = Buffer.alloc(0)
const TIMEOUT: UpstreamResult = { kind: 'timeout' }
/** The pool was destroyed under a forward: only {@link Upstream.destroy}, at shutdown past its grace, does that. */
const CUT_AT_SHUTDOWN: UpstreamResult = {
  kind: 'unreachable',
  code: 'cut off at shutdown (shutdown_grace passed)',
}
const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** Most time a new connection to an upstream may take, below the forward's own timeout. */
const MAX_CONNECT_TIMEOUT_MS = 10_000

/**
 * The connection pools of all upstreams, by origin and connect timeout. They outlive config
 * generations: a reload that keeps an upstream keeps its warm connections.
 */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>()

  /** The pool for `url`'s origin with this connect timeout, created on first use. */
  get(url: URL, connectTimeoutMs: number): { readonly key: string; readonly pool: Pool } {
    const key = `${connectTimeoutMs} ${url.origin}`
    let pool = this.#pools.get(key)
    if (pool === undefined) {
      pool = new Pool(url.origin, {
        // No cap: each bot's max_inflight bounds its forwards (see the module comment).
        connections: null,
        pipelining: 1,
        // Off: the one deadline per forward in send() covers the whole exchange. undici's per-phase
        // timers would only repeat it, at the cost of a timer object per forward that its 500 ms
        // timer wheel keeps alive long enough to be copied out of the young generation.
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: { timeout: connectTimeoutMs },
      })
      this.#pools.set(key, pool)
    }
    return { key, pool }
  }

  get size(): number {
    return this.#pools.size
  }

  /**
   * Closes, once their forwards in flight have completed, the pools whose key is not in `used`
   * (the upstreams of the generations still serving). Called when a reload's old generation has
   * drained.
   */
  release(used: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (used.has(key)) continue
      this.#pools.delete(key)
      void pool.close()
    }
  }

  /** Closes every pool now, failing the forwards in flight (shutdown past its grace). */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((pool) => pool.destroy()))
  }
}

export class Upstream {
  readonly url: URL
  /** The key of the shared pool this upstream's forwards go through. */
  readonly poolKey: string
  readonly #pool: Pool
  readonly #path: string
  readonly #timeoutMs: number
  /** Header name/value pairs sent with every forward. */
  readonly #headers: readonly string[]

  constructor(config: UpstreamConfig, pools: UpstreamPools) {
    this.url = config.url
    this.#timeoutMs = config.timeoutMs
    this.#path = `${config.url.pathname}${config.url.search}`
    const { key, pool } = pools.get(config.url, Math.min(config.timeoutMs, MAX_CONNECT_TIMEOUT_MS))
    this.poolKey = key
    this.#pool = pool
    const headers = ['content-type', 'application/json']
    if (config.secretToken !== undefined) headers.push('x-telegram-bot-api-secret-token', config.secretToken)
    if (config.url.username !== '') {
      const credentials = `${decodeURIComponent(config.url.username)}:${decodeURIComponent(config.url.password)}`
      headers.push('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`)
    }
    this.#headers = headers
  }

  /**
   * Posts `body` unchanged. Never rejects: every failure is an {@link UpstreamResult}. `cut`, when
   * given, ends the forward early as a timeout (queued delivery: the shard's lease ran out, so
   * another replica may deliver the chat's updates now and this send must not go on meanwhile).
   */
  send(body: Buffer, forward: ForwardHeaders, cut?: AbortSignal): Promise<UpstreamResult> {
    const headers = [
      ...this.#headers,
      'x-forwarded-for',
      forward.forwardedFor,
      'x-forwarded-proto',
      forward.forwardedProto,
      'x-request-id',
      forward.requestId,
    ]
    if (forward.extra !== undefined) headers.push(...forward.extra)
    return new Promise((resolve) => {
      const handler = new AnswerHandler(resolve)
      handler.deadline = setTimeout(() => handler.expire(), this.#timeoutMs)
      if (cut !== undefined) handler.cutBy(cut)
      this.#pool.dispatch({ path: this.#path, method: 'POST', headers, body }, handler)
    })
  }
}

/** Collects one answer; settles exactly once, whichever of answer, error and deadline comes first. */
class AnswerHandler implements Dispatcher.DispatchHandler {
  deadline: NodeJS.Timeout | undefined
  #resolve: ((result: UpstreamResult) => void) | undefined
  #controller: Dispatcher.DispatchController | undefined
  #status = 0
  #contentType: string | undefined
  #retryAfter: string | undefined
  #keep = false
  #chunks: Buffer[] = []
  #size = 0
  /** Only queued deliveries give a signal: direct forwards allocate no listener. */
  #cut: { readonly signal: AbortSignal; readonly listener: () => void } | undefined

  constructor(resolve: (result: UpstreamResult) => void) {
    this.#resolve = resolve
  }

  /** `signal` ends the forward as its deadline would; the listener goes once the forward settles. */
  cutBy(signal: AbortSignal): void {
    if (signal.aborted) {
      this.expire()
      return
    }
    const listener = () => this.expire()
    this.#cut = { signal, listener }
    signal.addEventListener('abort', listener, { once: true })
  }

  #settle(result: UpstreamResult): void {
    const resolve = this.#resolve
    if (resolve === undefined) return
    this.#resolve = undefined
    clearTimeout(this.deadline)
    this.#cut?.signal.removeEventListener('abort', this.#cut.listener)
    resolve(result)
  }

  expire(): void {
    this.#settle(TIMEOUT)
    this.#controller?.abort(new Error('upstream timeout'))
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#resolve === undefined) controller.abort(new Error('upstream timeout'))
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (status < 200) return // 1xx informational: the real answer follows
    this.#status = status
    this.#contentType = first(headers['content-type'])
    this.#retryAfter = first(headers['retry-after'])
    // Only a 2xx answer's body is a webhook reply worth passing on.
    this.#keep = status < 300
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#keep) return
    this.#size += chunk.length
    if (this.#size > MAX_REPLY_BYTES) {
      this.#settle({ kind: 'too_large', status: this.#status })
      controller.abort(new Error('upstream reply too large'))
      return
    }
    this.#chunks.push(chunk)
  }

  onResponseEnd(): void {
    const chunks = this.#chunks
    this.#settle({
      kind: 'answer',
      status: this.#status,
      contentType: this.#contentType,
      retryAfter: this.#retryAfter,
      body:
        chunks.length === 0
          ? EMPTY
          : chunks.length === 1
            ? (chunks[0] as Buffer)
            : Buffer.concat(chunks, this.#size),
    })
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR'
    if (UNDICI_TIMEOUTS.has(code)) this.#settle(TIMEOUT)
    else if (code === 'UND_ERR_DESTROYED') this.#settle(CUT_AT_SHUTDOWN)
    else this.#settle({ kind: 'unreachable', code })
  }
}
