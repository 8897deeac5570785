/**
 * @module
 * Schema validation with messages for people: TypeBox checks the value, and each of its errors is
 * turned into one sentence placed at the right line and column of the YAML source.
 */

import { Kind, type Static, type TSchema } from '@sinclair/typebox'
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors'
import { Value } from '@sinclair/typebox/value'
import { formatPath } from './errors.js'
import type { Segment, YamlSource } from './source.js'

/** JSON Schema keyword behind each error type, to pick a per-keyword `errorMessage`. */
const KEYWORDS: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.StringPattern]: 'pattern',
  [ValueErrorType.StringMinLength]: 'minLength',
  [ValueErrorType.StringMaxLength]: 'maxLength',
  [ValueErrorType.ArrayMinItems]: 'minItems',
  [ValueErrorType.ArrayMaxItems]: 'maxItems',
  [ValueErrorType.IntegerMinimum]: 'minimum',
  [ValueErrorType.IntegerMaximum]: 'maximum',
  [ValueErrorType.NumberMinimum]: 'minimum',
  [ValueErrorType.NumberMaximum]: 'maximum',
}

const KIND_NOUNS: Record<string, string> = {
  String: 'must be a string',
  Integer: 'must be an integer',
  Number: 'must be a number',
  Boolean: 'must be true or false',
  Array: 'must be a list',
  Object: 'must be a mapping',
}

function pointerSegments(pointer: string, value: unknown): Segment[] {
  if (pointer === '') return []
  const segments: Segment[] = []
  let node = value
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const segment: Segment = Array.isArray(node) && /^[0-9]+$/.test(key) ? Number(key) : key
    segments.push(segment)
    node = node === null || typeof node !== 'object' ? undefined : (node as Record<string, unknown>)[key]
  }
  return segments
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        previous + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
      previous = current
    }
  }
  return row[b.length] as number
}

/** The known word one or two edits away from `word` (case and _/- ignored), for "did you mean" hints. */
export function closestMatch(word: string, known: readonly string[]): string | undefined {
  const plain = (text: string) => text.toLowerCase().replace(/[_-]/g, '')
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of known) {
    const distance = levenshtein(plain(word), plain(candidate))
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** `did you mean "upstream"?` for a key (or name) one or two edits away from a known one, else the known list. */
export function suggestion(key: string, known: readonly string[]): string {
  const best = closestMatch(key, known)
  return best === undefined ? `; known keys: ${known.join(', ')}` : ` (did you mean "${best}"?)`
}

function customMessage(schema: TSchema, type: ValueErrorType): string | undefined {
  const custom: unknown = schema.errorMessage
  if (typeof custom === 'string') return custom
  if (custom !== null && typeof custom === 'object') {
    const keyword = KEYWORDS[type]
    const message = keyword === undefined ? undefined : (custom as Record<string, unknown>)[keyword]
    if (typeof message === 'string') return message
  }
  return undefined
}

function defaultMessage(error: ValueError): string {
  const schema = error.schema
  switch (error.type) {
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters`
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters`
    case ValueErrorType.StringPattern:
      return `must match ${schema.pattern}`
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${schema.minItems} entries`
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${schema.maxItems} entries`
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${schema.minimum}`
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${schema.maximum}`
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`
    default:
      return KIND_NOUNS[schema[Kind] as string] ?? error.message
  }
}

/** The union member the user evidently meant: the only one of the value's kind (mapping, list, string...). */
function intendedMember(union: TSchema, value: unknown): TSchema | undefined {
  const kind = Array.isArray(value)
    ? 'Array'
    : value === null
      ? 'Null'
      : typeof value === 'object'
        ? 'Object'
        : undefined
  if (kind === undefined) return undefined
  const members = (union.anyOf as TSchema[]).filter((member) => member[Kind] === kind)
  return members.length === 1 ? members[0] : undefined
}

interface Finding {
  readonly segments: Segment[]
  readonly message: string
  readonly at: 'key' | 'value'
}

function* findings(schema: TSchema, value: unknown, base: readonly Segment[]): Generator<Finding> {
  const missing = new Set<string>()
  const errors = [...Value.Errors(schema, value)]
  for (const error of errors)
    if (error.type === ValueErrorType.ObjectRequiredProperty) missing.add(error.path)
  for (const error of errors) {
    const segments = [...base, ...pointerSegments(error.path, value)]
    if (missing.has(error.path) && error.type !== ValueErrorType.ObjectRequiredProperty) continue
    switch (error.type) {
      case ValueErrorType.ObjectRequiredProperty:
        yield { segments, message: 'is required', at: 'value' }
        break
      case ValueErrorType.ObjectAdditionalProperties: {
        const key = String(segments[segments.length - 1])
        const known = Object.keys((error.schema.properties as Record<string, unknown> | undefined) ?? {})
        yield { segments, message: `unknown key "${key}"${suggestion(key, known)}`, at: 'key' }
        break
      }
      case ValueErrorType.Union: {
        const member = intendedMember(error.schema, error.value)
        if (member !== undefined) {
          // TypeBox fills a union member's defaults only when the member validates as a whole;
          // fill them here so a missing defaulted key is not reported next to the real problem.
          yield* findings(member, Value.Default(member, Value.Clone(error.value)), segments)
          break
        }
        yield { segments, message: customMessage(error.schema, error.type) ?? error.message, at: 'value' }
        break
      }
      default:
        yield {
          segments,
          message: customMessage(error.schema, error.type) ?? defaultMessage(error),
          at: 'value',
        }
    }
  }
}

/**
 * Converts scalars to the schema's types (an env-substituted `"8080"` where an integer is expected),
 * fills defaults, and checks. Problems are recorded on `source`; the result is undefined if any.
 * `base` places `value` inside the source document (for values nested in a larger file).
 */
export function validate<T extends TSchema>(
  schema: T,
  value: unknown,
  source: YamlSource,
  base: readonly Segment[] = [],
): Static<T> | undefined {
  const converted = Value.Default(schema, Value.Convert(schema, value))
  let ok = true
  const seen = new Set<string>()
  // A value already reported (an environment variable it names is not set) is not reported again
  // for what it became without it.
  const reported = new Set(source.issues.map((issue) => issue.path))
  for (const finding of findings(schema, converted, base)) {
    ok = false
    const key = `${finding.segments.join('\u0000')}\u0001${finding.message}`
    if (seen.has(key) || reported.has(formatPath(finding.segments))) continue
    seen.add(key)
    source.issue(finding.segments, finding.message, finding.at)
  }
  return ok ? (converted as Static<T>) : undefined
}
