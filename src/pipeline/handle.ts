/**
 * @module
 * One request through one bot's pipeline, in the fixed order of SPEC section 3:
 * checks 2-4 (who), 5-7 (what bytes), 8-12 (which update, under which policy), 13 (forward, or
 * into the bot's queue under `upstream.delivery: queued`).
 */

import { INVALID_ENVELOPE } from '../checks/updates/index.js'
import { forward } from '../forward/index.js'
import type { BotPipeline } from '../policy/compile.js'
import { checkMediaType, hasUnreadBody, MALFORMED_JSON, parseJsonObject, readBody } from '../request/body.js'
import { factsOf, readEnvelope } from '../telegram/update.js'
import { type Answer, dropAnswer, rejectAnswer } from './answer.js'
import type { Exchange } from './exchange.js'
import { isPromise, runChecks } from './run.js'
import type { Verdict } from './verdict.js'

export async function handle(bot: BotPipeline, exchange: Exchange, forwardedProto: string): Promise<Answer> {
  const incoming = exchange.incoming
  let early = runChecks(bot.requestChecks, exchange, undefined)
  if (isPromise(early)) early = await early
  early ??= checkMediaType(incoming)
  if (early !== undefined) return rejectAnswer(early, hasUnreadBody(incoming))

  const inflight = bot.metrics.inflight
  inflight.inc()
  try {
    const body = await readBody(incoming, bot.body.readLimit)
    if ('reject' in body) {
      exchange.detail = body.detail
      return rejectAnswer(body.reject, true)
    }
    exchange.body = body
    if (body.length > bot.body.limit) exchange.noteShadow('body_too_large')
    let refused = checkUpdate(bot, exchange, body)
    if (isPromise(refused)) refused = await refused
    if (refused !== undefined) return refused
    bot.heard?.(exchange.update)
    return bot.queue === undefined
      ? await forward(bot, exchange, forwardedProto)
      : await bot.queue.admit(exchange, forwardedProto)
  } finally {
    inflight.dec()
  }
}

/**
 * Checks 7-12: the body parsed, its envelope read, the update checks run. The parsed update stays
 * in here: only its facts go on the exchange, so the tree is garbage by the time the upstream is
 * called. Undefined: the update may be forwarded.
 */
function checkUpdate(
  bot: BotPipeline,
  exchange: Exchange,
  body: Buffer,
): Answer | undefined | Promise<Answer | undefined> {
  const json = parseJsonObject(body)
  if (json === undefined) return rejectAnswer(MALFORMED_JSON, false)
  const update = readEnvelope(json)
  if (typeof update === 'string') {
    exchange.detail = `envelope: ${update}`
    return dropAnswer(INVALID_ENVELOPE)
  }
  exchange.update = factsOf(update)
  const verdict = runChecks(bot.updateChecks, exchange, update)
  return isPromise(verdict) ? verdict.then(answerTo) : answerTo(verdict)
}

function answerTo(verdict: Verdict | undefined): Answer | undefined {
  if (verdict === undefined) return undefined
  return verdict.kind === 'reject' ? rejectAnswer(verdict, false) : dropAnswer(verdict)
}
