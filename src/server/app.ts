/**
 * @module
 * The webhook listener: check 1 (one route per bot, exact path; 404 elsewhere, 405 for other
 * methods), then the bot's pipeline, then the answer written to the response with its
 * `X-Request-Id`; and the answers to client errors (too slow, not HTTP), given the same way.
 *
 * A plain node:http request listener. The pipeline reads Node's IncomingMessage itself (to stop
 * reading at `max_body`, and to forward the exact bytes), and check 1 is one Map lookup of the
 * exact path, so a web framework has nothing left to do here: through hono's node adapter the same
 * requests cost 9% more instructions (callgrind, benchmark update), for a URL, a Request, a
 * Context and a Response built per request and not used. The admin listener, with its many
 * routes, authentication and JSON bodies, is a hono app (../observe/admin.ts).
 */

import { randomUUID } from 'node:crypto'
import { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Bans } from '../checks/bans/index.js'
import { settleDedupe } from '../checks/dedupe/index.js'
import type { Logger } from '../observe/logger.js'
import { type BotMetrics, NO_BOT } from '../observe/metrics.js'
import type { RequestLog } from '../observe/record.js'
import { type Answer, failure } from '../pipeline/answer.js'
import { Exchange } from '../pipeline/exchange.js'
import { handle } from '../pipeline/handle.js'
import type { BotPipeline } from '../policy/compile.js'
import { BODY_TIMED_OUT, hasUnreadBody, interruptBody, unreadableBody } from '../request/body.js'
import type { ClientIpResolver } from '../request/client-ip.js'
import { closeAfterAnswer, endAndLinger } from './linger.js'

export interface AppDeps {
  readonly bots: readonly BotPipeline[]
  readonly resolver: ClientIpResolver
  readonly logger: Logger
  /** Each request's log line and metrics. */
  readonly requests: RequestLog
  /** Metrics of requests that matched no bot. */
  readonly unrouted: BotMetrics
  /** Called when a request starts and when its answer has been sent, for draining on reload and shutdown. */
  readonly track: (delta: 1 | -1) => void
  /** True while shutting down: answers ask clients to close their connections. */
  readonly draining: () => boolean
}

export type WebhookListener = (incoming: IncomingMessage, outgoing: ServerResponse) => void

/** The listener's `clientError` handler: HTTP that Node could not read as a request, or read too slowly. */
export type ClientErrorHandler = (error: NodeJS.ErrnoException, socket: Duplex) => void

const NOT_FOUND = failure(404, 'unknown_route', 'rejected')
const METHOD_NOT_ALLOWED = failure(405, 'method_not_allowed', 'rejected')
const INTERNAL_ERROR = failure(500, 'internal_error', 'failed')
const REQUEST_TIMEOUT = failure(408, 'request_timeout', 'rejected', { close: true })
const BAD_REQUEST = failure(400, 'bad_request', 'rejected', { close: true })
const HEADERS_TOO_LARGE = failure(431, 'bad_request', 'rejected', { close: true })

/** Connections whose current answer closes them (a client error came about a later request). */
const closing = new WeakSet<Duplex>()

const ABSOLUTE_FORM = /^https?:\/\//i

/**
 * The path of a request target, without its query. Clients send the origin form (`/path?query`);
 * the absolute form (`http://host/path`, RFC 9112 section 3.2.2) is read too, as proxies may send it.
 */
export function targetPath(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) {
    const query = url.indexOf('?')
    return query < 0 ? url : url.slice(0, query)
  }
  if (!ABSOLUTE_FORM.test(url) || !URL.canParse(url)) return ''
  return new URL(url).pathname
}

function writeAnswer(exchange: Exchange, answer: Answer, outgoing: ServerResponse, draining: boolean): void {
  const headers: OutgoingHttpHeaders = { 'x-request-id': exchange.requestId }
  if (answer.contentType !== undefined) headers['content-type'] = answer.contentType
  if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter
  if (answer.status === 405) headers.allow = 'POST'
  // An unread body: Connection: close and a lingering close; later requests on the connection are not handled.
  if (answer.close) {
    closing.add(exchange.incoming.socket)
    closeAfterAnswer(exchange.incoming, outgoing)
  } else if (draining) headers.connection = 'close'
  const body = answer.body
  if (body === null) {
    // 204 and 304 carry no body and no length (RFC 9110 sections 8.6, 15.3.5).
    if (answer.status !== 204 && answer.status !== 304) headers['content-length'] = 0
    outgoing.writeHead(answer.status, headers).end()
  } else {
    headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length
    outgoing.writeHead(answer.status, headers).end(body)
  }
}

/** X-Forwarded-Proto for the upstream: ours when we terminate TLS, a trusted proxy's otherwise. */
function forwardedProto(exchange: Exchange): string {
  const incoming = exchange.incoming
  if ((incoming.socket as { encrypted?: boolean }).encrypted) return 'https'
  if (exchange.client?.trustedPeer) {
    const proto = incoming.headers['x-forwarded-proto']
    if (proto === 'https' || proto === 'http') return proto
  }
  return 'http'
}

