/**
 * @module
 * Policy section `replies`: which Bot API methods the upstream may call through its webhook
 * answer. Telegram executes a method given in a 2xx webhook answer as JSON,
 * x-www-form-urlencoded or multipart/form-data (Bot API, "Making requests when getting
 * updates"), so a compromised or buggy bot could act through the gateway's answer. With
 * `allow_methods` set, an answer whose method is not listed, or cannot be read, is replaced by
 * an empty 200: the update still counts as delivered, nothing is executed.
 */

import { type Static, Type } from '@sinclair/typebox'
import { StoreError } from '../../store/index.js'
import { type CallBody, fieldValues, parseCallBody } from '../../telegram/call-body.js'
import { SectionMode } from '../mode.js'
import { type ChatLimits, chatsInBody } from '../outbound/chats.js'
import { type MethodFilter, type OutboundPolicy, outboundFilter } from '../outbound/index.js'

export const repliesSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    allow_methods: Type.Optional(
      Type.Array(
        Type.String({
          pattern: '^[A-Za-z]+$',
          errorMessage: 'must be a Bot API method name like sendMessage',
        }),
        {
          description:
            'Bot API methods the upstream may call in its webhook answer (case-insensitive, as the Bot API). Absent: any.',
        },
      ),
    ),
  },
  { additionalProperties: false, description: 'What the upstream may answer through the webhook reply.' },
)

export type RepliesPolicy = Static<typeof repliesSchema>

/** Why a webhook answer is withheld: its method, or a chat `outbound.chats` does not allow. */
export type ReplyRefusal =
  | 'reply_method_not_allowed'
  | 'chat_not_allowed'
  | 'chat_unreadable'
  | 'store_unavailable'

/**
 * The verdict on one webhook answer: undefined when it may go back to Telegram as it is; `body`
 * when it goes back as botgate read it (JSON whose chats were checked); else refused, with the
 * method it named (undefined when it could not be read).
 */
export type ReplyVerdict =
  | undefined
  | { readonly kind: 'pass'; readonly body: Buffer }
  | { readonly kind: 'refused'; readonly reason: ReplyRefusal; readonly method: string | undefined }

/**
 * The filter of webhook answers. `heard`: the chat of the update being answered (heard from, for
 * `outbound.chats` lists with heard_from). A promise only when a chat has to be checked.
 */
export type ReplyFilter = (
  contentType: string | undefined,
  body: Buffer,
  heard?: number,
) => ReplyVerdict | Promise<ReplyVerdict>

/** Reads the method a webhook answer calls: a string, null for "calls nothing", undefined for "cannot tell". */
export function replyMethod(contentType: string | undefined, body: Buffer): string | null | undefined {
  if (body.length === 0) return null
  const parsed = parseCallBody(contentType, body)
  return parsed === undefined ? undefined : methodOf(parsed)
}

/** The `method` field of an answer read: null when it has none, undefined when it is no string. */
function methodOf(parsed: CallBody): string | null | undefined {
  const [method] = fieldValues(parsed, 'method')
  if (method === undefined) return null
  return typeof method === 'string' ? method : undefined
}

/**
 * The methods a webhook answer may call: those the policy's `outbound` section allows (the one
 * method filter the egress applies too), narrowed by `replies.allow_methods` when given.
 */
export function replyMethodFilter(
  policy: RepliesPolicy | undefined,
  outbound: OutboundPolicy | undefined,
): MethodFilter {
  const allows = outboundFilter(outbound)
  if (policy?.allow_methods === undefined) return allows
  const listed = new Set(policy.allow_methods.map((method) => method.toLowerCase()))
  return (method) => listed.has(method.toLowerCase()) && allows(method)
}

/**
 * The filter of webhook answers by {@link replyMethodFilter} and, with `chats` (the bot's
 * `outbound.chats`, ../outbound/chats.ts), by the chats the answer's call names: the limits the
 * egress applies to the same call, so Telegram executes no call the egress would refuse.
 * Without either section or chats, answers pass as they are (nothing to parse on the request path).
 */
export function createReplyFilter(
  policy: RepliesPolicy | undefined,
  outbound: OutboundPolicy | undefined,
  chats?: ChatLimits,
): ReplyFilter | undefined {
  if (policy?.allow_methods === undefined && outbound === undefined) return undefined
  const allows = replyMethodFilter(policy, outbound)
  const refused = (reason: ReplyRefusal, method: string | undefined): ReplyVerdict => ({
    kind: 'refused',
    reason,
    method,
  })
  return (contentType, body, heard) => {
    if (body.length === 0) return undefined
    const parsed = parseCallBody(contentType, body)
    const method = parsed === undefined ? undefined : methodOf(parsed)
    if (method === null) return undefined
    if (method === undefined || !allows(method)) return refused('reply_method_not_allowed', method)
    const names = chats?.argumentsOf(method) ?? []
    if (chats === undefined || names.length === 0 || parsed === undefined) return undefined
    const named = chatsInBody(parsed, body, names)
    return chats.check(method, named.chats, heard).then(
      (verdict): ReplyVerdict =>
        verdict !== undefined
          ? refused(verdict, method)
          : named.body === body
            ? undefined
            : { kind: 'pass', body: named.body },
      (error: unknown) => {
        // Fail closed: an answer whose chat cannot be checked is not passed on.
        if (error instanceof StoreError) return refused('store_unavailable', method)
        throw error
      },
    )
  }
}
