/**
 * @module
 * Where log lines go: a file descriptor (stdout), written in batches, asynchronously, through a
 * bounded buffer. SPEC 7: logging never blocks the request path; when the reader (a pipe nobody
 * drains, a paused terminal, a file on a full disk) is slower than the traffic, lines are dropped
 * and counted, never waited for.
 *
 * Batching: one write system call per request would cost more CPU than the gateway's own work, so
 * lines are appended to a pending string and handed on once it holds {@link FLUSH_CHARS}
 * characters, or every {@link FLUSH_MS} when traffic is light. pino's own destination (sonic-boom)
 * measures the byte length of its whole pending buffer on every line (about a microsecond per line
 * at 4 KiB batches); appending here costs a string concatenation.
 *
 * Writing: each batch is encoded into a reused 128 KiB slab (a fresh buffer per batch cost as much
 * as the write itself), and the slabs waiting are written with `fs.writev`, one write in flight at
 * a time, so the bytes go out in the order the lines came. `fs.writev` runs in libuv's threadpool:
 * on a non-blocking pipe (Node makes stdout non-blocking when it opens it as a stream, see
 * logger.ts) a full pipe answers EAGAIN at once, and the write is tried again after a short,
 * growing pause; on a blocking descriptor (a terminal paused with Ctrl-S, a file on a slow disk)
 * one threadpool thread waits, never the event loop, and never more than one. Other errors
 * (ENOSPC on a full disk, EIO) are
 * treated the same way: the batch waits and is tried again.
 *
 * Bound: at most {@link MAX_BUFFERED_BYTES} of slabs wait. A batch that does not fit is dropped
 * whole and its lines counted (`dropped`, the metric `botgate_log_lines_dropped_total`). Once lines
 * were dropped, later batches are dropped too until the buffer has drained to half the bound (the
 * reader is back, not just taking a line now and then); the first batch then kept starts with one
 * line saying how many were lost (`notice`), so the log says where its gap is, once per gap.
 *
 * Exit: `flush(callback)` (pino's `logger.flush`, the SIGTERM path) waits for everything pending to
 * be written, at most {@link FLUSH_WAIT_MS}; `flushSync()` (the `exit` event) writes what is left
 * synchronously, waiting for a full pipe at most {@link EXIT_WAIT_MS}. A closed reader (EPIPE,
 * EBADF) ends logging quietly; what could not be written then is counted as dropped.
 */

import { writeSync as fsWriteSync, writev as fsWritev } from 'node:fs'

/** Characters pending before they are handed to the writer. */
export const FLUSH_CHARS = 16 * 1024
/** The longest a line waits when traffic is light. */
export const FLUSH_MS = 250
/**
 * Bytes of encoded batches that may wait for a slow reader: 4 MiB, about 12,000 request lines of
 * 350 bytes, a second or more of heavy traffic. Beyond it, lines are dropped.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024
/**
 * Bytes of one slab. A UTF-16 code unit takes at most three bytes of UTF-8, so a batch of up to a
 * third of this many characters always fits; a longer one (long lines with `log.message_text`)
 * gets a buffer of its own.
 */
export const SLAB_BYTES = 128 * 1024
/** Empty slabs kept for reuse; after a stall, the others are left to the garbage collector. */
const SPARE_SLABS = 4
/** The first pause before a write that met a full pipe (or an error) is tried again. */
export const RETRY_MIN_MS = 1
/** The longest pause between tries: the delay before writing resumes once the reader is back. */
export const RETRY_MAX_MS = 50
/** The longest `flush(callback)` waits for a stuck reader (SIGTERM: then the process exits). */
export const FLUSH_WAIT_MS = 2000
/** The longest `flushSync()` waits for a full pipe at process exit. */
export const EXIT_WAIT_MS = 1000

/** `fs.writev`'s shape, injectable for tests of the failure paths. */
export type AsyncWrite = (
  fd: number,
  buffers: readonly Buffer[],
  position: null,
  callback: (error: NodeJS.ErrnoException | null, written: number) => void,
) => void

/** `fs.writeSync`'s shape, injectable for tests. */
export type SyncWrite = (fd: number, buffer: Buffer, offset: number, length: number) => number

export interface LogDestinationOptions {
  /**
   * Counts lines dropped because the reader was too slow or gone (a Prometheus counter child).
   * @default none
   */
  readonly dropped?: { inc(by: number): void }
  /**
   * The line (newline included) written before the first batch kept after `count` lines were
   * dropped.
   * @default a plain JSON line with `dropped` and `msg`
   */
  readonly notice?: (count: number) => string
  /** @default fs.writev */
  readonly write?: AsyncWrite
  /** @default fs.writeSync */
  readonly writeSync?: SyncWrite
}

/** One encoded batch waiting to be written. */
interface Chunk {
  readonly buffer: Buffer
  /** Bytes of `buffer` in use. */
  length: number
  /** Lines in it, for counting them if it is dropped. */
  lines: number
  /** A reused slab (returned to the spares once written), or a buffer of its own. */
  readonly slab: boolean
}