export function buildWebhookListener(deps: AppDeps): WebhookListener {
  const { logger, requests, resolver, track, draining } = deps
  const routes = new Map(deps.bots.map((bot) => [bot.config.path, bot]))

  const finish = (
    name: string,
    metrics: BotMetrics,
    exchange: Exchange,
    answer: Answer,
    outgoing: ServerResponse,
    bans?: Bans,
  ): void => {
    if (exchange.dedupe !== undefined) settleDedupe(exchange.dedupe, answer)
    requests.record(name, metrics, exchange, answer)
    writeAnswer(exchange, answer, outgoing, draining())
    // After the answer: counting toward a ban never delays it.
    bans?.observe(exchange, answer.reason)
  }

  /** A fault of the gateway itself, outside the pipeline (which answers its own): 500, or a reset once the answer has begun. */
  const fault = (error: unknown, incoming: IncomingMessage, outgoing: ServerResponse): void => {
    logger.error({ err: error }, 'internal error')
    try {
      if (outgoing.headersSent) {
        outgoing.destroy()
        return
      }
      const exchange = new Exchange(incoming, randomUUID(), performance.now())
      const answer: Answer = { ...INTERNAL_ERROR, close: true }
      requests.record(NO_BOT, deps.unrouted, exchange, answer)
      writeAnswer(exchange, answer, outgoing, true)
    } catch {
      outgoing.destroy()
    }
  }

  const run = async (bot: BotPipeline, exchange: Exchange, outgoing: ServerResponse): Promise<void> => {
    const incoming = exchange.incoming
    // Counted until the answer is sent, not just computed: shutdown waits for this count.
    track(1)
    // Pipelined: this answer waits behind another on the same connection, and if the connection
    // closes first it never gets a socket, nor a 'close' event; the connection's close counts too.
    const pipelined = outgoing.socket === null
    let counted = true
    const done = (): void => {
      if (!counted) return
      counted = false
      if (pipelined) incoming.socket.off('close', done)
      track(-1)
    }
    outgoing.once('close', done)
    if (pipelined) incoming.socket.once('close', done)
    let answer: Answer
    try {
      answer = await handle(bot, exchange, forwardedProto(exchange))
    } catch (error) {
      logger.error({ bot: bot.name, request_id: exchange.requestId, err: error }, 'internal error')
      answer = { ...INTERNAL_ERROR, close: hasUnreadBody(incoming) }
    }
    finish(bot.name, bot.metrics, exchange, answer, outgoing, bot.bans)
  }

  return (incoming, outgoing) => {
    try {
      const exchange = new Exchange(incoming, randomUUID(), performance.now())
      exchange.client = resolver.resolve(incoming.socket.remoteAddress, incoming.headers['x-forwarded-for'])
      const bot = routes.get(targetPath(incoming.url ?? ''))
      if (bot === undefined) {
        finish(NO_BOT, deps.unrouted, exchange, { ...NOT_FOUND, close: hasUnreadBody(incoming) }, outgoing)
      } else if (incoming.method !== 'POST') {
        const answer = { ...METHOD_NOT_ALLOWED, close: hasUnreadBody(incoming) }
        finish(bot.name, bot.metrics, exchange, answer, outgoing)
      } else if (closing.has(incoming.socket)) {
        // Behind an answer that closes the connection (pipelined, or sent by a client that did not
        // wait for the close): it would never be answered, so it is not forwarded either.
        incoming.resume()
      } else {
        run(bot, exchange, outgoing).catch((error: unknown) => fault(error, incoming, outgoing))
      }
    } catch (error) {
      fault(error, incoming, outgoing)
    }
  }
}

/**
 * Answers what Node's HTTP parser reports on a connection instead of a request: headers not
 * complete in time (408), headers over Node's size limit (431) and HTTP it cannot parse (400).
 * Like every answer these carry an `X-Request-Id` and an error body, and are logged and counted,
 * under no bot (no route was read); the connection then closes.
 *
 * When a request is being handled on the connection, the pipeline answers instead: a body not
 * complete within `timeouts.body` or that cannot be parsed ends its body read with a 408 or a 400
 * (see `interruptBody`), logged under its bot; an error about a later request on the connection
 * lets the current answer go out, with `Connection: close`. A socket error (a reset) or an answer
 * already under way leaves nothing to answer: the connection is destroyed.
 */
export function buildClientErrorHandler(deps: AppDeps): ClientErrorHandler {
  const { requests, resolver, unrouted } = deps
  return (error, socket) => {
    const code = error.code ?? ''
    const timedOut = code === 'ERR_HTTP_REQUEST_TIMEOUT'
    const answerable = (timedOut || code.startsWith('HPE_')) && socket.writable
    const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
    if (!answerable || response?.headersSent) {
      socket.destroy()
      return
    }
    if (response) {
      if (response.req.complete) {
        response.setHeader('connection', 'close')
        closing.add(socket)
      } else interruptBody(response.req, timedOut ? BODY_TIMED_OUT : unreadableBody(code))
      return
    }
    const answer = timedOut
      ? REQUEST_TIMEOUT
      : code === 'HPE_HEADER_OVERFLOW'
        ? HEADERS_TOO_LARGE
        : BAD_REQUEST
    const requestId = randomUUID()
    const body = answer.body as string
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nX-Request-Id: ${requestId}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    )
    endAndLinger(socket)
    const remote = (socket as { remoteAddress?: string }).remoteAddress
    requests.record(
      NO_BOT,
      unrouted,
      {
        startedAt: performance.now(),
        requestId,
        client: remote === undefined ? undefined : resolver.resolve(remote, undefined),
        update: undefined,
        would: undefined,
        detail: timedOut ? 'headers not complete within timeouts.header' : code,
        upstreamStatus: undefined,
        upstreamMs: undefined,
      },
      answer,
    )
  }
}
