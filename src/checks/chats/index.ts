/**
 * @module
 * Policy section `chats`: which chats the bot serves. An update whose chat is of a type the policy
 * does not serve (`types`), is on `deny`, or is missing from `allow` when there is one, is dropped
 * with 200 and reason `chat_not_allowed` (a 200: the update is genuine, and any other answer would
 * be resent for a day and hold back the chat, SPEC section 1).
 *
 * `my_chat_member` always passes: it is how the bot learns that it was added to, or removed from, a
 * chat, and a bot that never hears of a refused group cannot leave it. Updates without a chat
 * (inline queries, chosen inline results, poll answers, payments' queries) have nothing to refuse
 * here and pass: `users` decides about their sender.
 *
 * `leave_reply` answers a refused group or supergroup once per chat per {@link LEAVE_REPLY_PERIOD_MS}
 * (through the store, so replicas share the mark), so its members learn why the bot is silent
 * without every message they send earning another answer. Private chats and channels get no reply:
 * a refused private user hears from `users.reply` if anything, and a channel has no one to read it.
 *
 * Sets are built once; per update this is a property read and two set lookups.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { Outcome, UpdateCheck } from '../../pipeline/check.js'
import { drop, type Verdict } from '../../pipeline/verdict.js'
import type { Store } from '../../store/index.js'
import type { Update } from '../../telegram/update.js'
import { SectionMode } from '../mode.js'
import { replyOnce } from '../reply-once.js'

/** The chat types of the Bot API's Chat.type. */
export const CHAT_TYPES = ['private', 'group', 'supergroup', 'channel'] as const

export type ChatType = (typeof CHAT_TYPES)[number]

/** How often a refused group hears `leave_reply` at most. */
export const LEAVE_REPLY_PERIOD_MS = 60 * 60 * 1000

const chatId = Type.Integer({
  minimum: -(2 ** 53 - 1),
  maximum: 2 ** 53 - 1,
  description: 'A Telegram chat id (groups and channels are negative: -100...).',
  errorMessage: 'must be a Telegram chat id (an integer)',
})

export const chatsSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    types: Type.Optional(
      Type.Array(Type.Union(CHAT_TYPES.map((type) => Type.Literal(type))), {
        minItems: 1,
        uniqueItems: true,
        description: 'The chat types the bot serves. Default: all (private, group, supergroup, channel).',
        errorMessage: 'must list chat types: private, group, supergroup, channel',
      }),
    ),
    allow: Type.Optional(
      Type.Array(chatId, {
        uniqueItems: true,
        description: 'When given, only these chats are served (their types must still be in types).',
      }),
    ),
    deny: Type.Optional(
      Type.Array(chatId, { uniqueItems: true, description: 'Chats never served, whatever allow says.' }),
    ),
    leave_reply: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'Optional answer in a refused group or supergroup, at most once an hour per chat, e.g. "This bot works in private chats only."',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Which chats the bot serves: chat types, and allow / deny lists of chat ids.',
  },
)

export type ChatsPolicy = Static<typeof chatsSchema>

/** Rules the schema cannot state, with the key path (under the policy) and message of each problem. */
export function chatProblems(policy: ChatsPolicy): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = []
  const denied = new Set(policy.deny ?? [])
  policy.allow?.forEach((id, index) => {
    if (denied.has(id))
      problems.push({ path: ['chats', 'allow', index], message: `chat ${id} is also on deny` })
  })
  if (policy.allow !== undefined && policy.allow.length === 0)
    problems.push({
      path: ['chats', 'allow'],
      message: 'an empty allow list serves no chat: remove it to serve all',
    })
  return problems
}

export interface ChatsDeps {
  readonly store: Store
  readonly bot: string
}

const NOT_ALLOWED = drop('chat_not_allowed')

/** The chat of an update: its payload's, or the message's of a callback query. */
function chatOf(update: Update): Record<string, unknown> | undefined {
  const payload = update.payload
  const chat = payload.chat ?? (payload.message as Record<string, unknown> | undefined)?.chat
  return typeof chat === 'object' && chat !== null ? (chat as Record<string, unknown>) : undefined
}

export function createChatsCheck(
  policy: ChatsPolicy | undefined,
  shadow: boolean,
  deps: ChatsDeps,
): UpdateCheck | undefined {
  if (policy === undefined) return undefined
  const types = new Set<string>(policy.types ?? CHAT_TYPES)
  const allow = policy.allow === undefined ? undefined : new Set(policy.allow)
  const deny = new Set(policy.deny ?? [])
  const leaveReply = policy.leave_reply
  const replySpace = `{${deps.bot}}:chats:r:`

  const refuse = (chatId: number, type: string): Outcome<Verdict> => {
    if (leaveReply === undefined || (type !== 'group' && type !== 'supergroup')) return NOT_ALLOWED
    const reply = drop('chat_not_allowed', { method: 'sendMessage', chat_id: chatId, text: leaveReply })
    return replyOnce(deps.store, replySpace + chatId, LEAVE_REPLY_PERIOD_MS, reply, NOT_ALLOWED)
  }

  return {
    name: 'chats',
    shadow,
    run(exchange, update) {
      if (update.type === 'my_chat_member' || update.chatId === undefined) return undefined
      const type = chatOf(update)?.type
      const id = update.chatId
      let rule: string | undefined
      if (typeof type !== 'string' || !types.has(type)) rule = 'types'
      else if (deny.has(id)) rule = 'deny'
      else if (allow !== undefined && !allow.has(id)) rule = 'allow'
      if (rule === undefined) return undefined
      exchange.detail = `chats.${rule}`
      return refuse(id, typeof type === 'string' ? type : '')
    },
  }
}
