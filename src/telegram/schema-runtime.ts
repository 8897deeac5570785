/**
 * @module
 * The building blocks of the generated update validator (src/telegram/generated/validators.ts,
 * written by scripts/gen-schema.mjs from the Bot API spec). The generated code holds one function
 * per Bot API type; what every type needs the same way lives here once: the failure value, the
 * generic walk of fields this Bot API version does not know, arrays, the depth bound, the
 * forbidden keys, and the limits of SPEC section 1 (lengths, bytes, entity ranges, 52-bit ids).
 *
 * A check returns `undefined` for a valid value and a {@link Fail} otherwise, so a valid update
 * allocates nothing; the path of a failure is built only while it unwinds.
 */

/** A parsed JSON object. */
export type Obj = Record<string, unknown>

/**
 * One generated check. `depth` is the nesting depth of `value` (the update object is 1, its
 * payload 2); `strict` requires every field the spec marks required (SPEC section 4, `strict`).
 */
export type Check = (value: unknown, depth: number, strict: boolean) => Fail | undefined

/**
 * The deepest nesting accepted, counting every object and array (the update itself is 1). The
 * deepest sample of the corpus is 12 (a rich message with a table of formatted text); lists,
 * quotes and details nest further in rich messages, so 64 leaves room for any genuine update. It
 * stays well below the recursion limits of the parsers behind the bots (serde_json stops at 128),
 * and it bounds this validator's own recursion: no check descends past it, so a 10,000-level body
 * costs 64 frames, not a stack overflow.
 */
export const MAX_DEPTH = 64

/**
 * A value that does not have the shape the Bot API spec gives it. `problem` names what is wrong
 * without quoting the value (a log line must never carry user content).
 */
export class Fail {
  /** The path to the offending value, innermost segment first: each caller adds its own key. */
  readonly segments: (string | number)[] = []

  constructor(readonly problem: string) {}

  /** Adds the key or index under which the caller found the failing value. */
  at(segment: string | number): Fail {
    this.segments.push(segment)
    return this
  }
}

/** A key that would reach an object's prototype in a careless consumer (prototype pollution). */
export function isForbiddenKey(key: string): boolean {
  return key === '__proto__' || key === 'constructor' || key === 'prototype'
}

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The JSON type of a value, for a problem text: never the value itself. */
function jsonType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return 'integer'
    return Number.isInteger(value) ? 'integer beyond 2^53' : 'number'
  }
  return typeof value
}

/** The value is not of the spec's type `expected` (a Bot API type name such as `Integer`). */
export function mismatch(value: unknown, expected: string): Fail {
  return new Fail(`expected ${expected}, got ${jsonType(value)}`)
}

/** A required field is absent. */
export function missing(key: string): Fail {
  return new Fail('missing').at(key)
}

/** The value is nested deeper than {@link MAX_DEPTH}. */
export function tooDeep(): Fail {
  return new Fail(`nested deeper than ${MAX_DEPTH}`)
}

/**
 * The generic checks every value gets, whatever its type: no forbidden key at any depth and no
 * nesting past {@link MAX_DEPTH}. Used for fields, union members and update types this Bot API
 * version does not know, so they pass (Telegram adds them every month) but cannot smuggle a
 * prototype key or an unbounded nesting past the gateway.
 */
export function walk(value: unknown, depth: number): Fail | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  if (depth > MAX_DEPTH) return tooDeep()
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], depth + 1)
      if (problem !== undefined) return problem.at(i)
    }
    return undefined
  }
  for (const key in value) {
    if (isForbiddenKey(key)) return new Fail('forbidden key').at(key)
    const problem = walk((value as Obj)[key], depth + 1)
    if (problem !== undefined) return problem.at(key)
  }
  return undefined
}

/** A field of an object at `depth` that the spec does not list for the object's type. */
export function otherField(key: string, value: unknown, depth: number): Fail | undefined {
  if (isForbiddenKey(key)) return new Fail('forbidden key').at(key)
  if (typeof value !== 'object' || value === null) return undefined
  const problem = walk(value, depth + 1)
  return problem === undefined ? undefined : problem.at(key)
}

