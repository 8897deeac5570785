/**
 * @module
 * Policy section `content`: what a message may carry. A message that breaks a rule is dropped with
 * 200 and reason `content_not_allowed`; the log line's `detail` names the rule (`content.args.report`,
 * `content.deny[2]`, `content.media.document`), never the text that broke it.
 *
 * What is inspected: the message of every message-bearing update type (its `text` or `caption`, their
 * entities, its media fields, `forward_origin`, `via_bot`), and for `deny` also `callback_query.data`
 * and `inline_query.query`. What is not: messages quoted inside it (`reply_to_message`,
 * `external_reply`, `quote`, `pinned_message`). Those were sent earlier, were checked then if they
 * came through this gateway, and a bot that acts on a quoted message's content reads it from there
 * on purpose; a forged update could hide a document in `reply_to_message`, and the bot must not
 * treat a reply's quoted media as the user's upload (docs/policies.md says so too).
 *
 * Patterns come from operators and run on hostile input, so they run on RE2 (re2js, a port of
 * Google's RE2): matching takes time linear in the input, whatever the pattern, and constructs that
 * cannot run in linear time (backreferences, lookaround) are refused when the policy loads.
 * `deny` patterns are joined into one alternation, so a message is scanned once whatever their
 * number; only a message that matches is scanned again to name the rule.
 *
 * Lengths are UTF-16 code units, as Telegram counts entity offsets and as JavaScript strings are
 * measured (Bot API, "MessageEntity").
 */

