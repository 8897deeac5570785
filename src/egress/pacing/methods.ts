/**
 * @module
 * Which Bot API calls count as messages for pacing, and which chat a call targets.
 *
 * Telegram's flood limits (Bots FAQ, "My bot is hitting limits, how do I avoid this?") are about
 * messages sent: about 30 a second per bot, 1 a second per private chat, 20 a minute per group.
 * A call counts when it puts a new message into a chat: the methods named send*, copy* or
 * forward* that return the sent Message or MessageId (or an array of them), read off the Bot API
 * spec (a unit test keeps this list equal to that rule over /work/shared/telegram/api.json).
 * Not counted: sendChatAction (a status, not a message), sendMessageDraft and
 * sendRichMessageDraft (ephemeral previews streamed many times a second), sendGift and
 * sendChatJoinRequestWebApp (no message), and edits (editMessage*): their limits are separate and
 * undocumented, and pacing a live-location or progress edit at 20 a minute would break it; a 429
 * on an edit still pauses its chat and is retried like any other.
 *
 * Uncounted calls pass without taking budget, but a chat-bound one still keeps its place in the
 * chat's order (one call per chat in flight).
 */

import type { ChatTarget } from './call.js'

export const MESSAGE_METHODS: ReadonlySet<string> = new Set([
  'sendMessage',
  'forwardMessage',
  'forwardMessages',
  'copyMessage',
  'copyMessages',
  'sendPhoto',
  'sendLivePhoto',
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
  'sendRichMessage',
  'sendInvoice',
  'sendGame',
])

/** A chat id as Bot API calls carry it: a negative integer or an @username is a group or channel. */
const USERNAME = /^@[A-Za-z0-9_]{1,64}$/
const INTEGER = /^-?[0-9]{1,20}$/

/**
 * The chat a call's `chat_id` names (a number, or a string of digits or an @username, as form and
 * JSON bodies carry it); undefined when the call has none or it is not a chat id.
 */
export function chatTarget(chatId: unknown): ChatTarget {
  if (typeof chatId === 'number') {
    if (!Number.isSafeInteger(chatId) || chatId === 0) return undefined
    return { id: String(chatId), kind: chatId < 0 ? 'group' : 'private' }
  }
  if (typeof chatId !== 'string') return undefined
  if (USERNAME.test(chatId)) return { id: chatId.toLowerCase(), kind: 'group' }
  if (!INTEGER.test(chatId) || /^-?0+$/.test(chatId)) return undefined
  return { id: chatId, kind: chatId.startsWith('-') ? 'group' : 'private' }
}
