/**
 * @module
 * Check 13: forward a clean update and turn the upstream's outcome into the answer to Telegram
 * (SPEC section 3, the upstream outcome table).
 */

import { heardChat } from '../checks/outbound/heard.js'
import type { ReplyFilter, ReplyVerdict } from '../checks/replies/index.js'
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

type UpstreamAnswer = Extract<UpstreamResult, { kind: 'answer' }>

/**
 * The upstream's 2xx answer to Telegram, unless the reply filter withholds it (its method, or a
 * chat `outbound.chats` does not allow): then an empty 200, logged (`detail`) and counted like
 * the egress's refusals (botgate_egress_calls_total, `via: answer`). A promise only when the
 * filter has to ask the store (a chat heard from).
 */
function passReply(
  target: ForwardTarget,
  exchange: Exchange,
  result: UpstreamAnswer,
): Answer | Promise<Answer> {
  if (target.replyFilter === undefined) return forwarded(result, result.body)
  const verdict = target.replyFilter(result.contentType, result.body, heardChat(exchange.update))
  return verdict instanceof Promise
    ? verdict.then((known) => onVerdict(target, exchange, result, known))
    : onVerdict(target, exchange, result, verdict)
}

function onVerdict(
  target: ForwardTarget,
  exchange: Exchange,
  result: UpstreamAnswer,
  verdict: ReplyVerdict,
): Answer {
  if (verdict?.kind === 'refused') {
    exchange.detail = target.replyShadow ? `would withhold reply: ${verdict.reason}` : verdict.reason
    if (!target.replyShadow) {
      target.metrics.answerWithheld(verdict.method, verdict.reason)
      return EMPTY_OK
    }
  }
  return forwarded(result, verdict?.kind === 'pass' ? verdict.body : result.body)
}

/** The answer passed back to Telegram with `body` (the upstream's, or as the filter read it). */
function forwarded(result: UpstreamAnswer, body: Buffer): Answer {
  return {
    status: result.status,
    reason: 'forwarded',
    outcome: 'forwarded',
    body: body.length === 0 ? null : body,
    contentType: body.length === 0 ? undefined : (result.contentType ?? JSON_TYPE),
    retryAfter: undefined,
    close: false,
  }
}

/** Maps an upstream outcome to the answer; exported for unit tests of the table. */
export function answerFor(
  target: ForwardTarget,
  exchange: Exchange,
  result: UpstreamResult,
): Answer | Promise<Answer> {
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
