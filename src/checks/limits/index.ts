/**
 * @module
 * Policy section `limits`: rate limits (SPEC section 6), GCRA per key, evaluated by the store.
 *
 * - `key: ip` limits are check 3: after `sources`, before the secret, on the client address
 *   (IPv6 grouped by /64, the smallest network one subscriber usually gets, RFC 6177), so a flood
 *   is refused before any work. They answer 429 with `Retry-After` (Telegram honours it, up to
 *   3600 s).
 * - `key: chat | user | bot` limits are check 12, last before forwarding: a genuine update over
 *   its limit is dropped with 200 (a non-2xx would make Telegram resend it and hold the chat
 *   back), optionally with the rule's `reply`, sent at most once per 1/rate to a chat.
 *
 * All the limits of one check that apply to a request go to the store in one call (one Redis
 * round trip, one atomic script): each is evaluated, and they consume only if all enforcing ones
 * pass. A rule without what it keys on (no chat in an inline query, no user in a channel post)
 * does not apply to that update. A rule with `commands` applies to updates carrying one of them
 * and counts each command separately.
 *
 * Shadow mode is per rule (`mode`, else the policy's): the store evaluates shadow rules in the
 * same round trip, they never block, and this check records their verdict as "would" itself,
 * because the runner's shadow mode is per check and one check holds every rule.
 *
 * A store that cannot answer (`store.on_error: closed`) gives 503 + Retry-After
 * (`store_unavailable`, src/checks/store.ts), never `rate_limited`.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { Segment } from '../../config/source.js'
import { suggestion } from '../../config/validate.js'
import type { GatewayMetrics } from '../../observe/metrics.js'
import type { CounterChild } from '../../observe/prometheus.js'
import { Deferred, type RequestCheck, type UpdateCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { isPromise } from '../../pipeline/run.js'
import { type Drop, drop, reject, type WebhookReply } from '../../pipeline/verdict.js'
import type { ClientAddress } from '../../request/client-ip.js'
import { formatIp, networkOf } from '../../request/ip.js'
import { limitSpec, MAX_TOLERANCE_US, PERIOD_US, type RateUnit } from '../../store/gcra.js'
import {
  ALLOWED,
  type LimitKey,
  type LimitOutcome,
  type LimitSpec,
  SKIPPED,
  type Store,
} from '../../store/index.js'
import { UPDATE_TYPES } from '../../telegram/generated/update-types.js'
import type { Update } from '../../telegram/update.js'
import { isShadow, type Mode, SectionMode } from '../mode.js'
import { storeFailure } from '../store.js'

export const RATE_PATTERN = '^[1-9][0-9]{0,8}/(s|min|h|day)$'

const limitRuleSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9_-]{1,64}$',
      description: 'Unique within the policy; appears in logs, metrics and store keys.',
      errorMessage: 'must be 1-64 characters of a-z, 0-9, _ and -',
    }),
    key: Type.Union([Type.Literal('ip'), Type.Literal('chat'), Type.Literal('user'), Type.Literal('bot')], {
      description:
        'What is counted: ip (the client address, IPv6 by /64; before authentication, answers 429), chat, user, or bot (all updates of the bot).',
      errorMessage: 'must be ip, chat, user or bot',
    }),
    rate: Type.String({
      pattern: RATE_PATTERN,
      description: 'N per period, e.g. 20/min: N/s, N/min, N/h or N/day.',
      errorMessage: 'must be a rate like 20/min: N/s, N/min, N/h or N/day',
    }),
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description: 'Requests that may arrive at once; then one per period/N. Default: N of the rate.',
      }),
    ),
    commands: Type.Optional(
      Type.Array(
        Type.String({
          pattern: '^[A-Za-z0-9_]{1,32}$',
          errorMessage: 'must be a command name without the leading / (up to 32 letters, digits and _)',
        }),
        {
          minItems: 1,
          description: 'Only updates with one of these commands count, each command on its own.',
        },
      ),
    ),
    update_types: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Only updates of these types count, e.g. [message, callback_query].',
      }),
    ),
    reply: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'Sent to the chat of a dropped update (sendMessage, or answerCallbackQuery for a callback query), at most once per period/N.',
      }),
    ),
    mode: Type.Optional(SectionMode),
  },
  { additionalProperties: false },
)

export const limitsSchema = Type.Array(limitRuleSchema, {
  description:
    'Checks 3 (key: ip) and 12 (chat, user, bot): rate limits, GCRA. Over the limit: 429 for ip, else 200 and dropped.',
})

export type LimitRule = Static<typeof limitRuleSchema>

/** The parts of a rate like `20/min`. */
export function parseRate(rate: string): { count: number; unit: RateUnit } {
  const slash = rate.indexOf('/')
  return { count: Number(rate.slice(0, slash)), unit: rate.slice(slash + 1) as RateUnit }
}

