/**
 * @module
 * The webhook app: check 1 (one route per bot, exact path; 404 elsewhere, 405 for other methods),
 * then the bot's pipeline, then the answer as an HTTP response with its `X-Request-Id`.
 *
 * The request body and headers are read from Node's IncomingMessage (hono's node adapter passes it
 * as `c.env.incoming`): the pipeline needs the raw stream to stop reading at `max_body`, and the
 * exact bytes to forward; a WHATWG Request would buffer and copy both.
 */

import { randomUUID } from 'node:crypto'
import type { HttpBindings } from '@hono/node-server'
import { Hono } from 'hono'
import { settleDedupe } from '../checks/dedupe/index.js'
import type { Logger } from '../observe/logger.js'
import { type BotMetrics, NO_BOT } from '../observe/metrics.js'
import type { RequestLog } from '../observe/record.js'
import { type Answer, failure } from '../pipeline/answer.js'
import { Exchange } from '../pipeline/exchange.js'
import { handle } from '../pipeline/handle.js'
import type { BotPipeline } from '../policy/compile.js'
import { hasUnreadBody } from '../request/body.js'
import type { ClientIpResolver } from '../request/client-ip.js'
import { closeAfterAnswer } from './linger.js'

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

type Outgoing = HttpBindings['outgoing']

const NOT_FOUND = failure(404, 'unknown_route', 'rejected')
const METHOD_NOT_ALLOWED = failure(405, 'method_not_allowed', 'rejected')
const INTERNAL_ERROR = failure(500, 'internal_error', 'failed')

function toResponse(exchange: Exchange, answer: Answer, outgoing: Outgoing, draining: boolean): Response {
  const headers: Record<string, string> = { 'x-request-id': exchange.requestId }
  if (answer.contentType !== undefined) headers['content-type'] = answer.contentType
  if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter
  if (answer.status === 405) headers.allow = 'POST'
  // An unread body: no Connection header (Node would destroy the socket at once), a lingering close instead.
  if (answer.close) closeAfterAnswer(exchange.incoming, outgoing)
  else if (draining) headers.connection = 'close'
  return new Response(answer.body, { status: answer.status, headers })
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

export function buildWebhookApp(deps: AppDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>()
  const { logger, requests, resolver, track, draining } = deps

  const begin = (incoming: HttpBindings['incoming']) => {
    const exchange = new Exchange(incoming, randomUUID(), performance.now())
    exchange.client = resolver.resolve(incoming.socket.remoteAddress, incoming.headers['x-forwarded-for'])
    return exchange
  }
  const finish = (
    name: string,
    metrics: BotMetrics,
    exchange: Exchange,
    answer: Answer,
    outgoing: Outgoing,
  ) => {
    if (exchange.dedupe !== undefined) settleDedupe(exchange.dedupe, answer)
    requests.record(name, metrics, exchange, answer)
    return toResponse(exchange, answer, outgoing, draining())
  }

  for (const bot of deps.bots) {
    app.all(bot.config.path, async (c) => {
      const { incoming, outgoing } = c.env
      const exchange = begin(incoming)
      if (incoming.method !== 'POST') {
        return finish(
          bot.name,
          bot.metrics,
          exchange,
          { ...METHOD_NOT_ALLOWED, close: hasUnreadBody(incoming) },
          outgoing,
        )
      }
      // Counted until the answer is sent, not just computed: shutdown waits for this count.
      track(1)
      outgoing.once('close', () => track(-1))
      let answer: Answer
      try {
        answer = await handle(bot, exchange, forwardedProto(exchange))
      } catch (error) {
        logger.error({ bot: bot.name, request_id: exchange.requestId, err: error }, 'internal error')
        answer = { ...INTERNAL_ERROR, close: hasUnreadBody(incoming) }
      }
      return finish(bot.name, bot.metrics, exchange, answer, outgoing)
    })
  }
  app.notFound((c) => {
    const { incoming, outgoing } = c.env
    return finish(
      NO_BOT,
      deps.unrouted,
      begin(incoming),
      { ...NOT_FOUND, close: hasUnreadBody(incoming) },
      outgoing,
    )
  })
  app.onError((error, c) => {
    logger.error({ err: error }, 'internal error')
    const { incoming, outgoing } = c.env
    return finish(NO_BOT, deps.unrouted, begin(incoming), { ...INTERNAL_ERROR, close: true }, outgoing)
  })
  return app
}
