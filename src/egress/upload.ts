/**
 * @module
 * What botgate must know of a call's body before it sends it on, and the guard of a body that
 * streams (an upload).
 *
 * A streamed multipart body's head is read first, up to its first file (or {@link HEAD_LIMIT}):
 * the fields before the file give the call's chat, for pacing per chat and for `outbound.chats`.
 * The bytes read are put back into the stream (`unshift`), so the body still streams, whole, as
 * the bot sent it. A body that ends within the head is read whole instead.
 *
 * {@link UploadGuard} counts the bytes of a streamed body against `egress.max_upload`, and, when
 * the call's chats are limited, watches the parts after the head: one more part naming a chat
 * argument (a chat_id after the file, which the head could not check) stops the body. Stopping
 * fails the call before its last bytes reach Telegram, so Telegram never sees a complete request
 * and executes nothing; the bot gets Telegram's 413 or 403 shape.
 */

import type { Readable, TransformCallback } from 'node:stream'
import { Transform } from 'node:stream'
import { dispositionOf, multipartParts } from '../telegram/call-body.js'

/** Most bytes of a multipart body read before its first file: fields (a caption) fit in far less. */
export const HEAD_LIMIT = 64 * 1024

/** Longest part header block the guard looks for; a longer one is not a Bot API client's. */
const MAX_PART_HEADER = 8 * 1024

/** The fields of a multipart head, and whether the head reached the body's first file or its end. */
export interface MultipartHead {
  /** The complete non-file parts before the first file: name and value. */
  readonly fields: readonly { readonly name: string; readonly value: string }[]
  /** The head reached the first file or the body's closing delimiter: the fields are all before it. */
  readonly complete: boolean
}

/** The fields of the multipart body's first bytes `head`, up to its first file. */
export function multipartHead(head: Buffer, boundary: string): MultipartHead {
  const fields: { name: string; value: string }[] = []
  const parts = multipartParts(head, boundary)
  const closing = head.includes(`\r\n--${boundary}--`)
  for (const part of parts) {
    if (part.filename !== undefined) return { fields, complete: true }
    // The last part runs to the end of what was read: its value may go on.
    if (part.end >= head.length && !closing) return { fields, complete: false }
    if (part.name !== undefined) fields.push({ name: part.name, value: part.value.toString('utf8') })
  }
  return { fields, complete: closing }
}

/**
 * Reads `stream` until `enough(head)` or its end, or `limit` bytes. Undefined `rest`: the body
 * ended and `head` is all of it; else what was read is put back and the stream still holds it.
 */
export function readHead(
  stream: Readable,
  limit: number,
  enough: (head: Buffer) => boolean,
): Promise<{ readonly head: Buffer; readonly ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (ended: boolean) => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
      const head = Buffer.concat(chunks)
      if (!ended && head.length > 0) stream.unshift(head)
      resolve({ head, ended })
    }
    const onReadable = () => {
      for (
        let chunk = stream.read() as Buffer | null;
        chunk !== null;
        chunk = stream.read() as Buffer | null
      ) {
        chunks.push(chunk)
        size += chunk.length
        if (size >= limit || enough(Buffer.concat(chunks))) {
          finish(false)
          return
        }
      }
    }
    const onEnd = () => finish(true)
    const onError = (error: Error) => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      reject(error)
    }
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onError)
  })
}

/** Why a guard stopped a body. */
export type GuardStop = 'upload_too_large' | 'chat_unreadable'

export interface GuardOptions {
  readonly maxBytes: number
  /** The multipart boundary and the chat arguments to watch for, after `checked` of them. */
  readonly watch?: {
    readonly boundary: string
    readonly names: ReadonlySet<string>
    readonly checked: number
  }
}

/** Passes a streamed body on, stopping it (an error) past its size cap or at an unchecked chat part. */
export class UploadGuard extends Transform {
  /** Set once the guard stopped the body. */
  stopped: GuardStop | undefined
  readonly #max: number
  readonly #delimiter: Buffer | undefined
  readonly #names: ReadonlySet<string>
  readonly #checked: number
  #bytes = 0
  /** Bytes kept from earlier chunks, to find a delimiter or header split across chunks. */
  #tail: Buffer = Buffer.alloc(0)
  /** Stream offset of #tail's first byte. */
  #tailAt = 0
  /** Stream offset after the last delimiter looked at: none before it is looked at again. */
  #seen = -1
  #chatParts = 0
  #discarding = false

  constructor(options: GuardOptions) {
    super()
    this.#max = options.maxBytes
    this.#delimiter = options.watch === undefined ? undefined : Buffer.from(`--${options.watch.boundary}`)
    this.#names = options.watch?.names ?? new Set()
    this.#checked = options.watch?.checked ?? 0
  }

  /** The call was refused before it was sent: the rest of the body is read and dropped. */
  discard(): void {
    this.#discarding = true
    this.resume()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.#discarding) this.#bytes += chunk.length
    if (this.#discarding) done()
    else if (this.#bytes > this.#max) this.#stop('upload_too_large', done)
    else if (this.#delimiter !== undefined && this.#watch(chunk)) this.#stop('chat_unreadable', done)
    else done(null, chunk)
  }

  #stop(why: GuardStop, done: TransformCallback): void {
    this.stopped = why
    done(new Error(why))
  }

  /** Whether a part after the checked ones names a chat argument. */
  #watch(chunk: Buffer): boolean {
    const delimiter = this.#delimiter as Buffer
    const data = this.#tail.length === 0 ? chunk : Buffer.concat([this.#tail, chunk])
    const base = this.#tailAt
    let keepFrom = Math.max(0, data.length - delimiter.length - 2)
    for (let at = data.indexOf(delimiter); at >= 0; at = data.indexOf(delimiter, at + 1)) {
      if (base + at <= this.#seen) continue
      const headerEnd = data.indexOf('\r\n\r\n', at)
      if (headerEnd < 0) {
        // The header goes on in the next chunk: keep it whole, if it is of a sane size.
        if (data.length - at > MAX_PART_HEADER) return true
        keepFrom = Math.min(keepFrom, at)
        break
      }
      this.#seen = base + at
      const { name } = dispositionOf(data.subarray(at, headerEnd).toString('latin1'))
      if (name !== undefined && this.#names.has(name) && ++this.#chatParts > this.#checked) return true
    }
    this.#tail = Buffer.from(data.subarray(keepFrom))
    this.#tailAt = base + keepFrom
    return false
  }
}