/** The rule's limit: burst B defaults to the rate's N. */
export function specOf(rule: LimitRule, shadow: boolean): LimitSpec {
  const { count, unit } = parseRate(rule.rate)
  return limitSpec(count, unit, rule.burst ?? count, shadow)
}

const KNOWN_TYPES = new Set(UPDATE_TYPES)

/** Rules a schema cannot state, each reported at its path inside `limits`. */
export function checkLimits(
  rules: readonly LimitRule[],
  issue: (at: readonly Segment[], message: string) => void,
): void {
  const names = new Map<string, number>()
  rules.forEach((rule, index) => {
    const first = names.get(rule.name)
    if (first === undefined) names.set(rule.name, index)
    else issue([index, 'name'], `duplicates limits[${first}].name: each limit needs its own name`)
    const { count, unit } = parseRate(rule.rate)
    if (count > PERIOD_US[unit]) {
      issue(
        [index, 'rate'],
        `is more than one request per microsecond; the most is ${PERIOD_US[unit]}/${unit}`,
      )
    } else if (specOf(rule, false).toleranceUs > MAX_TOLERANCE_US) {
      issue([index, 'burst'], 'lasts longer than a year at this rate (burst x period / N); lower it')
    }
    if (rule.key === 'ip') {
      for (const key of ['commands', 'update_types', 'reply'] as const) {
        if (rule[key] === undefined) continue
        issue(
          [index, key],
          key === 'reply'
            ? 'an ip limit answers 429 before the update is read; it cannot reply'
            : `an ip limit runs before the update is read, so it cannot filter by ${key}`,
        )
      }
    }
    rule.update_types?.forEach((type, at) => {
      if (KNOWN_TYPES.has(type)) return
      const hint = suggestion(type, UPDATE_TYPES)
      issue(
        [index, 'update_types', at],
        `"${type}" is not an update type${hint.startsWith(' (') ? hint : ''}`,
      )
    })
  })
}

const RATE_LIMITED = drop('rate_limited')
/** Telegram caps Retry-After at 3600 s (SPEC section 1). */
const MAX_RETRY_AFTER_SECONDS = 3600

interface CompiledRule {
  readonly name: string
  readonly spec: LimitSpec
  /** `l:<name>:`, the start of this rule's keys inside the bot's group. */
  readonly prefix: string
  /** `r:<name>:`, the start of its reply-once marks. */
  readonly replyPrefix: string
  readonly exceeded: CounterChild
}

interface UpdateRule extends CompiledRule {
  readonly key: 'chat' | 'user' | 'bot'
  readonly types: ReadonlySet<string> | undefined
  readonly commands: ReadonlySet<string> | undefined
  readonly reply: string | undefined
}

/** A limit key with the rule it came from. */
interface RuleKey<R extends CompiledRule> extends LimitKey {
  readonly rule: R
}

export interface LimitsDeps {
  readonly bot: string
  /** The bot's @username, lower-cased: `/cmd@username` is ours, other mentions are not. */
  readonly username: string | undefined
  readonly store: Store
  readonly metrics: GatewayMetrics
  readonly policyMode: Mode | undefined
}

function compile(rule: LimitRule, deps: LimitsDeps): CompiledRule {
  const shadow = isShadow(deps.policyMode, rule.mode)
  return {
    name: rule.name,
    spec: specOf(rule, shadow),
    prefix: `l:${rule.name}:`,
    replyPrefix: `r:${rule.name}:`,
    exceeded: deps.metrics.limitExceeded.labels(deps.bot, rule.name, shadow ? 'shadow' : 'enforce'),
  }
}

/** Counts the denials, records shadow ones as "would", and names the limit in the log line. */
function note<R extends CompiledRule>(
  outcome: LimitOutcome,
  keys: readonly RuleKey<R>[],
  exchange: Exchange,
): R | undefined {
  let first: R | undefined
  let shadowed = false
  for (const index of outcome.denied) {
    const rule = (keys[index] as RuleKey<R>).rule
    rule.exceeded.inc()
    if (rule.spec.shadow) shadowed = true
    else first ??= rule
  }
  if (shadowed) exchange.noteShadow('rate_limited')
  const named = first ?? (keys[outcome.denied[0] as number] as RuleKey<R>).rule
  exchange.detail = `limit ${named.name}${first === undefined ? ' (shadow)' : ''}`
  return first
}

/** The key of a client address: IPv4 as is, IPv6 by its /64 network. */
export function ipKey(client: ClientAddress | undefined): string {
  const ip = client?.ip
  if (ip === undefined) return client?.text ?? 'unknown'
  if (ip.family === 4) return client?.text as string
  return `${formatIp(networkOf(ip, 64))}/64`
}

