/**
 * @module
 * Policy section `outbound`: which Bot API methods the bot may call, through the egress
 * (src/egress) and through its webhook answer (src/checks/replies) alike, so a policy says once
 * what the bot may do. `allow_methods` lists method names and named sets; `any` is every method
 * but the guarded ones. Methods that hand the bot's webhook or session to someone else
 * (`setWebhook`, `deleteWebhook`, `logOut`, `close`, `getUpdates`) are refused unless listed by
 * name, under `any` or a set too. Bot API method names are case-insensitive, so the filter compares
 * lower-cased names. `chats` limits the chats the calls may name (./chats.ts).
 */

import { type Static, Type } from '@sinclair/typebox'
import { outboundChatsSchema } from './chats.js'

/** Refused unless listed by name: each can take the bot's updates or session away from botgate. */
export const GUARDED_METHODS: readonly string[] = [
  'setWebhook',
  'deleteWebhook',
  'logOut',
  'close',
  'getUpdates',
]

/**
 * Named sets of methods (Bot API 10.1; a test checks every name against the vendored spec). Sets
 * overlap where a method belongs to both jobs (deleteMessage: messaging and moderation).
 */
export const METHOD_SETS: Readonly<Record<string, readonly string[]>> = {
  /** Talking to users: send, edit, delete and react to messages; answer queries; read files. */
  messaging: [
    'getMe',
    'getFile',
    'getChat',
    'getChatMember',
    'sendMessage',
    'forwardMessage',
    'forwardMessages',
    'copyMessage',
    'copyMessages',
    'sendPhoto',
    'sendAudio',
    'sendDocument',
    'sendVideo',
    'sendAnimation',
    'sendVoice',
    'sendVideoNote',
    'sendPaidMedia',
    'sendMediaGroup',
    'sendLocation',
    'sendVenue',
    'sendContact',
    'sendPoll',
    'sendChecklist',
    'sendDice',
    'sendSticker',
    'sendChatAction',
    'sendMessageDraft',
    'editMessageText',
    'editMessageCaption',
    'editMessageMedia',
    'editMessageLiveLocation',
    'stopMessageLiveLocation',
    'editMessageChecklist',
    'editMessageReplyMarkup',
    'stopPoll',
    'deleteMessage',
    'deleteMessages',
    'setMessageReaction',
    'pinChatMessage',
    'unpinChatMessage',
    'answerCallbackQuery',
    'answerInlineQuery',
    'answerWebAppQuery',
  ],
  /** Keeping a group in order: members, permissions, join requests, invite links, pins. */
  moderation: [
    'getChatAdministrators',
    'getChatMember',
    'getChatMemberCount',
    'banChatMember',
    'unbanChatMember',
    'restrictChatMember',
    'promoteChatMember',
    'setChatAdministratorCustomTitle',
    'banChatSenderChat',
    'unbanChatSenderChat',
    'setChatPermissions',
    'approveChatJoinRequest',
    'declineChatJoinRequest',
    'createChatInviteLink',
    'editChatInviteLink',
    'revokeChatInviteLink',
    'exportChatInviteLink',
    'deleteMessage',
    'deleteMessages',
    'pinChatMessage',
    'unpinChatMessage',
    'unpinAllChatMessages',
  ],
  /** Taking payments: invoices, checkout answers, Stars. */
  payments: [
    'sendInvoice',
    'createInvoiceLink',
    'answerShippingQuery',
    'answerPreCheckoutQuery',
    'getMyStarBalance',
    'getStarTransactions',
    'refundStarPayment',
    'editUserStarSubscription',
  ],
}

const SET_NAMES = ['any', ...Object.keys(METHOD_SETS)]

export const outboundSchema = Type.Object(
  {
    allow_methods: Type.Optional(
      Type.Array(
        Type.String({
          pattern: '^[A-Za-z]{1,64}$',
          errorMessage: `must be a Bot API method name like sendMessage, or a set: ${SET_NAMES.join(', ')}`,
        }),
        {
          uniqueItems: true,
          description: `Bot API methods the bot may call, through the egress and in its webhook answer: names and sets (${SET_NAMES.join(', ')}). setWebhook, deleteWebhook, logOut, close and getUpdates only when listed by name. Default: any.`,
        },
      ),
    ),
    chats: Type.Optional(outboundChatsSchema),
  },
  {
    additionalProperties: false,
    description: 'What the bot may call on the Bot API: through the egress and in its webhook answers.',
  },
)

export type OutboundPolicy = Static<typeof outboundSchema>

const GUARDED = new Set(GUARDED_METHODS.map((method) => method.toLowerCase()))

/** Whether `method` may be called. */
export type MethodFilter = (method: string) => boolean

/** The filter of an `allow_methods` list: method names, sets, and `any` (all but the guarded). */
export function compileMethodFilter(allow: readonly string[]): MethodFilter {
  const named = new Set<string>()
  let any = false
  for (const entry of allow) {
    if (entry === 'any') any = true
    else if (Object.hasOwn(METHOD_SETS, entry)) {
      for (const method of METHOD_SETS[entry] as readonly string[])
        if (!GUARDED.has(method.toLowerCase())) named.add(method.toLowerCase())
    } else named.add(entry.toLowerCase())
  }
  // Listed by name: allowed, guarded or not.
  for (const entry of allow) if (GUARDED.has(entry.toLowerCase())) named.add(entry.toLowerCase())
  return (method) => {
    const name = method.toLowerCase()
    return named.has(name) || (any && !GUARDED.has(name))
  }
}

/** The bot's method filter: its policy's `outbound`, or every method but the guarded ones. */
export function outboundFilter(policy: OutboundPolicy | undefined): MethodFilter {
  return compileMethodFilter(policy?.allow_methods ?? ['any'])
}
