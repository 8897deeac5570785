/**
 * @module
 * The gateway's own webhook replies: when policy drops an update, the 200 answer can carry a Bot
 * API call that Telegram executes (Bot API, "Making requests when getting updates"), so the user
 * hears why without the gateway ever holding the bot token (SPEC section 3, "Replies").
 */

import type { WebhookReply } from '../pipeline/verdict.js'
import type { Update } from './update.js'

/**
 * `sendMessage` to the update's chat, or `answerCallbackQuery` for a callback query (a toast the
 * user sees on the button). Undefined when there is nobody to answer (no chat, no query id).
 */
export function replyTo(update: Update, text: string): WebhookReply | undefined {
  if (update.type === 'callback_query') {
    const id = update.payload.id
    return typeof id === 'string' ? { method: 'answerCallbackQuery', callback_query_id: id, text } : undefined
  }
  if (update.chatId === undefined) return undefined
  // A message in a business chat can only be answered through its business connection.
  const connection = update.message?.business_connection_id
  return typeof connection === 'string'
    ? { method: 'sendMessage', business_connection_id: connection, chat_id: update.chatId, text }
    : { method: 'sendMessage', chat_id: update.chatId, text }
}
