/**
 * @module
 * Replaces the bot's real token in what Telegram answers (file_path URLs, error descriptions,
 * redirects) with the bot's egress credential, so the token never reaches the bot. The stream
 * form keeps the last `token.length - 1` bytes of each chunk back, so a token split across chunks
 * is still found; it holds at most that many bytes beyond the chunk being passed on.
 */

import { Transform, type TransformCallback } from 'node:stream'

/** `text` with every `token` replaced by `replacement`. */
export function scrubText(text: string, token: string, replacement: string): string {
  return text.includes(token) ? text.split(token).join(replacement) : text
}

/** A stream that replaces every occurrence of `token` with `replacement`. */
export class TokenScrubber extends Transform {
  readonly #token: Buffer
  readonly #replacement: Buffer
  #held: Buffer = Buffer.alloc(0)

  constructor(token: string, replacement: string) {
    super()
    this.#token = Buffer.from(token)
    this.#replacement = Buffer.from(replacement)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const data = this.#held.length === 0 ? chunk : Buffer.concat([this.#held, chunk])
    const { out, rest } = this.#replace(data)
    // Keep back a tail that could be the start of a token split across chunks.
    const keep = Math.min(rest.length, this.#token.length - 1)
    this.#held = Buffer.from(rest.subarray(rest.length - keep))
    const pass = rest.subarray(0, rest.length - keep)
    for (const part of out) this.push(part)
    if (pass.length > 0) this.push(pass)
    done()
  }

  override _flush(done: TransformCallback): void {
    if (this.#held.length > 0) this.push(this.#held)
    done()
  }

  /** Parts up to the last complete token replaced, and the rest after it. */
  #replace(data: Buffer): { out: Buffer[]; rest: Buffer } {
    const out: Buffer[] = []
    let from = 0
    for (let at = data.indexOf(this.#token, from); at >= 0; at = data.indexOf(this.#token, from)) {
      out.push(data.subarray(from, at), this.#replacement)
      from = at + this.#token.length
    }
    return { out, rest: data.subarray(from) }
  }
}
