/**
 * @module
 * The update envelope (SPEC section 1): `{"update_id": N, "<type>": {...}}` with exactly one
 * update-type key. Read once per request into {@link Update}, which every later check shares.
 */

/** The facts of one update that checks, logs and metrics use. */
export interface Update {
  /** `update_id`: an integer >= 0, the dedupe key. */
  readonly id: number
  /** The one key besides `update_id`: `message`, `callback_query`, ... */
  readonly type: string
  /** The object under {@link type}. */
  readonly payload: Record<string, unknown>
  /** The whole parsed body. */
  readonly raw: Record<string, unknown>
}

/** Why an envelope is refused: for the log line, never for the answer. */
export type EnvelopeProblem =
  | 'update_id'
  | 'no_update_type'
  | 'several_update_types'
  | 'update_type_not_object'

/**
 * Reads the envelope of a parsed JSON object. Returns the problem instead of throwing: a refused
 * envelope is an ordinary outcome (a drop), not an exception.
 */
export function readEnvelope(raw: Record<string, unknown>): Update | EnvelopeProblem {
  const id = raw.update_id
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return 'update_id'
  let type: string | undefined
  for (const key in raw) {
    if (key === 'update_id') continue
    if (type !== undefined) return 'several_update_types'
    type = key
  }
  if (type === undefined) return 'no_update_type'
  const payload = raw[type]
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    return 'update_type_not_object'
  return { id, type, payload: payload as Record<string, unknown>, raw }
}