/** Most buffers in one gathering write, well under IOV_MAX (1024 on Linux). */
const MAX_GATHER = 64

/** Codes of a reader that is gone for good. */
const CLOSED_CODES = new Set(['EPIPE', 'EBADF', 'ECONNRESET'])

const sleeper = new Int32Array(new SharedArrayBuffer(4))

function defaultNotice(count: number): string {
  return `${JSON.stringify({ level: 'warn', dropped: count, msg: `log lines dropped: ${count} while the log reader was slow` })}\n`
}

export class LogDestination {
  readonly #fd: number
  readonly #write: AsyncWrite
  readonly #writeSync: SyncWrite
  readonly #dropped: { inc(by: number): void } | undefined
  readonly #notice: (count: number) => string
  #pending = ''
  #pendingLines = 0
  /** Batches to write, oldest first; the first `#writing` of them are in flight. */
  readonly #queue: Chunk[] = []
  /** Bytes of `#queue[0]` already written. */
  #offset = 0
  /** Bytes held by the queue's buffers (their capacity, not their use): what the bound limits. */
  #held = 0
  readonly #spares: Buffer[] = []
  /** Chunks at the head of the queue that the write in flight holds (0: none in flight). */
  #writing = 0
  #retry: NodeJS.Timeout | undefined
  #retryMs = RETRY_MIN_MS
  /** Lines dropped since the last notice: while above 0, batches wait for the buffer to drain. */
  #lost = 0
  #closed = false
  /** A flush waited its whole bound for a stuck reader: the exit flush tries once, without waiting. */
  #stuck = false
  /** Callbacks of `flush` waiting for the queue to empty. */
  #drained: (() => void)[] = []

