/**
 * @module
 * Policy section `updates`: how large an update may be (check 6), what it must look like (check
 * 8) and which update types the bot wants (check 9).
 *
 * The envelope (an integer `update_id` >= 0 and exactly one update-type key) is always required:
 * without it there is no update to evaluate, so it is enforced even in shadow mode and answered
 * 200 like every refused genuine delivery. Update types this gateway's Bot API version does not
 * know yet (Telegram adds some every few months) are governed by `unknown`, not by `allow`.
 */

import { type Static, Type } from '@sinclair/typebox'
import { parseSize, SIZE_PATTERN } from '../../config/units.js'
import { closestMatch } from '../../config/validate.js'
import type { UpdateCheck } from '../../pipeline/check.js'
import { drop } from '../../pipeline/verdict.js'
import { BOT_API_VERSION, UPDATE_TYPES } from '../../telegram/generated/update-types.js'
import { validateUpdate } from '../../telegram/schema.js'
import { SectionMode } from '../mode.js'

export const DEFAULT_MAX_BODY = '256KiB'

/** No Telegram update comes near this; shadow mode never reads past it. */
export const HARD_MAX_BODY = 4 * 1024 * 1024

export const updatesSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    allow: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Update types the bot receives (check 9); others are answered 200 and dropped. Absent: every type. Also what `botgate set-webhook` sends as allowed_updates.',
        errorMessage: { minItems: 'must list at least one update type (leave it out to allow every type)' },
      }),
    ),
    schema: Type.Union([Type.Literal('standard'), Type.Literal('strict'), Type.Literal('off')], {
      default: 'standard',
      description:
        'Check 8, against the Bot API spec: standard (types, the fields the gateway relies on, limits, entity ranges), strict (also every field the spec requires), off (the envelope only). Default: standard.',
      errorMessage: 'must be standard, strict or off',
    }),
    unknown: Type.Union([Type.Literal('forward'), Type.Literal('drop')], {
      default: 'forward',
      description: `Update types newer than this gateway's Bot API schema (${BOT_API_VERSION}): forward or drop. Default: forward.`,
      errorMessage: 'must be forward or drop',
    }),
    max_body: Type.String({
      pattern: SIZE_PATTERN,
      default: DEFAULT_MAX_BODY,
      description: 'Largest body accepted (check 6, else 413), e.g. 256KiB. Units: B, KB, KiB, MB, MiB.',
      errorMessage: 'must be a size like 256KiB, 64KB or 1MiB',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Which updates are accepted: size, shape and type.',
  },
)

export type UpdatesPolicy = Static<typeof updatesSchema>

const KNOWN_TYPES = new Set(UPDATE_TYPES)

/** Entries of `allow` that are not update types of this Bot API version, with their index. */
export function unknownUpdateTypes(allow: readonly string[]): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = []
  for (const [index, type] of allow.entries()) {
    if (KNOWN_TYPES.has(type)) continue
    const near = closestMatch(type, UPDATE_TYPES)
    problems.push({
      index,
      message: `"${type}" is not an update type of ${BOT_API_VERSION}${near === undefined ? '' : ` (did you mean "${near}"?)`}; newer types are governed by updates.unknown`,
    })
  }
  return problems
}

/** Bytes to read before refusing: the policy's limit, or up to the hard cap in shadow mode. */
export function bodyLimits(policy: UpdatesPolicy, shadow: boolean): { limit: number; readLimit: number } {
  const limit = parseSize(policy.max_body)
  return { limit, readLimit: shadow ? Math.max(limit, HARD_MAX_BODY) : limit }
}

/** Check 8's answer for an update without a readable envelope (see the module comment). */
export const INVALID_ENVELOPE = drop('invalid_update')

/** The section's values when a policy leaves it out. */
export const DEFAULT_UPDATES: UpdatesPolicy = {
  schema: 'standard',
  unknown: 'forward',
  max_body: DEFAULT_MAX_BODY,
}

const INVALID_UPDATE = drop('invalid_update')
const NOT_ALLOWED = drop('update_type_not_allowed')

/**
 * Check 8: the update against the schema generated from the Bot API spec (src/telegram/schema.ts).
 * The log says where and what (`schema: message.chat.id: expected Integer, got string`), never a value.
 */
export function createSchemaCheck(policy: UpdatesPolicy, shadow: boolean): UpdateCheck | undefined {
  const mode = policy.schema
  if (mode === 'off') return undefined
  return {
    name: 'updates',
    shadow,
    // Synchronous, and changes nothing: it may run while the blocks read is on its way.
    effects: 'none',
    run(exchange, update) {
      const problem = validateUpdate(update.raw, update.type, mode)
      if (problem === undefined) return undefined
      exchange.detail = `schema: ${problem.path}: ${problem.problem}`
      return INVALID_UPDATE
    },
  }
}

/**
 * Check 9: the update type. Returns undefined when every type passes (nothing to run per request).
 */
export function createUpdateTypeCheck(policy: UpdatesPolicy, shadow: boolean): UpdateCheck | undefined {
  const dropUnknown = policy.unknown === 'drop'
  if (policy.allow === undefined && !dropUnknown) return undefined
  const allowed = new Set(policy.allow ?? UPDATE_TYPES)
  return {
    name: 'updates',
    shadow,
    effects: 'none',
    run(_exchange, update) {
      if (allowed.has(update.type)) return undefined
      if (!KNOWN_TYPES.has(update.type) && !dropUnknown) return undefined
      return NOT_ALLOWED
    },
  }
}
