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
import { fieldValues, parseCallBody } from '../../telegram/call-body.js'
import { SectionMode } from '../mode.js'
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

/** The verdict on one webhook answer: undefined when it may go back to Telegram as it is. */
export type ReplyFilter = (
  contentType: string | undefined,
  body: Buffer,
) => 'reply_method_not_allowed' | undefined

/** Reads the method a webhook answer calls: a string, null for "calls nothing", undefined for "cannot tell". */
export function replyMethod(contentType: string | undefined, body: Buffer): string | null | undefined {
  if (body.length === 0) return null
  const parsed = parseCallBody(contentType, body)
  if (parsed === undefined) return undefined
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
 * The filter of webhook answers by {@link replyMethodFilter}. Without either section, answers
 * pass as they are (nothing to parse on the request path).
 */
export function createReplyFilter(
  policy: RepliesPolicy | undefined,
  outbound: OutboundPolicy | undefined,
): ReplyFilter | undefined {
  if (policy?.allow_methods === undefined && outbound === undefined) return undefined
  const allows = replyMethodFilter(policy, outbound)
  return (contentType, body) => {
    const method = replyMethod(contentType, body)
    if (method === null) return undefined
    return method !== undefined && allows(method) ? undefined : 'reply_method_not_allowed'
  }
}