/** Check 3: the `key: ip` rules, or undefined when the policy has none. */
export function createIpLimitsCheck(
  rules: readonly LimitRule[] | undefined,
  deps: LimitsDeps,
): RequestCheck | undefined {
  const compiled = (rules ?? []).filter((rule) => rule.key === 'ip').map((rule) => compile(rule, deps))
  if (compiled.length === 0) return undefined
  const { store, bot } = deps
  const verdict = (outcome: LimitOutcome, keys: readonly RuleKey<CompiledRule>[], exchange: Exchange) => {
    if (outcome === ALLOWED) return undefined
    note(outcome, keys, exchange)
    if (outcome.allowed) return undefined
    const seconds = Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(outcome.retryAfterUs / 1e6)))
    return reject(429, 'rate_limited', seconds)
  }
  return {
    name: 'limits',
    shadow: false,
    run(exchange) {
      const id = ipKey(exchange.client)
      const keys = compiled.map(
        (rule): RuleKey<CompiledRule> => ({
          spec: rule.spec,
          key: rule.prefix + id,
          replyKey: undefined,
          rule,
        }),
      )
      const outcome = store.limit(bot, keys)
      if (isPromise(outcome)) return outcome.then((decided) => verdict(decided, keys, exchange), storeFailure)
      return verdict(outcome, keys, exchange)
    },
  }
}

/** The webhook reply of a limit's drop (SPEC section 3, "Replies"), or undefined when there is no chat to answer. */
export function limitReply(text: string, update: Update): WebhookReply | undefined {
  if (update.chatId === undefined) return undefined
  if (update.type === 'callback_query') {
    const id = update.payload.id
    return typeof id === 'string' ? { method: 'answerCallbackQuery', callback_query_id: id, text } : undefined
  }
  return { method: 'sendMessage', chat_id: update.chatId, text }
}

/** Appends the keys of `rule` that apply to `update`. */
function collect(
  rule: UpdateRule,
  update: Update,
  username: string | undefined,
  into: RuleKey<UpdateRule>[],
) {
  if (rule.types !== undefined && !rule.types.has(update.type)) return
  let key: string
  if (rule.key === 'chat') {
    if (update.chatId === undefined) return
    key = rule.prefix + update.chatId
  } else if (rule.key === 'user') {
    if (update.userId === undefined) return
    key = rule.prefix + update.userId
  } else {
    key = rule.prefix
  }
  const replyKey =
    rule.reply !== undefined && update.chatId !== undefined ? rule.replyPrefix + update.chatId : undefined
  if (rule.commands === undefined) {
    into.push({ spec: rule.spec, key, replyKey, rule })
    return
  }
  const start = into.length
  for (const command of update.commands) {
    if (command.mention !== undefined && command.mention !== username) continue
    if (!rule.commands.has(command.name)) continue
    const commandKey = `${key}:${command.name}`
    let seen = false
    for (let i = start; i < into.length && !seen; i++)
      seen = (into[i] as RuleKey<UpdateRule>).key === commandKey
    if (!seen) into.push({ spec: rule.spec, key: commandKey, replyKey, rule })
  }
}

/** Check 12: the `key: chat | user | bot` rules, or undefined when the policy has none. */
export function createUpdateLimitsCheck(
  rules: readonly LimitRule[] | undefined,
  deps: LimitsDeps,
): UpdateCheck | undefined {
  const compiled = (rules ?? [])
    .filter((rule) => rule.key !== 'ip')
    .map(
      (rule): UpdateRule => ({
        ...compile(rule, deps),
        key: rule.key as UpdateRule['key'],
        types: rule.update_types === undefined ? undefined : new Set(rule.update_types),
        commands:
          rule.commands === undefined ? undefined : new Set(rule.commands.map((c) => c.toLowerCase())),
        reply: rule.reply,
      }),
    )
  if (compiled.length === 0) return undefined
  const { store, bot, username } = deps
  const verdict = (
    outcome: LimitOutcome,
    keys: readonly RuleKey<UpdateRule>[],
    exchange: Exchange,
    update: Update,
  ): Drop | undefined => {
    if (outcome === ALLOWED) return undefined
    note(outcome, keys, exchange)
    if (outcome.allowed) return undefined
    if (outcome.reply < 0) return RATE_LIMITED
    const text = (keys[outcome.reply] as RuleKey<UpdateRule>).rule.reply as string
    const reply = limitReply(text, update)
    return reply === undefined ? RATE_LIMITED : drop('rate_limited', reply)
  }
  return {
    name: 'limits',
    shadow: false,
    effects: 'chained',
    run(exchange, update) {
      const keys: RuleKey<UpdateRule>[] = []
      for (const rule of compiled) collect(rule, update, username, keys)
      if (keys.length === 0) return undefined
      const chain = exchange.chainOn(store)
      if (chain !== undefined) {
        return Deferred.of(chain.limit(bot, keys), (decided) =>
          decided === SKIPPED ? undefined : verdict(decided, keys, exchange, update),
        )
      }
      const outcome = store.limit(bot, keys)
      if (isPromise(outcome))
        return outcome.then((decided) => verdict(decided, keys, exchange, update), storeFailure)
      return verdict(outcome, keys, exchange, update)
    },
  }
}
