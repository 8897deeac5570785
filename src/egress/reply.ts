/**
 * @module
 * The reply executor: botgate makes the Bot API call of a bot's 2xx webhook answer itself, with
 * the bot's real token, as Telegram would have made it (Bot API, "Making requests when getting
 * updates"). Durable delivery needs it: an update forwarded from a queue has no Telegram request
 * left to answer, so its reply must be sent as a call.
 *
 * The answer may be JSON, x-www-form-urlencoded or multipart/form-data with a `method` field;
 * the call gets the same parameters without `method`. It goes the way of every egress call
 * ({@link BotApiCalls}): the policy's `outbound` filter narrowed by `replies.allow_methods`,
 * pacing per chat with Telegram's 429 retried, the `egress call` log line and the count, marked
 * `via: reply`. It needs the bot's token only, not an egress credential or `egress.listen`.
 *
 * Methods Telegram does not execute from a webhook answer (get*, setWebhook, deleteWebhook,
 * close, logOut) are not executed here either.
 */

import { replyMethod } from '../checks/replies/index.js'
import { parseCallBody, withoutField } from '../telegram/call-body.js'
import { canonicalMethod } from '../telegram/methods.js'
import type { BotApiBot, BotApiCalls, CallAnswer, Delivered } from './calls.js'

/** What became of one webhook answer. */
export interface ReplyOutcome {
  /**
   * Telegram's HTTP status; botgate's own when it refused or could not send the call (403, 429,
   * 502); 0 when there was nothing to call.
   */
  readonly status: number
  /** The method the answer named, undefined when it named none (or could not be read). */
  readonly method: string | undefined
  /** Telegram's (or botgate's) `error_code` of a failed call. */
  readonly errorCode?: number
  /**
   * Why botgate did not make the call, or what stopped it: `reply_method_not_allowed`,
   * `reply_method_ignored`, `no_token`, a pacing refusal (`queue_full`, `wait_too_long`,
   * `closing`, `store_unavailable`), `bot_api_unreachable`.
   */
  readonly reason?: string
}

export interface ReplyExecutor {
  execute(bot: string, contentType: string | undefined, body: Buffer): Promise<ReplyOutcome>
}

/** Telegram ignores these in a webhook answer (SPEC section 1): the result could not reach the bot. */
const IGNORED = new Set(['setwebhook', 'deletewebhook', 'close', 'logout'])

function ignored(method: string): boolean {
  const name = method.toLowerCase()
  return name.startsWith('get') || IGNORED.has(name)
}

/** `error_code` of Telegram's JSON answer, when it failed and says so. */
function errorCodeOf(text: string): number | undefined {
  try {
    const value = JSON.parse(text) as { ok?: unknown; error_code?: unknown }
    return value.ok === false && typeof value.error_code === 'number' ? value.error_code : undefined
  } catch {
    return undefined
  }
}

/** The reply executor of one config generation: every bot with a token. */
export class Replies implements ReplyExecutor {
  readonly #bots: ReadonlyMap<string, BotApiBot>
  readonly #calls: BotApiCalls

  constructor(bots: readonly BotApiBot[], calls: BotApiCalls) {
    this.#bots = new Map(bots.map((bot) => [bot.name, bot]))
    this.#calls = calls
  }

  async execute(name: string, contentType: string | undefined, body: Buffer): Promise<ReplyOutcome> {
    const named = replyMethod(contentType, body)
    if (named === null) return { status: 0, method: undefined }
    // The outcome names the method as the spec spells it, whatever the answer's case.
    const method = named === undefined ? undefined : (canonicalMethod(named) ?? named)
    const bot = this.#bots.get(name)
    if (bot === undefined) return { status: 0, method: method ?? undefined, reason: 'no_token' }
    const parsed = method === undefined ? undefined : parseCallBody(contentType, body)
    if (method === undefined || parsed === undefined) {
      const started = performance.now()
      const refused = { status: 403, reason: 'reply_method_not_allowed', errorCode: 403 }
      this.#calls.log({ bot: bot.name, method: undefined, via: 'reply' }, refused, started)
      return { ...refused, method: undefined }
    }
    if (bot.replyAllows(method) && ignored(method))
      return { status: 0, method, reason: 'reply_method_ignored' }
    const params = withoutField(parsed, body, 'method')
    const headers: Record<string, string> = {
      'content-type': contentType ?? 'application/json',
      'content-length': String(params.length),
    }
    let outcome: ReplyOutcome = { status: 0, method }
    await this.#calls.run(
      bot,
      { via: 'reply', method, kind: 'method', httpMethod: 'POST', search: '', headers, body: params },
      async (answer: CallAnswer): Promise<Delivered> => {
        if (answer.kind === 'own') {
          outcome = { status: answer.status, method, errorCode: answer.status, reason: answer.reason }
          return { status: answer.status, reason: answer.reason, errorCode: answer.status }
        }
        const text = answer.text ?? (await answer.answer.body.text())
        const errorCode = answer.answer.statusCode >= 400 ? errorCodeOf(text) : undefined
        outcome =
          errorCode === undefined
            ? { status: answer.answer.statusCode, method }
            : { status: answer.answer.statusCode, method, errorCode }
        return { status: answer.answer.statusCode, errorCode }
      },
    )
    return outcome
  }
}
