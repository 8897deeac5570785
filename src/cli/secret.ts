/**
 * @module
 * `botgate secret`: a fresh secret token and path segment, from the OS's CSPRNG.
 */

import { randomBytes } from 'node:crypto'
import { parse } from './args.js'

export const summary = 'print a fresh secret token and a random webhook path segment'

export const help = `Usage: botgate secret [--json]

Prints a 64-character secret token (for secret_token and setWebhook's secret_token) and a
32-character random path segment (for the bot's path), both from Telegram's secret charset
A-Z a-z 0-9 _ - and 384 / 192 bits of randomness.

  --json   print {"secret_token": ..., "path_segment": ...}
`

/** 48 random bytes in base64url: exactly 64 characters of Telegram's secret charset. */
export function newSecret(): string {
  return randomBytes(48).toString('base64url')
}

/** 24 random bytes in base64url: 32 URL-safe characters. */
export function newPathSegment(): string {
  return randomBytes(24).toString('base64url')
}

export function run(args: readonly string[]): number {
  const { values } = parse(args, { json: { type: 'boolean' } })
  const secretToken = newSecret()
  const pathSegment = newPathSegment()
  if (values.json)
    process.stdout.write(`${JSON.stringify({ secret_token: secretToken, path_segment: pathSegment })}\n`)
  else process.stdout.write(`secret_token=${secretToken}\npath_segment=${pathSegment}\n`)
  return 0
}
