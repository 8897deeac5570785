/**
 * @module
 * A call made ready to send: its chat read (from the query, a body read whole, or a streamed
 * multipart body's head; ./upload.ts), for pacing per chat and for `outbound.chats`, and a
 * streamed body put behind its {@link UploadGuard}.
 *
 * When the call's chats are limited, a JSON body is sent as botgate serialised what it read: a
 * body with a duplicate `chat_id` key then names to Telegram the chat botgate checked, whichever
 * duplicate Telegram's parser would have kept.
 */

import type { Readable } from 'node:stream'
import { type CallChats, chatsInBody } from '../checks/outbound/chats.js'
import { boundaryOf, fieldValues, parseCallBody } from '../telegram/call-body.js'
import { type ChatTarget, chatTarget } from './pacing/index.js'
import { HEAD_LIMIT, multipartHead, readHead, UploadGuard } from './upload.js'

export interface PreparedCall {
  readonly body: Buffer | Readable | undefined
  readonly headers: Readonly<Record<string, string>>
  /** The chat that paces the call: its `chat_id`. */
  readonly chat: ChatTarget
  /** Every value of the limited chat arguments, or `unreadable`. */
  readonly chats: CallChats
  /** The guard of a streamed body: it says why it stopped one. */
  readonly guard: UploadGuard | undefined
}

/** What preparing reads of a call (./calls.ts, BotApiCall). */
export interface CallInput {
  /** The query string with its `?`, or ''. */
  readonly search: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer | Readable | undefined
}

export interface PrepareOptions {
  /** The chat arguments `outbound.chats` limits for this method; empty: none. */
  readonly limited: readonly string[]
  /** `egress.max_upload`. */
  readonly maxUpload: number
}

/** A declared length beyond the cap: the call is refused before a byte is sent. */
export const TOO_LARGE = 'too_large'

export async function prepareCall(
  call: CallInput,
  options: PrepareOptions,
): Promise<PreparedCall | typeof TOO_LARGE> {
  const query = new URLSearchParams(call.search)
  const { limited } = options
  const values: unknown[] = limited.flatMap((name) => query.getAll(name))
  const queryChat = query.get('chat_id') ?? undefined
  let body = call.body
  if (body === undefined)
    return { body, headers: call.headers, chat: chatTarget(queryChat), chats: values, guard: undefined }
  const type = call.headers['content-type']
  const length = Number(call.headers['content-length'])
  if (!(body instanceof Buffer)) {
    const stream = body as Readable
    if (Number.isSafeInteger(length) && length > options.maxUpload) return TOO_LARGE
    const boundary = (type ?? '').toLowerCase().startsWith('multipart/form-data')
      ? boundaryOf(type ?? '')
      : undefined
    if (boundary === undefined) {
      // A large JSON or form body, or one of another type: it streams unread.
      const guard = new UploadGuard({ maxBytes: options.maxUpload })
      stream.pipe(guard)
      const chats = limited.length > 0 ? 'unreadable' : values
      return { body: guard, headers: call.headers, chat: chatTarget(queryChat), chats, guard }
    }
    const { head, ended } = await readHead(
      stream,
      HEAD_LIMIT,
      (bytes) => multipartHead(bytes, boundary).complete,
    )
    if (ended) body = head
    else {
      const { fields } = multipartHead(head, boundary)
      const found = fields.filter((field) => limited.includes(field.name)).map((field) => field.value)
      const guard = new UploadGuard({
        maxBytes: options.maxUpload,
        ...(limited.length === 0
          ? {}
          : { watch: { boundary, names: new Set(limited), checked: found.length } }),
      })
      stream.pipe(guard)
      const chatId = fields.find((field) => field.name === 'chat_id')?.value ?? queryChat
      // No chat before the first file: the chat cannot be read (a later chat_id stops the body).
      const chats = found.length > 0 ? [...values, ...found] : limited.length > 0 ? 'unreadable' : values
      return { body: guard, headers: call.headers, chat: chatTarget(chatId), chats, guard }
    }
  }
  const parsed = body.length === 0 ? undefined : parseCallBody(type, body)
  if (parsed === undefined) {
    const chats = body.length > 0 && limited.length > 0 ? 'unreadable' : values
    return { body, headers: call.headers, chat: chatTarget(queryChat), chats, guard: undefined }
  }
  const named = chatsInBody(parsed, body, limited)
  values.push(...named.chats)
  const headers =
    named.body === body ? call.headers : { ...call.headers, 'content-length': String(named.body.length) }
  body = named.body
  const [chatId] = fieldValues(parsed, 'chat_id')
  return { body, headers, chat: chatTarget(chatId ?? queryChat), chats: values, guard: undefined }
}
