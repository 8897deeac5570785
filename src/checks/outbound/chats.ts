/**
 * @module
 * `outbound.chats`: which chats the bot may act in through its Bot API calls (the egress and the
 * webhook answers botgate executes). A method's chat arguments (`chat_id`, and `from_chat_id` of
 * forwards and copies; read off the Bot API spec, src/telegram/generated/bot-methods.ts) must each
 * name a chat of the list that applies: `allow` for every method, or the method's own list under
 * `methods`. A list holds chat ids, @usernames, `heard_from` (a chat from which botgate forwarded
 * an update to the bot, see ./heard.ts) and `any` (no limit). A call naming another chat is
 * refused with Telegram's 403 and reason `chat_not_allowed`.
 *
 * A method without a chat argument (answerCallbackQuery, getMe) is not limited; nor is a call that
 * names no chat (editMessageText by inline_message_id). A call whose chat cannot be read (an upload
 * whose chat_id comes after its file, a JSON body too large to read first) is refused when its
 * method takes a chat argument: reason `chat_unreadable`.
 *
 * `heard_from` knows chats by id: a call to an @username passes only when the list names it.
 */

import { type Static, Type } from '@sinclair/typebox'
import { DURATION_PATTERN, parseDuration } from '../../config/units.js'
import { closestMatch } from '../../config/validate.js'
import type { Store } from '../../store/index.js'
import { type CallBody, fieldValues } from '../../telegram/call-body.js'
import { BOT_METHODS, CHAT_ARGUMENTS } from '../../telegram/generated/bot-methods.js'
import { BOT_API_VERSION } from '../../telegram/generated/update-types.js'
import { canonicalMethod } from '../../telegram/methods.js'
import { heardFrom } from './heard.js'

const CHAT_ENTRY_MESSAGE = 'must be heard_from, any, a chat id (an integer) or an @username'

const chatEntry = Type.Union(
  [
    Type.Literal('heard_from'),
    Type.Literal('any'),
    Type.Integer({ minimum: -(2 ** 53 - 1), maximum: 2 ** 53 - 1 }),
    Type.String({ pattern: '^@[A-Za-z0-9_]{1,64}$' }),
  ],
  { errorMessage: CHAT_ENTRY_MESSAGE },
)

const chatList = (description: string) =>
  Type.Array(chatEntry, {
    minItems: 1,
    uniqueItems: true,
    description,
    errorMessage: `must be a list: each ${CHAT_ENTRY_MESSAGE}`,
  })

export const outboundChatsSchema = Type.Object(
  {
    allow: Type.Optional(
      chatList(
        'The chats every method with a chat argument (chat_id, from_chat_id) may name: heard_from (chats that sent the bot an update), chat ids, @usernames, or any.',
      ),
    ),
    methods: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[A-Za-z]{1,64}$' }),
        chatList("This method's own list, instead of allow."),
        {
          description:
            'Per method (a Bot API method name), a list of its own instead of allow, e.g. { forwardMessage: [heard_from, -1001234567890] }.',
        },
      ),
    ),
    heard_from_ttl: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        description: 'How long a chat counts as heard from after its last update. Default: 30d.',
        errorMessage: 'must be a duration like 30d',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Which chats the bot may act in through its Bot API calls (the egress and executed webhook answers).',
  },
)

export type OutboundChatsPolicy = Static<typeof outboundChatsSchema>

export const DEFAULT_HEARD_FROM_TTL = '30d'

type Entry = Static<typeof chatEntry>

const CHAT_ARGS = new Map(Object.entries(CHAT_ARGUMENTS).map(([name, args]) => [name.toLowerCase(), args]))

/** The chat arguments of a method (any case), empty when it takes none. */
export function chatArguments(method: string): readonly string[] {
  return CHAT_ARGS.get(method.toLowerCase()) ?? []
}

/** Rules the schema cannot state, with the key path (under the policy) and message of each problem. */
export function outboundChatProblems(
  policy: OutboundChatsPolicy,
): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = []
  const at = ['outbound', 'chats']
  const lists: [(string | number)[], readonly Entry[]][] = []
  if (policy.allow !== undefined) lists.push([[...at, 'allow'], policy.allow])
  for (const [method, list] of Object.entries(policy.methods ?? {})) {
    const path = [...at, 'methods', method]
    const known = canonicalMethod(method)
    if (known === undefined) {
      const near = closestMatch(method, BOT_METHODS)
      const hint = near === undefined ? '' : ` (did you mean "${near}"?)`
      problems.push({ path, message: `"${method}" is not a Bot API method of ${BOT_API_VERSION}${hint}` })
    } else if (chatArguments(known).length === 0)
      problems.push({
        path,
        message: `${known} names no chat (it has no chat_id or from_chat_id): nothing to limit`,
      })
    lists.push([path, list])
  }
  for (const [path, list] of lists)
    if (list.includes('any') && list.length > 1)
      problems.push({ path: [...path], message: 'any allows every chat: list nothing else with it' })
  if (policy.allow === undefined && policy.methods === undefined)
    problems.push({ path: at, message: 'needs allow or methods (or remove chats to limit no chat)' })
  return problems
}

