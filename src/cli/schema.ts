/**
 * @module
 * `botgate schema`: the config's JSON Schema, generated from the schema the loader validates with,
 * so editors (for example with yaml-language-server) complete and check exactly what botgate
 * accepts.
 */

import type { TSchema } from '@sinclair/typebox'
import { configSchema } from '../config/schema.js'
import { policySchema } from '../policy/schema.js'
import { parse } from './args.js'

export const summary = 'print the JSON Schema of the config (or of a policy file)'

export const help = `Usage: botgate schema [--policy]

Prints the JSON Schema (draft-07) of the gateway config, or with --policy of a policy file.
In an editor with yaml-language-server, reference it from the first line of your YAML:
  # yaml-language-server: $schema=./botgate.schema.json

  --policy   the schema of policy files instead of the gateway config
`

/**
 * A plain JSON copy of a loader schema, as a user's YAML must match it: without botgate's own
 * `errorMessage` keyword (it is for the loader's messages), and with a key that has a default
 * left out of its object's `required` list. The loader fills defaults in before it validates, so
 * to it such a key is always present; in a user's file it may be left out.
 */
export function jsonSchema(schema: TSchema, id: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema), (key, value: unknown) => {
    if (key === 'errorMessage') return undefined
    if (isObject(value) && Array.isArray(value.required) && isObject(value.properties)) {
      const properties = value.properties
      const required = value.required.filter(
        (name: unknown) =>
          !(typeof name === 'string' && isObject(properties[name]) && 'default' in properties[name]),
      )
      if (required.length > 0) return { ...value, required }
      const { required: _dropped, ...rest } = value
      return rest
    }
    return value
  })
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: id, ...plain }
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
