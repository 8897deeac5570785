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

/** A plain JSON copy without botgate's own `errorMessage` keyword, which is for the loader's messages. */
export function jsonSchema(schema: TSchema, id: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema), (key, value: unknown) =>
    key === 'errorMessage' ? undefined : value,
  )
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: id, ...plain }
}

export function run(args: readonly string[]): number {
  const { values } = parse(args, { policy: { type: 'boolean' } })
  const schema = values.policy
    ? jsonSchema(policySchema, 'urn:botgate:policy')
    : jsonSchema(configSchema, 'urn:botgate:config')
  process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`)
  return 0
}