/** Whether a list, or any of them, uses heard_from (the gateway then records chats heard from). */
export function usesHeardFrom(policy: OutboundChatsPolicy | undefined): boolean {
  if (policy === undefined) return false
  return [policy.allow ?? [], ...Object.values(policy.methods ?? {})].some((list) =>
    list.includes('heard_from'),
  )
}

/** The TTL of heard-from marks, in ms. */
export function heardFromTtlMs(policy: OutboundChatsPolicy | undefined): number {
  return parseDuration(policy?.heard_from_ttl ?? DEFAULT_HEARD_FROM_TTL)
}

/** What a list says about one call's chats. */
export type ChatVerdict = 'chat_not_allowed' | 'chat_unreadable' | undefined

/**
 * The chat values a call names (`values`: every chat argument's, from query and body), or
 * `unreadable` when its body could not be read for them.
 */
export type CallChats = readonly unknown[] | 'unreadable'

export interface ChatLimits {
  /** The chat arguments limited for `method`: empty when nothing is checked for it. */
  argumentsOf(method: string): readonly string[]
  /**
   * The verdict on a call's chats; may ask the store (heard_from), and throws its StoreError.
   * `heard`: a chat known to be heard from without asking, the chat of the update a webhook
   * answer answers (botgate forwarded it just now; its mark may still be on its way to the store).
   */
  check(method: string, chats: CallChats, heard?: number): Promise<ChatVerdict>
}

/**
 * The chats a call read whole names in its body (`names`: its limited chat arguments), and the
 * body to send on. When chats are limited, a JSON body goes on as botgate parsed it: a body with a
 * duplicate `chat_id` key then names to Telegram the chat botgate checked, whichever duplicate
 * Telegram's parser would have kept. Form and multipart bodies give every duplicate, all checked.
 */
export function chatsInBody(
  parsed: CallBody,
  raw: Buffer,
  names: readonly string[],
): { readonly chats: unknown[]; readonly body: Buffer } {
  const chats = names.flatMap((name) => fieldValues(parsed, name))
  if (names.length === 0 || parsed.kind !== 'json') return { chats, body: raw }
  const body = Buffer.from(JSON.stringify(parsed.value))
  // The same bytes (compact JSON without duplicates, as frameworks send it): the body as it came.
  return { chats, body: body.equals(raw) ? raw : body }
}

interface CompiledList {
  readonly any: boolean
  readonly heard: boolean
  /** Chat ids as text, and @usernames lower-cased. */
  readonly chats: ReadonlySet<string>
}

function compileList(list: readonly Entry[]): CompiledList {
  const chats = new Set<string>()
  for (const entry of list)
    if (typeof entry === 'number') chats.add(String(entry))
    else if (entry.startsWith('@')) chats.add(entry.toLowerCase())
  return { any: list.includes('any'), heard: list.includes('heard_from'), chats }
}

/** A chat id as a call gives it: an integer, a string of one, or an @username (lower-cased). */
function chatKey(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined
  if (typeof value !== 'string') return undefined
  if (/^@[A-Za-z0-9_]{1,64}$/.test(value)) return value.toLowerCase()
  if (!/^-?[0-9]{1,16}$/.test(value)) return undefined
  const id = Number(value)
  return Number.isSafeInteger(id) ? String(id) : undefined
}

/** The limits of a bot's `outbound.chats`; undefined without one. */
export function createChatLimits(
  policy: OutboundChatsPolicy | undefined,
  deps: { readonly store: Store; readonly bot: string },
): ChatLimits | undefined {
  if (policy === undefined) return undefined
  const fallback = policy.allow === undefined ? undefined : compileList(policy.allow)
  const byMethod = new Map(
    Object.entries(policy.methods ?? {}).map(([method, list]) => [method.toLowerCase(), compileList(list)]),
  )
  const listOf = (method: string): CompiledList | undefined => {
    const list = byMethod.get(method.toLowerCase()) ?? fallback
    return list === undefined || list.any ? undefined : list
  }
  const allowed = async (list: CompiledList, value: unknown, heard: number | undefined): Promise<boolean> => {
    const key = chatKey(value)
    if (key === undefined) return false
    if (list.chats.has(key)) return true
    if (!list.heard || key.startsWith('@')) return false
    if (heard !== undefined && key === String(heard)) return true
    return heardFrom(deps.store, deps.bot, Number(key))
  }
  return {
    argumentsOf(method) {
      return listOf(method) === undefined ? [] : chatArguments(method)
    },
    async check(method, chats, heard) {
      const list = listOf(method)
      if (list === undefined || chatArguments(method).length === 0) return undefined
      if (chats === 'unreadable') return 'chat_unreadable'
      for (const value of chats) if (!(await allowed(list, value, heard))) return 'chat_not_allowed'
      return undefined
    },
  }
}
