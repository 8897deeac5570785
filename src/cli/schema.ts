/**
 * @module
 * `botgate schema`: the config's JSON Schema, generated from the schema the loader validates with,
 * so editors (for example with yaml-language-server) complete and check exactly what botgate
 * accepts.
 */

import type { TSchema } from '@sinclair/typebox'
import { configSchema } from '../config/schema.js'
import { REFERENCE_PATTERN } from '../config/source.js'
import { policySchema } from '../policy/schema.js'
import { parse } from './args.js'

export const summary = 'print the JSON Schema of the config (or of a policy file)'

export const help = `Usage: botgate schema [--policy]

Prints the JSON Schema (draft-07) of the gateway config, or with --policy of a policy file.
In an editor with yaml-language-server, reference it from the first line of your YAML:
  # yaml-language-server: $schema=./botgate.schema.json

An environment reference (\${NAME}, \${NAME:-default}) is accepted in place of any plain value
(a string, a number, true or false); what it stands for is checked when the file is loaded
(botgate check).

  --policy   the schema of policy files instead of the gateway config
`

/**
 * An environment reference, `${NAME}` or `${NAME:-default}`, anywhere in a string: the loader
 * replaces it before it validates (and turns `"8080"` into the integer a key wants), so in a
 * user's file it may stand for any scalar value. Not after a `$`: the loader reads `$${NAME}` as
 * the literal text `${NAME}`.
 */
const REFERENCE: Record<string, unknown> = {
  type: 'string',
  pattern: `(?:^|[^$])${REFERENCE_PATTERN}`,
  description: 'an environment reference, ${NAME} or ${NAME:-default}, replaced when the file is loaded',
}

/** Keywords a string must meet beyond being one; a string without them already admits a reference. */
const STRING_CONSTRAINTS = ['pattern', 'format', 'const', 'enum', 'minLength', 'maxLength']

const SCALAR_TYPES = ['string', 'integer', 'number', 'boolean']

/** Whether `schema`, or one branch of its `anyOf` (at any depth), meets `test`. */
function someBranch(
  schema: Record<string, unknown>,
  test: (branch: Record<string, unknown>) => boolean,
): boolean {
  if (!Array.isArray(schema.anyOf)) return test(schema)
  return schema.anyOf.some((branch) => isObject(branch) && someBranch(branch, test))
}

/** Whether a value schema admits some scalar: the values a reference may stand for. */
const takesScalar = (schema: Record<string, unknown>): boolean =>
  someBranch(
    schema,
    (branch) => SCALAR_TYPES.includes(branch.type as string) || 'const' in branch || 'enum' in branch,
  )

/** Whether a value schema admits every string, references included. */
const takesAnyString = (schema: Record<string, unknown>): boolean =>
  someBranch(
    schema,
    (branch) => branch.type === 'string' && !STRING_CONSTRAINTS.some((keyword) => keyword in branch),
  )

/** `schema` for a value in a user's file: as it is, or with a reference as one more choice. */
function admittingReferences(schema: unknown): unknown {
  if (!isObject(schema) || !takesScalar(schema) || takesAnyString(schema)) return schema
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, REFERENCE] }
  const { description, title, default: fallback } = schema
  return {
    ...(title === undefined ? {} : { title }),
    ...(description === undefined ? {} : { description }),
    ...(fallback === undefined ? {} : { default: fallback }),
    anyOf: [schema, REFERENCE],
  }
}

/**
 * A plain JSON copy of a loader schema, as a user's YAML must match it: without botgate's own
 * `errorMessage` keyword (it is for the loader's messages); with a key that has a default left out
 * of its object's `required` list (the loader fills defaults in before it validates, so to it such
 * a key is always present; in a user's file it may be left out); and with an environment reference
 * accepted wherever a scalar value goes (see {@link REFERENCE}).
 */
export function jsonSchema(schema: TSchema, id: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema), (key, value: unknown) => {
    if (key === 'errorMessage') return undefined
    return isObject(value) ? withDefaultsOptional(withReferencesAdmitted(value)) : value
  })
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: id, ...plain }
}

/** An object or array schema whose property and item values admit references. */
function withReferencesAdmitted(schema: Record<string, unknown>): Record<string, unknown> {
  const { properties, items } = schema
  if (!isObject(properties) && items === undefined) return schema
  return {
    ...schema,
    ...(isObject(properties)
      ? {
          properties: Object.fromEntries(
            Object.entries(properties).map(([name, value]) => [name, admittingReferences(value)]),
          ),
        }
      : {}),
    ...(items === undefined ? {} : { items: admittingReferences(items) }),
  }
}

/** An object schema without the keys that have a default in its `required` list. */
function withDefaultsOptional(schema: Record<string, unknown>): Record<string, unknown> {
  const { properties, required } = schema
  if (!Array.isArray(required) || !isObject(properties)) return schema
  const left = required.filter(
    (name: unknown) =>
      !(typeof name === 'string' && isObject(properties[name]) && 'default' in properties[name]),
  )
  if (left.length > 0) return { ...schema, required: left }
  const { required: _dropped, ...rest } = schema
  return rest
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function run(args: readonly string[]): number {
  const { values } = parse(args, { policy: { type: 'boolean' } })
  const schema = values.policy
    ? jsonSchema(policySchema, 'urn:botgate:policy')
    : jsonSchema(configSchema, 'urn:botgate:config')
  process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`)
  return 0
}