import { type Static, Type } from '@sinclair/typebox'
import { RE2JS } from 're2js'
import { parseSize, SIZE_PATTERN } from '../../config/units.js'
import type { UpdateCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { type Drop, drop } from '../../pipeline/verdict.js'
import type { Update } from '../../telegram/update.js'
import { dropOrForward, SectionMode } from '../mode.js'

/**
 * The kinds of content a message can carry, each a field of the Bot API's Message. A message whose
 * kind is not listed here (a kind newer than this list) is not refused by `media.allow`.
 */
export const MEDIA_KINDS = [
  'animation',
  'audio',
  'document',
  'paid_media',
  'photo',
  'sticker',
  'story',
  'video',
  'video_note',
  'voice',
  'contact',
  'dice',
  'game',
  'giveaway',
  'invoice',
  'location',
  'poll',
  'venue',
] as const

export type MediaKind = (typeof MEDIA_KINDS)[number]

/** Entity types that link somewhere or someone: what `links` counts (Bot API, "MessageEntity"). */
const LINK_ENTITIES = new Set(['url', 'text_link', 'mention', 'text_mention', 'email'])

const mediaKind = Type.Union(
  MEDIA_KINDS.map((kind) => Type.Literal(kind)),
  { errorMessage: `must be one of ${MEDIA_KINDS.join(', ')}` },
)

const pattern = (description: string) =>
  Type.String({
    minLength: 1,
    maxLength: 1000,
    description: `${description} RE2 syntax: linear-time, no backreferences.`,
  })

export const contentSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    max_text: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        description: 'The longest text or caption, in UTF-16 units as Telegram counts (Telegram: 4096).',
      }),
    ),
    args: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[A-Za-z0-9_]{1,32}$' }),
        Type.Object(
          {
            pattern: Type.Optional(pattern('The arguments (the text after the command) must match it.')),
            max_length: Type.Optional(
              Type.Integer({ minimum: 0, maximum: 4096, description: 'UTF-16 units.' }),
            ),
          },
          { additionalProperties: false },
        ),
        {
          description: "Per command, the arguments it accepts: { report: { pattern: '^[0-9]{1,10}$' } }.",
          errorMessage: 'must map command names to { pattern, max_length }',
        },
      ),
    ),
    deny: Type.Optional(
      Type.Array(
        pattern('A message whose text, caption, callback data or inline query matches is dropped.'),
        {
          uniqueItems: true,
        },
      ),
    ),
    links: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'The most url / text_link / mention / text_mention / email entities a message may carry.',
      }),
    ),
    media: Type.Optional(
      Type.Object(
        {
          allow: Type.Optional(
            Type.Array(mediaKind, {
              uniqueItems: true,
              description: 'The kinds a message may carry; others are dropped. [] allows text only.',
            }),
          ),
          max_size: Type.Optional(
            // Partial: a record keyed by a union of literals requires every key otherwise.
            Type.Partial(Type.Record(mediaKind, Type.String({ pattern: SIZE_PATTERN })), {
              additionalProperties: false,
              description: 'The largest file_size per kind, e.g. { document: 10MiB, photo: 5MiB }.',
              errorMessage: 'must map media kinds to sizes such as 10MiB',
            }),
          ),
          mime_types: Type.Optional(
            Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9.+-]+/[A-Za-z0-9.+*-]+$' }), {
              uniqueItems: true,
              description:
                'Documents: the MIME types allowed (type/* allowed), e.g. [application/pdf, image/*].',
            }),
          ),
          deny_extensions: Type.Optional(
            Type.Array(Type.String({ pattern: '^\\.[A-Za-z0-9_-]{1,16}$' }), {
              uniqueItems: true,
              description: 'Documents: file-name extensions refused, e.g. [.exe, .apk, .scr, .js, .bat].',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    forwarded: Type.Optional(
      dropOrForward('Messages forwarded from elsewhere (forward_origin). Default: forward.'),
    ),
    via_bot: Type.Optional(dropOrForward('Messages sent via an inline bot (via_bot). Default: forward.')),
  },
  {
    additionalProperties: false,
    description:
      'What a message may carry: lengths, command arguments, denied patterns, links, media, forwards.',
  },
)

export type ContentPolicy = Static<typeof contentSchema>

type Problem = { path: (string | number)[]; message: string }

/** An RE2 pattern, or the reason RE2 refuses it. */
function compile(source: string): RE2JS | string {
  try {
    return RE2JS.compile(source)
  } catch (error) {
    return `not an RE2 pattern: ${(error as Error).message}`
  }
}

/** Rules the schema cannot state: patterns RE2 cannot run. */
export function contentProblems(policy: ContentPolicy): Problem[] {
  const problems: Problem[] = []
  policy.deny?.forEach((source, index) => {
    const compiled = compile(source)
    if (typeof compiled === 'string') problems.push({ path: ['content', 'deny', index], message: compiled })
  })
  for (const [name, rule] of Object.entries(policy.args ?? {})) {
    const compiled = rule.pattern === undefined ? undefined : compile(rule.pattern)
    if (typeof compiled === 'string')
      problems.push({ path: ['content', 'args', name, 'pattern'], message: compiled })
  }
  return problems
}

function compiled(source: string): RE2JS {
  const pattern = compile(source)
  if (typeof pattern === 'string') throw new Error(pattern) // contentProblems refused it at load
  return pattern
}

/**
 * The body X of a pattern `^X$` whose anchors hold the whole pattern: no `|` outside a group or a
 * class (`^a|b$` is `(^a)|(b$)`) and no multi-line flag (under `(?m)`, `^` and `$` match at every
 * line). Otherwise undefined. Without `(?m)`, RE2's `$` matches at the end of the text only.
 */
export function fullMatchBody(source: string): string | undefined {
  if (source.length < 2 || source[0] !== '^' || source[source.length - 1] !== '$') return undefined
  // \Q...\E quotes what follows, brackets and bars included: left to the search.
  if (/\(\?[a-zA-Z]*m/.test(source) || source.includes('\\Q')) return undefined
  let depth = 0
  let inClass = false
  // Up to the final `$`: an odd run of backslashes before it would escape it.
  for (let i = 1; i < source.length - 1; i++) {
    const char = source[i]
    if (char === '\\') {
      i++
      if (i === source.length - 1) return undefined // the final $ is escaped: a literal
      continue
    }
    if (inClass) {
      if (char === ']') inClass = false
    } else if (char === '[') {
      inClass = true
      if (source[i + 1] === '^') i++
      if (source[i + 1] === ']') i++ // a leading ] is a literal
    } else if (char === '(') depth++
    else if (char === ')') depth--
    else if (char === '|' && depth === 0) return undefined
  }
  return inClass ? undefined : source.slice(1, -1)
}

/**
 * An argument rule's test. `^X$`, the usual shape of one, runs as a full match of X: the same
 * verdict, and re2js takes its one-pass path for it (a 60-character argument against a class of
 * 200: 0.8 us against 2.5 us as a search).
 */
function argumentTest(source: string): (text: string) => boolean {
  const body = fullMatchBody(source)
  if (body === undefined) {
    const pattern = compiled(source)
    return (text) => pattern.test(text)
  }
  const pattern = compiled(`(?:${body})`)
  return (text) => pattern.matches(text)
}

function object(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** The largest `file_size` of a media field: one object, or the sizes of a photo. */
function fileSize(value: unknown): number {
  if (Array.isArray(value))
    return value.reduce((largest: number, size) => Math.max(largest, fileSize(size)), 0)
  const size = object(value)?.file_size
  return typeof size === 'number' ? size : 0
}

/** `invoice.PDF.exe. ` -> `.exe`: Windows drops trailing dots and spaces when it saves a file. */
function extensionOf(name: string): string {
  const trimmed = name.replace(/[. ]+$/, '').toLowerCase()
  const dot = trimmed.lastIndexOf('.')
  return dot < 0 ? '' : trimmed.slice(dot)
}

const NOT_ALLOWED: Drop = drop('content_not_allowed')

export function createContentCheck(
  policy: ContentPolicy | undefined,
  shadow: boolean,
): UpdateCheck | undefined {
  if (policy === undefined) return undefined
  const maxText = policy.max_text
  const args = new Map(
    Object.entries(policy.args ?? {}).map(([name, rule]) => [
      name.toLowerCase(),
      {
        pattern: rule.pattern === undefined ? undefined : argumentTest(rule.pattern),
        maxLength: rule.max_length,
      },
    ]),
  )
  const deny = (policy.deny ?? []).map(compiled)
  // One scan for all deny patterns; RE2 scopes flags such as (?i) to their group.
  const anyDenied =
    deny.length === 0 ? undefined : compiled((policy.deny ?? []).map((source) => `(?:${source})`).join('|'))
  const links = policy.links
  const media = policy.media
  const allowedKinds = media?.allow === undefined ? undefined : new Set<string>(media.allow)
  const maxSizes = Object.entries(media?.max_size ?? {}).map(
    ([kind, size]) => [kind, parseSize(size as string)] as const,
  )
  const mimeTypes = media?.mime_types?.map((type) => type.toLowerCase())
  const deniedExtensions = new Set(media?.deny_extensions?.map((extension) => extension.toLowerCase()))
  const dropForwarded = policy.forwarded === 'drop'
  const dropViaBot = policy.via_bot === 'drop'

  const refuse = (exchange: Exchange, rule: string): Drop => {
    exchange.detail = `content.${rule}`
    return NOT_ALLOWED
  }

  /** The deny rule a text matches, or undefined. */
  const deniedBy = (text: unknown): string | undefined => {
    if (anyDenied === undefined || typeof text !== 'string' || text.length === 0 || !anyDenied.test(text))
      return undefined
    const index = deny.findIndex((pattern) => pattern.test(text))
    return `deny[${index}]`
  }

  const mimeAllowed = (mime: unknown): boolean => {
    if (mimeTypes === undefined) return true
    if (typeof mime !== 'string') return false
    const type = (mime.split(';')[0] as string).trim().toLowerCase()
    const family = `${type.split('/')[0]}/*`
    return mimeTypes.includes(type) || mimeTypes.includes(family)
  }

  const inspectMedia = (exchange: Exchange, message: Record<string, unknown>): Drop | undefined => {
    // An animation (GIF) comes with a document field too, for older clients (Bot API, "Message").
    const animation = message.animation !== undefined
    for (const kind of MEDIA_KINDS) {
      if (message[kind] === undefined || (kind === 'document' && animation)) continue
      if (allowedKinds !== undefined && !allowedKinds.has(kind)) return refuse(exchange, `media.${kind}`)
    }
    for (const [kind, max] of maxSizes) {
      if (message[kind] !== undefined && fileSize(message[kind]) > max)
        return refuse(exchange, `media.max_size.${kind}`)
    }
    const document = animation ? undefined : object(message.document)
    if (document !== undefined) {
      if (!mimeAllowed(document.mime_type)) return refuse(exchange, 'media.mime_types')
      const name = document.file_name
      if (deniedExtensions.size > 0 && typeof name === 'string' && deniedExtensions.has(extensionOf(name)))
        return refuse(exchange, 'media.deny_extensions')
    }
    return undefined
  }

  const inspectMessage = (
    exchange: Exchange,
    update: Update,
    message: Record<string, unknown>,
  ): Drop | undefined => {
    const text = typeof message.text === 'string' ? message.text : message.caption
    if (maxText !== undefined && typeof text === 'string' && text.length > maxText)
      return refuse(exchange, 'max_text')
    for (const command of update.commands) {
      const rule = args.get(command.name)
      if (rule === undefined) continue
      if (rule.maxLength !== undefined && command.args.length > rule.maxLength)
        return refuse(exchange, `args.${command.name}`)
      if (rule.pattern !== undefined && !rule.pattern(command.args))
        return refuse(exchange, `args.${command.name}`)
    }
    const denied = deniedBy(message.text) ?? deniedBy(message.caption)
    if (denied !== undefined) return refuse(exchange, denied)
    if (links !== undefined) {
      let count = 0
      for (const list of [message.entities, message.caption_entities]) {
        if (!Array.isArray(list)) continue
        for (const entity of list) if (LINK_ENTITIES.has(object(entity)?.type as string)) count++
      }
      if (count > links) return refuse(exchange, 'links')
    }
    if (media !== undefined) {
      const refused = inspectMedia(exchange, message)
      if (refused !== undefined) return refused
    }
    // forward_date: how forwards were marked before Bot API 7.0; a bot's older library may still read it.
    if (dropForwarded && (message.forward_origin !== undefined || message.forward_date !== undefined))
      return refuse(exchange, 'forwarded')
    if (dropViaBot && message.via_bot !== undefined) return refuse(exchange, 'via_bot')
    return undefined
  }

  return {
    name: 'content',
    shadow,
    // Synchronous, and changes nothing but the log detail of its verdict: it may run while the
    // dedupe claim is on its way (src/pipeline/run.ts).
    effects: 'none',
    run(exchange, update) {
      if (update.message !== undefined) return inspectMessage(exchange, update, update.message)
      if (anyDenied === undefined) return undefined
      const text =
        update.type === 'callback_query'
          ? update.payload.data
          : update.type === 'inline_query'
            ? update.payload.query
            : undefined
      const denied = deniedBy(text)
      return denied === undefined ? undefined : refuse(exchange, denied)
    },
  }
}