  constructor(fd: number, options: LogDestinationOptions = {}) {
    this.#fd = fd
    this.#write = options.write ?? (fsWritev as unknown as AsyncWrite)
    this.#writeSync = options.writeSync ?? fsWriteSync
    this.#dropped = options.dropped
    this.#notice = options.notice ?? defaultNotice
    setInterval(() => this.#handOn(), FLUSH_MS).unref()
  }

  /** pino's destination interface: one serialized line, newline included. */
  write(line: string): boolean {
    if (this.#closed) {
      this.#dropped?.inc(1)
      return true
    }
    this.#pending += line
    this.#pendingLines++
    if (this.#pending.length >= FLUSH_CHARS) this.#handOn()
    return true
  }

  /** Bytes waiting to be written (for tests and diagnostics). */
  get buffered(): number {
    return this.#queue.reduce((sum, chunk) => sum + chunk.length, 0) - this.#offset
  }

  /** Lines dropped since the last notice. */
  get lost(): number {
    return this.#lost
  }

  /** Moves the pending lines into the queue, or drops them when it is full, and starts writing. */
  #handOn(): void {
    // With nothing pending, the note of a gap still goes out once the reader is back (the timer).
    if (this.#pending === '' && (this.#lost === 0 || this.#held > MAX_BUFFERED_BYTES / 2)) return
    let text = this.#pending
    let lines = this.#pendingLines
    this.#pending = ''
    this.#pendingLines = 0
    if (this.#lost > 0) {
      if (this.#held > MAX_BUFFERED_BYTES / 2) {
        if (lines > 0) this.#drop(lines)
        return
      }
      text = this.#notice(this.#lost) + text
      lines++
      this.#lost = 0
    }
    if (this.#append(text, lines)) this.#kick()
    else this.#drop(lines)
  }

  #drop(lines: number): void {
    this.#lost += lines
    this.#dropped?.inc(lines)
  }

  /** Encodes `text` at the end of the queue; false when the bound leaves no room for it. */
  #append(text: string, lines: number): boolean {
    const most = text.length * 3
    const tail = this.#queue.at(-1)
    // The tail can take more bytes unless it is being written (its buffer is in a write call). The
    // exact byte length is measured only when the rough bound says it might not fit (once a slab).
    if (
      tail?.slab === true &&
      this.#queue.length > this.#writing &&
      (tail.buffer.length - tail.length >= most ||
        tail.buffer.length - tail.length >= Buffer.byteLength(text, 'utf8'))
    ) {
      tail.length += tail.buffer.write(text, tail.length, 'utf8')
      tail.lines += lines
      return true
    }
    if (most <= SLAB_BYTES) {
      if (this.#queue.length > 0 && this.#held + SLAB_BYTES > MAX_BUFFERED_BYTES) return false
      const buffer = this.#spares.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)
      this.#held += SLAB_BYTES
      this.#queue.push({ buffer, length: buffer.write(text, 0, 'utf8'), lines, slab: true })
      return true
    }
    const buffer = Buffer.from(text, 'utf8')
    // A batch larger than the whole bound is still written when nothing else waits.
    if (this.#queue.length > 0 && this.#held + buffer.length > MAX_BUFFERED_BYTES) return false
    this.#held += buffer.length
    this.#queue.push({ buffer, length: buffer.length, lines, slab: false })
    return true
  }

  /**
   * Starts the next write unless one is in flight or waiting to be tried again. It takes every
   * chunk waiting, in one gathering write (writev): one chunk per write would cap the rate at a
   * slab per turn of the event loop.
   */
  #kick(): void {
    if (this.#writing > 0 || this.#retry !== undefined || this.#closed) return
    if (this.#queue.length === 0) {
      this.#settle()
      return
    }
    const buffers: Buffer[] = []
    for (const chunk of this.#queue) {
      if (buffers.length === MAX_GATHER) break
      buffers.push(chunk.buffer.subarray(buffers.length === 0 ? this.#offset : 0, chunk.length))
    }
    this.#writing = buffers.length
    this.#write(this.#fd, buffers, null, (error, written) => this.#written(error, written))
  }

  #written(error: NodeJS.ErrnoException | null, written: number): void {
    this.#writing = 0
    if (this.#closed) return
    if (error !== null) {
      if (CLOSED_CODES.has(error.code ?? '')) {
        this.#close()
        return
      }
      // EAGAIN (a full pipe), ENOSPC, EIO...: the same bytes, later; new lines meanwhile meet the bound.
      this.#retry = setTimeout(() => {
        this.#retry = undefined
        this.#kick()
      }, this.#retryMs)
      this.#retry.unref()
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS)
      return
    }
    this.#retryMs = RETRY_MIN_MS
    this.#stuck = false
    this.#advance(written)
    this.#kick()
  }

  /** Accounts for `written` bytes from the head of the queue, releasing the chunks all written. */
  #advance(written: number): void {
    let left = written
    for (let chunk = this.#queue[0]; chunk !== undefined; chunk = this.#queue[0]) {
      const rest = chunk.length - this.#offset
      if (left < rest) {
        this.#offset += left
        return
      }
      left -= rest
      this.#queue.shift()
      this.#offset = 0
      this.#release(chunk)
    }
  }

  #release(chunk: Chunk): void {
    this.#held -= chunk.slab ? SLAB_BYTES : chunk.buffer.length
    if (chunk.slab && this.#spares.length < SPARE_SLABS) this.#spares.push(chunk.buffer)
  }

  /** Nothing is left to write: tell the flushes waiting for that. */
  #settle(): void {
    const waiting = this.#drained
    this.#drained = []
    for (const callback of waiting) callback()
  }

  /** The reader is gone: everything still waiting is dropped, and so is every later line. */
  #close(): void {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#retry = undefined
    let lines = this.#pendingLines
    for (const chunk of this.#queue) lines += chunk.lines
    this.#pending = ''
    this.#pendingLines = 0
    this.#queue.length = 0
    this.#held = 0
    if (lines > 0) this.#dropped?.inc(lines)
    this.#settle()
  }

  /**
   * pino's `logger.flush(callback)` lands here: hands on what is pending and calls back once all
   * of it is written, or after {@link FLUSH_WAIT_MS} if the reader is stuck. Never blocks.
   */
  flush(callback?: (error?: Error) => void): void {
    this.#handOn()
    if (this.#closed || this.#queue.length === 0) {
      callback?.()
      return
    }
    // A stuck reader's pipe may take minutes: try again now rather than after the longest pause.
    if (this.#retry !== undefined) {
      clearTimeout(this.#retry)
      this.#retry = undefined
      this.#retryMs = RETRY_MIN_MS
      this.#kick()
    }
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      this.#stuck = true
      callback?.()
    }, FLUSH_WAIT_MS)
    this.#drained.push(() => {
      if (done) return
      done = true
      clearTimeout(timer)
      callback?.()
    })
  }

  /**
   * Writes out everything synchronously, for the process's `exit` event (the event loop will not
   * turn again). A full pipe is waited for at most {@link EXIT_WAIT_MS}, or not at all after a
   * `flush` already waited its bound; what is left then is dropped and counted.
   *
   * If a write is in flight (an exit that did not go through `flush`: an uncaught error), its bytes
   * are taken as written: its thread finishes it unless the descriptor blocks, and a torn line at
   * a crash is better than the lines after it lost.
   */
  flushSync(): void {
    if (this.#closed) return
    clearTimeout(this.#retry)
    this.#retry = undefined
    this.#handOn()
    // Not back among the spares: its thread may still be reading them.
    for (; this.#writing > 0; this.#writing--) {
      const chunk = this.#queue.shift()
      if (chunk !== undefined) this.#held -= chunk.slab ? SLAB_BYTES : chunk.buffer.length
    }
    this.#offset = 0
    let waitedMs = 0
    const limitMs = this.#stuck ? 0 : EXIT_WAIT_MS
    while (this.#queue.length > 0) {
      const chunk = this.#queue[0] as Chunk
      try {
        this.#advance(this.#writeSync(this.#fd, chunk.buffer, this.#offset, chunk.length - this.#offset))
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? ''
        if (!CLOSED_CODES.has(code) && waitedMs < limitMs) {
          Atomics.wait(sleeper, 0, 0, 1)
          waitedMs++
          continue
        }
        this.#close()
        return
      }
    }
    this.#settle()
  }
}
