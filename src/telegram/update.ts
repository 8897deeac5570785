/**
 * @module
 * The update envelope (SPEC section 1): `{"update_id": N, "<type>": {...}}` with exactly one
 * update-type key, and the facts every later check shares, read once per request: the chat, the
 * sender and the commands.
 */

import { type Command, extractCommands } from './commands.js'
import { MESSAGE_UPDATE_TYPES } from './generated/update-types.js'

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
  /** The message, for message-bearing update types (derived from the Bot API spec). */
  readonly message: Record<string, unknown> | undefined
  /** The chat the update belongs to: `chat.id`, or `message.chat.id` of a callback query. */
  readonly chatId: number | undefined
  /** The user who caused it: `from.id`, or `user.id` (poll answers, reactions, business connections). */
  readonly userId: number | undefined
  /** The commands of a message-bearing update; empty for the others. */
  readonly commands: readonly Command[]
}

/**
 * What outlives the update checks, for the log line and the forward: facts only, no reference into
 * the parsed body, so that tree can be collected while the upstream answers rather than copied by
 * every young-generation collection meanwhile.
 */
export interface UpdateFacts {
  readonly id: number
  readonly type: string
  readonly chatId: number | undefined
  readonly userId: number | undefined
  /** The first command's name. */
  readonly command: string | undefined
  /** The message text or caption of a message-bearing update (logged only with `log.message_text`). */
  readonly text: string | undefined
}

export function factsOf(update: Update): UpdateFacts {
  const message = update.message
  const text = message === undefined ? undefined : (message.text ?? message.caption)
  return {
    id: update.id,
    type: update.type,
    chatId: update.chatId,
    userId: update.userId,
    command: update.commands[0]?.name,
    text: typeof text === 'string' ? text : undefined,
  }
}

/** Why an envelope is refused: for the log line, never for the answer. */
export type EnvelopeProblem =
  | 'update_id'
  | 'no_update_type'
  | 'several_update_types'
  | 'update_type_not_object'

const MESSAGE_TYPES = new Set(MESSAGE_UPDATE_TYPES)
const NO_COMMANDS: readonly Command[] = Object.freeze([])

function object(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** An `id` that is a safe integer (chat and user ids fit in 52 bits), else undefined. */
function idOf(holder: unknown): number | undefined {
  const id = object(holder)?.id
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : undefined
}

/**
 * Reads the envelope of a parsed JSON object and the facts of its update. Returns the problem
 * instead of throwing: a refused envelope is an ordinary outcome (a drop), not an exception.
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
  const payload = object(raw[type])
  if (payload === undefined) return 'update_type_not_object'
  const message = MESSAGE_TYPES.has(type) ? payload : undefined
  return {
    id,
    type,
    payload,
    raw,
    message,
    chatId: idOf(payload.chat) ?? idOf(object(payload.message)?.chat),
    userId: idOf(payload.from) ?? idOf(payload.user),
    commands: message === undefined ? NO_COMMANDS : extractCommands(message),
  }
}
