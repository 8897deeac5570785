/**
 * @module
 * Where log lines go: a file descriptor (stdout), written in batches. One write system call per
 * request would cost more CPU than the gateway's own work, so lines are appended to a pending
 * string and written out once it holds {@link FLUSH_CHARS} characters, every {@link FLUSH_MS} when
 * traffic is light, and synchronously at exit.
 *
 * pino's own destination (sonic-boom) does the same, but measures the byte length of its whole
 * pending buffer on every line: at 4 KiB batches that cost about a microsecond per request line,
 * a third of the line's whole cost; appending here costs a string concatenation.
 *
 * Writes are synchronous, so a line is never reordered and nothing is pending when a write fails.
 * When the reader of a pipe falls behind (EAGAIN), the write waits for it a little at a time, at
 * most {@link STALL_LIMIT_MS}; a batch it still cannot write is dropped rather than allowed to
 * stop the gateway, and until a write goes through again, later batches are tried once, without
 * waiting. A closed reader (EPIPE) ends logging.
 */

import { writeSync } from 'node:fs'

/** Characters pending before they are written out. */
export const FLUSH_CHARS = 16 * 1024
/**
 * Bytes of the buffer each batch is encoded into, kept from one batch to the next: a new 16 KiB
 * buffer per batch cost as much as the rest of the write. A UTF-16 code unit takes at most three
 * bytes of UTF-8, so a batch of up to a third of this many characters always fits; a longer one
 * (long lines with `log.message_text`) gets a buffer of its own.
 */
const SCRATCH_BYTES = 64 * 1024
/** The longest a line waits when traffic is light. */
export const FLUSH_MS = 250
/** The longest one batch waits for a stalled pipe before it is dropped. */
export const STALL_LIMIT_MS = 1000

const sleeper = new Int32Array(new SharedArrayBuffer(4))

export class LogDestination {
  readonly #fd: number
  readonly #write: typeof writeSync
  #pending = ''
  readonly #scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)
  #closed = false
  /** A batch was dropped to a full pipe and nothing has been written since: do not wait again. */
  #stalled = false

  /** `write` is injectable for tests of the failure paths; it defaults to `fs.writeSync`. */
  constructor(fd: number, write: typeof writeSync = writeSync) {
    this.#fd = fd
    this.#write = write
    setInterval(() => this.flushSync(), FLUSH_MS).unref()
  }

  /** pino's destination interface: one serialized line, newline included. */
  write(line: string): boolean {
    if (this.#closed) return true
    this.#pending += line
    if (this.#pending.length >= FLUSH_CHARS) this.flushSync()
    return true
  }

  /** Writes out everything pending, now. */
  flushSync(): void {
    if (this.#pending === '' || this.#closed) return
    const text = this.#pending
    this.#pending = ''
    // Writes are synchronous: the kept buffer is free again when this call returns.
    const bytes =
      text.length * 3 <= SCRATCH_BYTES
        ? this.#scratch.subarray(0, this.#scratch.write(text, 0, 'utf8'))
        : Buffer.from(text, 'utf8')
    let offset = 0
    let stalledMs = 0
    while (offset < bytes.length) {
      try {
        offset += this.#write(this.#fd, bytes, offset, bytes.length - offset)
        this.#stalled = false
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EAGAIN' && !this.#stalled && stalledMs < STALL_LIMIT_MS) {
          Atomics.wait(sleeper, 0, 0, 1)
          stalledMs++
          continue
        }
        // EPIPE, EBADF: nobody reads these lines any more. EAGAIN past the limit: this batch is lost.
        if (code === 'EAGAIN') this.#stalled = true
        else this.#closed = true
        return
      }
    }
  }

  /** pino's `logger.flush(callback)` lands here. */
  flush(callback?: (error?: Error) => void): void {
    this.flushSync()
    callback?.()
  }
}
