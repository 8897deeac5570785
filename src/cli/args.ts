/**
 * @module
 * Argument parsing shared by the commands: node:util parseArgs with botgate's conventions
 * (`--config` defaulting to $BOTGATE_CONFIG, then ./gateway.yaml) and usage errors as exit code 2.
 */

import { type ParseArgsConfig, parseArgs } from 'node:util'

export class UsageError extends Error {
  override name = 'UsageError'
}

export const CONFIG_OPTION = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const

export function defaultConfigFile(given: string | undefined): string {
  return given ?? process.env.BOTGATE_CONFIG ?? 'gateway.yaml'
}

export function parse<T extends ParseArgsConfig['options']>(
  args: readonly string[],
  options: T,
  positionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: positionals, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}
