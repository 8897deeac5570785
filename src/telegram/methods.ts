/**
 * @module
 * Bot API method names as the spec spells them. Telegram's Bot API server percent-decodes the
 * request path and lower-cases the method before it looks it up (tdlib/telegram-bot-api,
 * HttpReader::parse_url and Query::Query), so `sendmessage`, `SENDMESSAGE` and `sendMessage` are
 * one method. botgate filters, paces, logs and counts a call by that one spelling, and refuses a
 * name that is not plain letters (a `%6B` or a `#` would be a second spelling Telegram decodes).
 */

import { BOT_METHODS } from './generated/bot-methods.js'

/** A method name as botgate accepts it in a call: ASCII letters, as every Bot API method is. */
export const METHOD_NAME = /^[A-Za-z]{1,64}$/

/** Lower-cased name -> the spec's spelling. */
const CANONICAL = new Map(BOT_METHODS.map((name) => [name.toLowerCase(), name]))

/** The spec's spelling of `method`, in any case; undefined for a name the spec does not know. */
export function canonicalMethod(method: string): string | undefined {
  return CANONICAL.get(method.toLowerCase())
}

/**
 * The method for metrics: its canonical name, or `other` for a name the spec does not know, so
 * made-up names or spellings cannot grow a label's values beyond the spec's methods.
 */
export function methodLabel(method: string | undefined): string {
  return (method === undefined ? undefined : canonicalMethod(method)) ?? 'other'
}

/** The method for a log line: canonical; a plain name the spec does not know as given; else none. */
export function methodForLog(method: string | undefined): string | undefined {
  if (method === undefined) return undefined
  return canonicalMethod(method) ?? (METHOD_NAME.test(method) ? method : undefined)
}
