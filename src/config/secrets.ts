/**
 * @module
 * Secrets in the config (SPEC section 2): every one can be given directly (typically from
 * `${ENV}`) or as `<key>_file: PATH` (Docker and Kubernetes secrets), never both. Files are read
 * relative to the config file and join the reload watch list, so a rotated secret reloads. The
 * webhook secrets are held to Telegram's charset and a minimum length; bot tokens to their shape.
 * No message ever quotes a secret's value.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { SECRET_CHARSET } from '../checks/secret/index.js'
import { errorCode } from './errors.js'
import type { KeyReader } from './keys.js'
import type { Segment, YamlSource } from './source.js'

/** Telegram allows 1-256 characters; we ask for at least 32 so a secret cannot be guessed (SPEC section 2). */
export const MIN_SECRET_LENGTH = 32
const MAX_SECRET_LENGTH = 256

/** A token from @BotFather: the bot's numeric id, a colon, then the secret part ("Authorizing your bot"). */
const BOT_TOKEN = /^[0-9]+:[A-Za-z0-9_-]+$/
const BOT_TOKEN_MESSAGE =
  'must be a bot token from @BotFather: digits, a colon, then letters, digits, _ and -'

/** Trims one trailing newline, as `echo secret > file` and Kubernetes secrets leave one. */
function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
}

/** Reads the secrets and files one config names, reporting problems on its source. */
export class SecretReader implements KeyReader {
  readonly source: YamlSource
  /** Every file read, absolute: the reload watch list. */
  readonly files: Set<string>

  constructor(source: YamlSource, files: Set<string>) {
    this.source = source
    this.files = files
  }

  /** `key` or `key_file`: exactly one of them, or neither when optional (`required` undefined). */
  secret(
    raw: Record<string, unknown>,
    at: readonly Segment[],
    key: string,
    required: string | undefined,
  ): string | undefined {
    const direct = raw[key] as string | undefined
    const file = raw[`${key}_file`] as string | undefined
    if (direct !== undefined && file !== undefined) {
      this.source.issue([...at, `${key}_file`], `give either ${key} or ${key}_file, not both`, 'key')
      return undefined
    }
    if (file !== undefined) {
      const absolute = path.resolve(path.dirname(this.source.file), file)
      this.files.add(absolute)
      try {
        return readSecretFile(absolute)
      } catch (error) {
        this.source.issue([...at, `${key}_file`], `cannot read ${file}: ${errorCode(error)}`)
        return undefined
      }
    }
    if (direct === undefined || direct === '') {
      if (required !== undefined)
        this.source.issue([...at, key], `${direct === undefined ? 'is required' : 'is empty'} ${required}`)
      return undefined
    }
    return direct
  }

  /** Telegram's secret charset and our minimum length; `minimum` 1 for secrets that only the bot checks. */
  secretRules(value: string, at: readonly Segment[], minimum: number): boolean {
    if (!SECRET_CHARSET.test(value)) {
      this.source.issue(at, "must use only A-Z, a-z, 0-9, _ and - (Telegram's secret_token charset)")
      return false
    }
    if (value.length < minimum) {
      this.source.issue(
        at,
        `is too weak: ${value.length} characters, at least ${minimum} required (botgate secret prints one)`,
      )
      return false
    }
    if (value.length > MAX_SECRET_LENGTH) {
      this.source.issue(at, `is too long: Telegram accepts at most ${MAX_SECRET_LENGTH} characters`)
      return false
    }
    return true
  }

  /** A Bot API token (`token` or `token_file`), checked for its shape, never quoted in messages. */
  botToken(
    raw: Record<string, unknown>,
    at: readonly Segment[],
    required: string | undefined,
  ): string | undefined {
    const token = this.secret(raw, at, 'token', required)
    if (token === undefined) return undefined
    if (!BOT_TOKEN.test(token)) {
      this.source.issue([...at, raw.token_file === undefined ? 'token' : 'token_file'], BOT_TOKEN_MESSAGE)
      return undefined
    }
    return token
  }

  /** A file named by the config (a certificate, a key), relative to it; joins the reload watch list. */
  file(file: string, at: readonly Segment[]): { absolute: string; text: string } | undefined {
    const absolute = path.resolve(path.dirname(this.source.file), file)
    this.files.add(absolute)
    try {
      return { absolute, text: readFileSync(absolute, 'utf8') }
    } catch (error) {
      this.source.issue(at, `cannot read ${file}: ${errorCode(error)}`)
      return undefined
    }
  }
}
