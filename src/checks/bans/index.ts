/**
 * @module
 * Policy section `bans`: the gateway's fail2ban. Two kinds, both shared by every replica through
 * the store, like the limits:
 *
 * - `ips`: a client address that failed authentication (check 2 `ip_not_allowed` or check 4
 *   `bad_secret`) more than `failures` times within `within` is refused for `ban` at check 2, with
 *   403 and reason `banned`, before its secret is even compared: a brute-forcer stops getting
 *   answers that tell it anything. Telegram's own ranges are never banned unless `telegram: true`:
 *   a forger can make requests that look as if they came from anywhere only if it controls the
 *   network, but it can always send bad secrets from its own address, and a ban on Telegram's
 *   addresses would cut the bot off from every genuine update. IPv6 addresses count by /64.
 * - `users`: a user whose updates are dropped for `rate_limited`, `content_not_allowed` or
 *   `command_forbidden` (`reasons`) more than `drops` times within `within` is blocked for `ban`
 *   through the operators' blocks (src/blocks): the block shows in the admin API's list with its
 *   cause, can be lifted there, and drops the user's updates with reason `blocked`.
 *
 * "More than N within T" is a GCRA limit of N per T with a burst of N (SPEC section 6): N failures
 * may come at once, and a failure counts against the budget until T/N has passed. A ban is raised
 * once: the event goes to `onBan` (the log line, the metric and the alert), and failures that arrive
 * while the ban holds do not raise it again.
 *
 * In shadow mode the ban is still counted and reported (`onBan` with `shadow: true`), but nothing is
 * refused or blocked: a way to learn how often honest traffic would trip the thresholds.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { Blocks } from '../../blocks/index.js'
import { DURATION_PATTERN, parseDuration } from '../../config/units.js'
import type { RequestCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { isPromise } from '../../pipeline/run.js'
import { type Reason, type Reject, reject } from '../../pipeline/verdict.js'
import { CidrSet, parseCidr } from '../../request/ip.js'
import type { LimitKey, LimitOutcome, LimitSpec, Maybe, Store } from '../../store/index.js'
import { ipKey } from '../limits/index.js'
import { SectionMode } from '../mode.js'
import { TELEGRAM_NETWORKS } from '../sources/index.js'
import { storeFailure } from '../store.js'

/** The drop reasons a user can be banned for by default: abuse of what the bot allows. */
export const USER_BAN_REASONS = ['rate_limited', 'content_not_allowed', 'command_forbidden'] as const

/**
 * The drop reasons `users.reasons` may name: the defaults, and commands off the whitelist (probing
 * for hidden commands; off by default, as clients send stale commands from old menus).
 */
const BANNABLE_REASONS = [...USER_BAN_REASONS, 'command_not_allowed'] as const

/** The reasons an address is banned for: failed authentication. */
const IP_FAILURES: ReadonlySet<Reason> = new Set<Reason>(['ip_not_allowed', 'bad_secret'])

const duration = (description: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    description,
    errorMessage: 'must be a duration such as 10m, 1h, 1d',
  })

