/**
 * @module
 * Policy section `users`: who may talk to the bot. An update whose sender is refused is dropped
 * with 200 and reason `user_not_allowed`, in this order:
 *
 * 1. `deny`: a sender on it (a user id, or a member of a named role) never gets through.
 * 2. `anonymous`: a message sent on behalf of a chat (`sender_chat`: an anonymous group admin, a
 *    channel posting or auto-forwarding into its discussion group, a channel post itself) has no
 *    real user behind it; `from` is then a placeholder (GroupAnonymousBot, Channel_Bot). `forward`
 *    lets it through, `drop` refuses it. The default is `drop` when there is an `allow` list (no
 *    listed user stands behind such a message) and `forward` otherwise.
 * 3. `bots`: a sender with `is_bot: true` (another bot, in the chats where bots see each other) is
 *    refused with `drop` (the default: bot-to-bot loops are a classic way to flood a bot) unless its
 *    id is on `allow` itself; `forward` leaves bots to `allow` like anyone else.
 * 4. `allow`: when given, only these users (ids and role names, e.g. `[admins, 123456789]`) get
 *    through; an update without a sender is refused too.
 *
 * `my_chat_member` always passes, as in `chats`: it tells the bot where it was added or removed.
 * `reply` answers a refused user at most once per {@link USER_REPLY_PERIOD_MS} (a store mark, so
 * replicas share it), like the limits' replies: a refused user who keeps writing does not make the
 * bot write back each time.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { Outcome, UpdateCheck } from '../../pipeline/check.js'
import { drop, type Verdict } from '../../pipeline/verdict.js'
import type { Store } from '../../store/index.js'
import { replyTo } from '../../telegram/reply.js'
import type { Update } from '../../telegram/update.js'
import { dropOrForward, SectionMode } from '../mode.js'
import { replyOnce } from '../reply-once.js'
import type { RolesPolicy } from '../roles/index.js'

/** How often a refused user hears `reply` at most. */
export const USER_REPLY_PERIOD_MS = 60 * 60 * 1000

const member = Type.Union(
  [
    Type.Integer({ minimum: -(2 ** 53 - 1), maximum: 2 ** 53 - 1, description: 'A Telegram user id.' }),
    Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'The name of a role (roles section).' }),
  ],
  { errorMessage: 'must be a Telegram user id or the name of a role' },
)

export const usersSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    allow: Type.Optional(
      Type.Array(member, {
        uniqueItems: true,
        description:
          'When given, only these users get through: user ids and role names, e.g. [admins, 123456789].',
      }),
    ),
    deny: Type.Optional(
      Type.Array(member, {
        uniqueItems: true,
        description: 'Users (ids, role names) who never get through.',
      }),
    ),
    bots: Type.Optional(
      dropOrForward('Updates whose sender is a bot (is_bot), unless its id is on allow. Default: drop.'),
    ),
    anonymous: Type.Optional(
      dropOrForward(
        'Messages sent on behalf of a chat (sender_chat: anonymous group admins, channels). Default: drop when allow is given, else forward.',
      ),
    ),
    reply: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'Optional answer to a refused user, at most once an hour per user, e.g. "This bot is private."',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Who may talk to the bot: allow / deny lists of users and roles, bots, anonymous senders.',
  },
)

export type UsersPolicy = Static<typeof usersSchema>

type Problem = { path: (string | number)[]; message: string }

/** Rules the schema cannot state: roles that do not exist, an empty allow list. */
export function userProblems(policy: UsersPolicy, roles: RolesPolicy | undefined): Problem[] {
  const problems: Problem[] = []
  for (const list of ['allow', 'deny'] as const) {
    policy[list]?.forEach((entry, index) => {
      if (typeof entry === 'string' && roles?.[entry] === undefined)
        problems.push({ path: ['users', list, index], message: `no role "${entry}" in the roles section` })
    })
  }
  if (policy.allow !== undefined && policy.allow.length === 0)
    problems.push({
      path: ['users', 'allow'],
      message: 'an empty allow list lets nobody in: remove it to allow all',
    })
  return problems
}

/** The user ids a list names, roles expanded. */
function members(
  list: readonly (number | string)[] | undefined,
  roles: RolesPolicy | undefined,
): Set<number> {
  const ids = new Set<number>()
  for (const entry of list ?? []) {
    for (const id of typeof entry === 'number' ? [entry] : (roles?.[entry] ?? [])) ids.add(id)
  }
  return ids
}

export interface UsersDeps {
  readonly store: Store
  readonly bot: string
}

const NOT_ALLOWED = drop('user_not_allowed')

function object(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
}

export function createUsersCheck(
  policy: UsersPolicy | undefined,
  roles: RolesPolicy | undefined,
  shadow: boolean,
  deps: UsersDeps,
): UpdateCheck | undefined {
  if (policy === undefined) return undefined
  const allow = policy.allow === undefined ? undefined : members(policy.allow, roles)
  const listedIds = new Set((policy.allow ?? []).filter((entry) => typeof entry === 'number'))
  const deny = members(policy.deny, roles)
  const forwardBots = policy.bots === 'forward'
  const forwardAnonymous = (policy.anonymous ?? (allow === undefined ? 'forward' : 'drop')) === 'forward'
  const text = policy.reply
  const replySpace = `{${deps.bot}}:users:r:`

  const refuse = (update: Update): Outcome<Verdict> => {
    const reply = text === undefined || update.userId === undefined ? undefined : replyTo(update, text)
    if (reply === undefined) return NOT_ALLOWED
    const withReply = drop('user_not_allowed', reply)
    return replyOnce(deps.store, replySpace + update.userId, USER_REPLY_PERIOD_MS, withReply, NOT_ALLOWED)
  }

  /** The rule that refuses the update's sender, or undefined. */
  const rule = (update: Update): string | undefined => {
    const user = update.userId
    if (user !== undefined && deny.has(user)) return 'deny'
    if (update.message?.sender_chat !== undefined) return forwardAnonymous ? undefined : 'anonymous'
    const bot = object(update.payload.from)?.is_bot === true && !(user !== undefined && listedIds.has(user))
    if (bot && !forwardBots) return 'bots'
    if (allow !== undefined && (user === undefined || !allow.has(user))) return 'allow'
    return undefined
  }

  return {
    name: 'users',
    shadow,
    run(exchange, update) {
      if (update.type === 'my_chat_member') return undefined
      const refused = rule(update)
      if (refused === undefined) return undefined
      exchange.detail = `users.${refused}`
      // An anonymous sender has no user of its own to answer once.
      return refused === 'anonymous' ? NOT_ALLOWED : refuse(update)
    },
  }
}
