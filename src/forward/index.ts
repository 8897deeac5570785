/**
 * @module
 * Check 13: forward a clean update and turn the upstream's outcome into the answer to Telegram
 * (SPEC section 3, the upstream outcome table).
 */

import type { ReplyFilter } from '../checks/replies/index.js'
import type { BotMetrics } from '../observe/metrics.js'
import { type Answer, failure, JSON_TYPE } from '../pipeline/answer.js'
import type { Exchange } from '../pipeline/exchange.js'
import type { UpdateFacts } from '../telegram/update.js'
import type { Signer } from './sign.js'
import type { Upstream, UpstreamResult } from './upstream.js'

/** What forwarding needs of a compiled bot. */
export interface ForwardTarget {
  readonly upstream: Upstream
  readonly maxInflight: number
  readonly metrics: BotMetrics
  readonly replyFilter: ReplyFilter | undefined
  /** `replies` in shadow mode: a refused reply is logged and passed on anyway. */
  readonly replyShadow: boolean
  /** `upstream.sign`: the JWT header for one forward; undefined when forwards are not signed. */
  readonly sign: Signer | undefined
}

/** Seconds Telegram is asked to wait when this bot is at `max_inflight`. */
export const OVERLOADED_RETRY_AFTER = '2'

const EMPTY_OK: Answer = {
  status: 200,
  reason: 'forwarded',
  outcome: 'forwarded',
  body: null,
  contentType: undefined,
  retryAfter: undefined,
  close: false,
}

function passReply(
  target: ForwardTarget,
  exchange: Exchange,
  result: Extract<UpstreamResult, { kind: 'answer' }>,
): Answer {
  if (target.replyFilter !== undefined) {
    const refused = target.replyFilter(result.contentType, result.body)
    if (refused !== undefined) {
      exchange.detail = target.replyShadow ? `would withhold reply: ${refused}` : refused
      if (!target.replyShadow) return EMPTY_OK
    }
  }
  return {
    status: result.status,
    reason: 'forwarded',
    outcome: 'forwarded',
    body: result.body.length === 0 ? null : result.body,
    contentType: result.body.length === 0 ? undefined : (result.contentType ?? JSON_TYPE),
    retryAfter: undefined,
    close: false,
  }
}

/** Maps an upstream outcome to the answer; exported for unit tests of the table. */
export function answerFor(target: ForwardTarget, exchange: Exchange, result: UpstreamResult): Answer {
  switch (result.kind) {
    case 'timeout':
      return failure(504, 'upstream_timeout', 'failed')
    case 'unreachable':
      exchange.detail = result.code
      return failure(502, 'upstream_unreachable', 'failed')
    case 'too_large':
      // Delivered: answering an error would make Telegram resend an update the bot already has.
      exchange.detail = 'reply over 1 MiB withheld'
      return EMPTY_OK
    case 'answer': {
      const status = result.status
      if (status >= 200 && status < 300) return passReply(target, exchange, result)
      // Telegram honours Retry-After (SPEC section 1): the bot can ask for a pause through us.
      if (status === 429 || status === 503)
        return failure(status, 'upstream_busy', 'failed', { retryAfter: result.retryAfter })
      return failure(502, 'upstream_error', 'failed')
    }
  }
}

export async function forward(
  target: ForwardTarget,
  exchange: Exchange,
  forwardedProto: string,
): Promise<Answer> {
  if (target.metrics.inflight.value > target.maxInflight) {
    return failure(503, 'overloaded', 'failed', { retryAfter: OVERLOADED_RETRY_AFTER })
  }
  const body = exchange.body as Buffer
  const headers = {
    forwardedFor: exchange.client?.text ?? '',
    forwardedProto,
    requestId: exchange.requestId,
  }
  const signed =
    target.sign === undefined
      ? headers
      : { ...headers, extra: target.sign(body, (exchange.update as UpdateFacts).id, exchange.requestId) }
  const started = performance.now()
  const result = await target.upstream.send(body, signed)
  const ms = performance.now() - started
  exchange.upstreamMs = ms
  target.metrics.upstream.observe(ms / 1000)
  if (result.kind === 'answer' || result.kind === 'too_large') exchange.upstreamStatus = result.status
  return answerFor(target, exchange, result)
}
