/**
 * @module
 * Policy section `updates`: how large an update may be (check 6) and what it must look like
 * (check 8). The envelope (an integer `update_id` >= 0 and exactly one update-type key) is
 * always required: without it there is no update to evaluate, so it is enforced even in shadow
 * mode and answered 200 like every refused genuine delivery.
 */

import { Type } from '@sinclair/typebox'
import { parseSize, SIZE_PATTERN } from '../../config/units.js'
import { drop } from '../../pipeline/verdict.js'
import { SectionMode } from '../mode.js'

export const DEFAULT_MAX_BODY = '256KiB'

/** No Telegram update comes near this; shadow mode never reads past it. */
export const HARD_MAX_BODY = 4 * 1024 * 1024

export const updatesSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    max_body: Type.String({
      pattern: SIZE_PATTERN,
      default: DEFAULT_MAX_BODY,
      description: 'Largest body accepted (check 6, else 413), e.g. 256KiB. Units: B, KB, KiB, MB, MiB.',
      errorMessage: 'must be a size like 256KiB, 64KB or 1MiB',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Which updates are accepted: size and shape.' },
)

export interface UpdatesPolicy {
  readonly mode?: 'enforce' | 'shadow'
  readonly max_body: string
}

/** Bytes to read before refusing: the policy's limit, or up to the hard cap in shadow mode. */
export function bodyLimits(policy: UpdatesPolicy, shadow: boolean): { limit: number; readLimit: number } {
  const limit = parseSize(policy.max_body)
  return { limit, readLimit: shadow ? Math.max(limit, HARD_MAX_BODY) : limit }
}

/** Check 8's answer for an update without a readable envelope (see the module comment). */
export const INVALID_ENVELOPE = drop('invalid_update')