/** `Array of X`: `value` at `depth` is an array and each item passes `item` one level deeper. */
export function arrayOf(
  value: unknown,
  depth: number,
  strict: boolean,
  item: Check,
  expected: string,
): Fail | undefined {
  if (!Array.isArray(value)) return mismatch(value, expected)
  if (depth > MAX_DEPTH) return tooDeep()
  for (let i = 0; i < value.length; i++) {
    const problem = item(value[i], depth + 1, strict)
    if (problem !== undefined) return problem.at(i)
  }
  return undefined
}

/** Integers are JSON numbers without a fraction that JavaScript holds exactly (safe integers). */
export const integerItem: Check = (value) =>
  Number.isSafeInteger(value) ? undefined : mismatch(value, 'Integer')
export const floatItem: Check = (value) => (typeof value === 'number' ? undefined : mismatch(value, 'Float'))
export const stringItem: Check = (value) =>
  typeof value === 'string' ? undefined : mismatch(value, 'String')
export const booleanItem: Check = (value) =>
  typeof value === 'boolean' ? undefined : mismatch(value, 'Boolean')

/**
 * Identifiers the spec says have "at most 52 significant bits" (chat and user ids, SPEC section
 * 1): a bot may store them in a double or an int64, so a larger one is not Telegram's.
 */
const MAX_ID = 2 ** 52 - 1

export function isId(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= -MAX_ID && (value as number) <= MAX_ID
}

/** The problem of an identifier that is not an integer of at most 52 bits. */
export function notAnId(value: unknown): Fail {
  return Number.isInteger(value) ? new Fail('more than 52 bits') : mismatch(value, 'Integer')
}

/**
 * Whether `text` has more than `max` characters (SPEC section 1: text 4096, caption 4096, inline
 * query 256). Telegram does not say which unit its "characters" are; this counts Unicode code
 * points, the larger reading, so no genuine text is refused whatever Telegram counts. A string of
 * at most `max` UTF-16 units has at most `max` code points, so the count runs only past that.
 */
export function longerThan(text: string, max: number): boolean {
  if (text.length <= max) return false
  let points = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    // A high surrogate followed by a low one is one code point: skip the low one.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) i++
    }
    if (++points > max) return true
  }
  return false
}

/** The problem of a text over its limit. */
export function tooLong(max: number): Fail {
  return new Fail(`longer than ${max} characters`)
}

/**
 * Whether `text` is `min` to `max` bytes in UTF-8 (SPEC section 1: `callback_data` is 1-64 bytes,
 * not characters). A UTF-16 unit is at most 3 UTF-8 bytes, so short strings need no count.
 */
export function bytesWithin(text: string, min: number, max: number): boolean {
  if (text.length >= min && text.length * 3 <= max) return true
  const bytes = Buffer.byteLength(text, 'utf8')
  return bytes >= min && bytes <= max
}

/** The problem of a string outside its byte range. */
export function notBytesWithin(min: number, max: number): Fail {
  return new Fail(`not ${min}-${max} bytes`)
}

/**
 * Each entity lies inside its text: offset >= 0, length > 0, offset + length <= text length, all
 * in UTF-16 code units (Bot API, MessageEntity: "Offset in UTF-16 code units"), which is how
 * JavaScript indexes strings. Entities without their text lie outside it. The generated checks
 * call this after every entity passed MessageEntity, whose offset and length are required.
 */
export function entityRanges(entities: readonly unknown[], text: string | undefined): Fail | undefined {
  const size = text === undefined ? 0 : text.length
  for (let i = 0; i < entities.length; i++) {
    const entity = entities[i] as Obj
    const offset = entity.offset as number
    const length = entity.length as number
    if (offset < 0 || length <= 0 || offset + length > size) return new Fail('outside its text').at(i)
  }
  return undefined
}

/** A member of a union whose discriminator this Bot API version does not know: a newer subtype. */
export function newerSubtype(value: Obj, depth: number): Fail | undefined {
  return walk(value, depth)
}
