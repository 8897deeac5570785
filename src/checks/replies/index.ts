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
import { SectionMode } from '../mode.js'
import { type OutboundPolicy, outboundFilter } from '../outbound/index.js'

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

function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  return match?.[1] ?? match?.[2]
}

/** The `method` field of a multipart/form-data body (RFC 7578), or undefined when there is none. */
function multipartMethod(body: Buffer, boundary: string): string | undefined {
  const text = body.toString('latin1')
  const delimiter = `--${boundary}`
  for (const part of text.split(delimiter)) {
    const headerEnd = part.indexOf('\r\n\r\n')
    if (headerEnd < 0) continue
    const headers = part.slice(0, headerEnd)
    if (!/content-disposition:\s*form-data;[^\r\n]*\bname="?method"?(;|\s|$)/im.test(headers)) continue
    return part.slice(headerEnd + 4).replace(/\r\n$/, '')
  }
  return undefined
}

/** Reads the method a webhook answer calls: a string, null for "calls nothing", undefined for "cannot tell". */
export function replyMethod(contentType: string | undefined, body: Buffer): string | null | undefined {
  if (body.length === 0) return null
  const type = (contentType ?? '').toLowerCase()
  if (type.startsWith('application/json')) {
    try {
      const value: unknown = JSON.parse(body.toString('utf8'))
      if (typeof value !== 'object' || value === null) return undefined
      const method = (value as Record<string, unknown>).method
      if (method === undefined) return null
      return typeof method === 'string' ? method : undefined
    } catch {
      return undefined
    }
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    return new URLSearchParams(body.toString('utf8')).get('method')
  }
  if (type.startsWith('multipart/form-data')) {
    const boundary = boundaryOf(contentType ?? '')
    return boundary === undefined ? undefined : (multipartMethod(body, boundary) ?? null)
  }
  return undefined
}

/**
 * The filter of webhook answers: a method must pass the policy's `outbound` section (the one
 * method filter the egress applies too) and, when given, `replies.allow_methods` (which can only
 * narrow it). Without either section, answers pass as they are.
 */
export function createReplyFilter(
  policy: RepliesPolicy | undefined,
  outbound: OutboundPolicy | undefined,
): ReplyFilter | undefined {
  if (policy?.allow_methods === undefined && outbound === undefined) return undefined
  const listed =
    policy?.allow_methods === undefined
      ? undefined
      : new Set(policy.allow_methods.map((method) => method.toLowerCase()))
  const allows = outbound === undefined ? undefined : outboundFilter(outbound)
  return (contentType, body) => {
    const method = replyMethod(contentType, body)
    if (method === null) return undefined
    if (
      method !== undefined &&
      (listed === undefined || listed.has(method.toLowerCase())) &&
      (allows === undefined || allows(method))
    )
      return undefined
    return 'reply_method_not_allowed'
  }
}