export const bansSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    ips: Type.Optional(
      Type.Object(
        {
          failures: Type.Integer({
            minimum: 1,
            maximum: 1_000_000,
            description: 'Failed authentications (ip_not_allowed, bad_secret) tolerated within `within`.',
          }),
          within: duration('The window the failures are counted in, e.g. 10m.'),
          ban: duration('How long a banned address is refused (403 banned), e.g. 1h.'),
          telegram: Type.Optional(
            Type.Boolean({
              description: "Whether Telegram's own ranges may be banned too. Default: false.",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    users: Type.Optional(
      Type.Object(
        {
          drops: Type.Integer({
            minimum: 1,
            maximum: 1_000_000,
            description: 'Drops for `reasons` tolerated within `within`.',
          }),
          within: duration('The window the drops are counted in, e.g. 10m.'),
          ban: duration('How long a banned user is blocked (an admin API block), e.g. 1h.'),
          reasons: Type.Optional(
            Type.Array(Type.Union(BANNABLE_REASONS.map((reason) => Type.Literal(reason))), {
              minItems: 1,
              uniqueItems: true,
              description:
                'The drop reasons that count: rate_limited, content_not_allowed, command_forbidden, command_not_allowed. Default: the first three.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Automatic bans: addresses that keep failing authentication, users who keep being dropped.',
  },
)

export type BansPolicy = Static<typeof bansSchema>

/** One ban, as it is logged, counted and alerted. */
export interface BanEvent {
  readonly bot: string
  readonly kind: 'ip' | 'user'
  /** The address (IPv6 by /64) or the user id. */
  readonly subject: string
  /** The reason of the failure that tipped it over. */
  readonly cause: Reason
  readonly durationMs: number
  /** Shadow mode: would have been banned; nothing was refused. */
  readonly shadow: boolean
}

export interface BansDeps {
  readonly bot: string
  readonly store: Store
  readonly blocks: Blocks
  /** Called once per ban: the log line, the metric, the alert. */
  readonly onBan: (event: BanEvent) => void
  /** Store failures while counting (off the request path): logged, never thrown. */
  readonly onError: (error: unknown) => void
}

/** What the gateway does with a bot's bans: the check-2 request check, and the observer of answers. */
export interface Bans {
  /** Check 2's ban lookup, or undefined when the policy bans no addresses. */
  readonly check: RequestCheck | undefined
  /** Counts a finished request's reason; starts no work for reasons that do not count. */
  observe(exchange: Exchange, reason: Reason): void
}

const BANNED: Reject = reject(403, 'banned')

function spec(count: number, withinMs: number): LimitSpec {
  const intervalUs = Math.max(1, Math.round((withinMs * 1000) / count))
  return { intervalUs, toleranceUs: intervalUs * count, shadow: false }
}

/**
 * Whether the failure went over the threshold. The counters live in the bot's limit group, under
 * names no limit can have (`#`: limit names are letters, digits, `_` and `-`).
 */
function denied(outcome: LimitOutcome): boolean {
  return !outcome.allowed
}

export function createBans(
  policy: BansPolicy | undefined,
  shadow: boolean,
  deps: BansDeps,
): Bans | undefined {
  if (policy === undefined || (policy.ips === undefined && policy.users === undefined)) return undefined
  const { bot, store } = deps
  const ips = policy.ips
  const users = policy.users
  const telegram = new CidrSet(
    TELEGRAM_NETWORKS.map((cidr) => parseCidr(cidr) as Exclude<ReturnType<typeof parseCidr>, string>),
  )
  const ipSpec = ips === undefined ? undefined : spec(ips.failures, parseDuration(ips.within))
  const ipBanMs = ips === undefined ? 0 : parseDuration(ips.ban)
  const userSpec = users === undefined ? undefined : spec(users.drops, parseDuration(users.within))
  const userBanMs = users === undefined ? 0 : parseDuration(users.ban)
  const userReasons: ReadonlySet<Reason> = new Set<Reason>(users?.reasons ?? USER_BAN_REASONS)
  // Shadow bans go under keys of their own: they refuse nothing, and must not become real bans if
  // the section is switched to enforce.
  const markSpace = `{${bot}}:ban:${shadow ? 'shadow-ip' : 'ip'}:`

  /** Whether an address may be banned at all: Telegram's only when the policy says so. */
  const bannable = (exchange: Exchange): boolean => {
    const ip = exchange.client?.ip
    return ips?.telegram === true || ip === undefined || !telegram.has(ip)
  }

  /** Counts one failure of `subject`; resolves whether it went over the threshold. */
  const count = (key: string, limit: LimitSpec): Maybe<boolean> => {
    const keys: LimitKey[] = [{ spec: limit, key, replyKey: undefined }]
    const outcome = store.limit(bot, keys)
    return isPromise(outcome) ? outcome.then(denied) : denied(outcome)
  }

  const settle = (over: Maybe<boolean>, ban: () => Maybe<unknown>): void => {
    const act = (isOver: boolean) => (isOver ? ban() : undefined)
    try {
      const acted = isPromise(over) ? over.then(act) : act(over)
      if (isPromise(acted)) acted.catch(deps.onError)
    } catch (error) {
      deps.onError(error)
    }
  }

  const banIp = (subject: string, cause: Reason): Maybe<unknown> => {
    const raise = (previous: string | undefined) => {
      if (previous !== undefined) return // banned already: raised once
      deps.onBan({ bot, kind: 'ip', subject, cause, durationMs: ipBanMs, shadow })
    }
    // claim, not put: a ban runs its time and is raised once, however many failures follow.
    const claimed = store.claim(markSpace + subject, String(Date.now() + ipBanMs), ipBanMs)
    return isPromise(claimed) ? claimed.then(raise) : raise(claimed)
  }

  const banUser = async (id: number, cause: Reason): Promise<void> => {
    if (shadow) {
      const marked = await store.claim(`{${bot}}:ban:shadow-user:${id}`, '1', userBanMs)
      if (marked === undefined)
        deps.onBan({ bot, kind: 'user', subject: String(id), cause, durationMs: userBanMs, shadow })
      return
    }
    if ((await deps.blocks.forBot(bot).match(undefined, id)) !== undefined) return // blocked already
    const note = `banned: more than ${users?.drops} drops (${cause}) within ${users?.within}`
    const block = await deps.blocks.block(bot, 'user', id, userBanMs, { note, by: 'bans' })
    if (block !== undefined)
      deps.onBan({ bot, kind: 'user', subject: String(id), cause, durationMs: userBanMs, shadow })
  }

  const check: RequestCheck | undefined =
    ips === undefined
      ? undefined
      : {
          name: 'bans',
          shadow,
          run(exchange) {
            if (!bannable(exchange)) return undefined
            const found = store.read(markSpace + ipKey(exchange.client))
            const verdict = (mark: string | undefined) => {
              if (mark === undefined) return undefined
              exchange.detail = 'address banned'
              return BANNED
            }
            return isPromise(found) ? found.then(verdict, storeFailure) : verdict(found)
          },
        }

  return {
    check,
    observe(exchange, reason) {
      if (ipSpec !== undefined && IP_FAILURES.has(reason) && bannable(exchange)) {
        const subject = ipKey(exchange.client)
        settle(count(`#bans:ip:${subject}`, ipSpec), () => banIp(subject, reason))
      }
      const user = exchange.update?.userId
      if (userSpec !== undefined && user !== undefined && userReasons.has(reason)) {
        settle(count(`#bans:user:${user}`, userSpec), () => banUser(user, reason))
      }
    },
  }
}
