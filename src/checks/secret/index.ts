/**
 * @module
 * Check 4: the request carries `X-Telegram-Bot-Api-Secret-Token` exactly once, equal to the bot's
 * `secret_token` (the value given to setWebhook; Bot API "setWebhook", parameter secret_token).
 *
 * This is authentication, not policy: it has no section and no shadow mode, and it fails closed.
 */

import { timingSafeEqual } from 'node:crypto'
import type { RequestCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { reject } from '../../pipeline/verdict.js'

export const SECRET_HEADER = 'x-telegram-bot-api-secret-token'

/** Telegram's rule for secret tokens: 1-256 characters of A-Z, a-z, 0-9, _ and -. */
export const SECRET_CHARSET = /^[A-Za-z0-9_-]+$/

const BAD_SECRET = reject(401, 'bad_secret')

/**
 * Compares in constant time, so response timing does not reveal how many leading characters of a
 * guess were right. Only the length can differ observably, and it is not secret: Telegram's
 * format allows 1-256 characters and ours are at least 32.
 */
export function secretMatches(expected: Buffer, given: string): boolean {
  const candidate = Buffer.from(given, 'latin1')
  if (candidate.length !== expected.length) {
    timingSafeEqual(expected, expected)
    return false
  }
  return timingSafeEqual(expected, candidate)
}

export function createSecretCheck(secret: string): RequestCheck {
  const expected = Buffer.from(secret, 'latin1')
  return {
    name: 'secret',
    shadow: false,
    run(exchange: Exchange) {
      const given = exchange.incoming.headers[SECRET_HEADER]
      if (given === undefined) {
        exchange.detail = 'secret header missing'
        return BAD_SECRET
      }
      // Node joins a repeated header into "a, b"; a comma is outside the secret charset, so
      // "exactly one header" and "equal to the secret" are checked together, explicitly here.
      if (typeof given !== 'string' || given.includes(',')) {
        exchange.detail = 'secret header repeated'
        return BAD_SECRET
      }
      if (!secretMatches(expected, given)) {
        exchange.detail = 'secret header wrong'
        return BAD_SECRET
      }
      return undefined
    },
  }
}
