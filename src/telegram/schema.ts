/**
 * @module
 * The update schema of SPEC section 4 (check 8): does an update have the shape the Bot API spec
 * gives its type? The checks are generated from the spec (scripts/gen-schema.mjs writes
 * ./generated/validators.ts), so a new Bot API version is a regeneration, not hand edits; this
 * module only chooses the mode and turns a failure into a log reason.
 *
 * Modes (policy `updates.schema`):
 * - `standard`: every known field present has the spec's type; the fields the gateway relies on
 *   are required; Telegram's limits hold (SPEC section 1); entities lie inside their text; unknown
 *   fields pass with the generic checks (no `__proto__`/`constructor`/`prototype` key, nesting at
 *   most MAX_DEPTH), since Telegram adds fields every month.
 * - `strict`: also every field the spec marks required.
 * - `off`: nothing beyond the envelope, which readEnvelope (./update.ts) already checked.
 *
 * A union member this version does not know (a newer `MessageOrigin`, `ChatMember`, ...) passes
 * with the generic checks, and so does the payload of an update type this version does not know:
 * whether to forward an unknown update type is policy `updates.unknown`'s decision, not a schema
 * failure. Both still refuse forbidden keys and excessive depth, which SPEC section 4 forbids
 * "anywhere".
 */

import { UPDATE_CHECKS } from './generated/validators.js'
import { type Fail, isForbiddenKey, walk } from './schema-runtime.js'

export type SchemaMode = 'standard' | 'strict' | 'off'

/** A reason for the log line: a JSON-ish path and a short problem, NEVER containing user content (no values). */
export interface SchemaProblem {
  readonly path: string
  readonly problem: string
}

/** The shape of the field names Telegram uses; other keys are not echoed into a log line. */
const FIELD_NAME = /^[A-Za-z0-9_]{1,64}$/

/** `message.entities[0].offset`: the path of a failure, outermost key first. */
function pathOf(type: string, fail: Fail): string {
  let path = FIELD_NAME.test(type) ? type : '<key>'
  for (let i = fail.segments.length - 1; i >= 0; i--) {
    const segment = fail.segments[i] as string | number
    if (typeof segment === 'number') path += `[${segment}]`
    else path += FIELD_NAME.test(segment) ? `.${segment}` : '.<key>'
  }
  return path
}

/**
 * Validates an update whose envelope readEnvelope accepted (`type` is its one update-type key).
 * Returns undefined when the update passes, and for update types this Bot API version does not
 * know unless they carry a forbidden key or nest too deep.
 */
export function validateUpdate(
  update: Record<string, unknown>,
  type: string,
  mode: SchemaMode,
): SchemaProblem | undefined {
  if (mode === 'off') return undefined
  // The update object is depth 1, its payload depth 2.
  const check = UPDATE_CHECKS.get(type)
  let fail: Fail | undefined
  if (check !== undefined) {
    fail = check(update[type], 2, mode === 'strict')
  } else if (isForbiddenKey(type)) {
    return { path: type, problem: 'forbidden key' }
  } else {
    fail = walk(update[type], 2)
  }
  return fail === undefined ? undefined : { path: pathOf(type, fail), problem: fail.problem }
}

/** Whether this Bot API version knows the update type (else policy `updates.unknown` applies). */
export function isKnownUpdateType(type: string): boolean {
  return UPDATE_CHECKS.has(type)
}
