import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  type AsyncWrite,
  EXIT_WAIT_MS,
  FLUSH_CHARS,
  FLUSH_WAIT_MS,
  LogDestination,
  MAX_BUFFERED_BYTES,
  RETRY_MAX_MS,
  type SyncWrite,
} from './log-destination.js'

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code })
}

/**
 * A destination over a fake descriptor. `reader` decides what each write(2) does: accept some bytes,
 * or fail with a code. Async writes call back on a later turn of the loop, as libuv's threadpool does.
 */
function destination(reader: { accept: (length: number) => number | string }) {
  const written: Buffer[] = []
  const stats = { calls: 0, syncCalls: 0, inFlight: 0, maxInFlight: 0, counted: 0 }
  const take = (buffer: Buffer, offset: number, length: number): number | NodeJS.ErrnoException => {
    const outcome = reader.accept(length)
    if (typeof outcome === 'string') return errno(outcome)
    // A copy, as write(2) makes one: the destination reuses its slabs.
    written.push(Buffer.from(buffer.subarray(offset, offset + outcome)))
    return outcome
  }
  const write: AsyncWrite = (_fd, buffers, _position, callback) => {
    stats.calls++
    stats.inFlight++
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
    // writev(2): the buffers' bytes as one.
    const joined = Buffer.concat(buffers)
    const result = take(joined, 0, joined.length)
    setImmediate(() => {
      stats.inFlight--
      if (typeof result === 'number') callback(null, result)
      else callback(result, 0)
    })
  }
  const writeSync: SyncWrite = (_fd, buffer, offset, length) => {
    stats.syncCalls++
    const result = take(buffer, offset, length)
    if (typeof result !== 'number') throw result
    return result
  }
  const log = new LogDestination(99, {
    write,
    writeSync,
    dropped: {
      inc: (by) => {
        stats.counted += by
      },
    },
    notice: (count) => `NOTICE ${count}\n`,
  })
  return { log, stats, text: () => Buffer.concat(written).toString('utf8') }
}

const all = { accept: (length: number) => length }

/** Lets the fake writes and the destination's retries run until `condition` holds (bounded). */
async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('LogDestination', () => {
  it('holds lines until a batch is full, then writes them in one call, in order', async () => {
    const { log, stats, text } = destination(all)
    const line = `${'x'.repeat(127)}\n`
    for (let i = 0; i < FLUSH_CHARS / line.length - 1; i++) log.write(line)
    expect(stats.calls).toBe(0)
    log.write(line)
    log.write('tail ü\n')
    expect(stats.calls).toBe(1)
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    expect(stats.calls).toBe(2)
    expect(text()).toBe(`${line.repeat(FLUSH_CHARS / line.length)}tail ü\n`)
  })

  it('writes batches of any size and script byte for byte, one after another', async () => {
    const { log, text } = destination(all)
    const lines = [
      `${'ü€😀'.repeat(3000)}\n`, // 12,000 code units, 27,000 bytes: encoded in a slab
      `${'a'.repeat(100)}\n`,
      `${'€'.repeat(50_000)}\n`, // over a third of a slab: a buffer of its own
      'last \ud800 lone surrogate\n',
    ]
    for (const line of lines) log.write(line)
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    expect(text()).toBe(Buffer.from(lines.join(''), 'utf8').toString('utf8'))
  })

  it('keeps one write in flight and the order of lines, across partial writes', async () => {
    const { log, stats, text } = destination({ accept: (length) => Math.min(length, 1000) })
    const expected: string[] = []
    for (let i = 0; i < 2000; i++) {
      const line = `{"n":${i},"pad":"${'p'.repeat(i % 50)}"}\n`
      expected.push(line)
      log.write(line)
    }
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    expect(stats.maxInFlight).toBe(1)
    expect(text()).toBe(expected.join(''))
  })

  it('never waits for a full pipe (EAGAIN): write returns at once, and the bytes go out once it drains', async () => {
    let full = true
    const { log, stats, text } = destination({ accept: (length) => (full ? 'EAGAIN' : length) })
    for (let i = 0; i < 1000; i++) log.write(`line ${i}\n`)
    log.flush()
    // The old destination slept and tried again here, up to a second; now one write is started, no
    // synchronous one is made, and the pipe is tried again later, on timers.
    expect(stats.calls).toBe(1)
    expect(stats.syncCalls).toBe(0)
    await until(() => stats.calls >= 3) // tried again, after pauses
    expect(text()).toBe('')
    full = false
    await until(() => log.buffered === 0, RETRY_MAX_MS * 20)
    expect(text()).toBe(Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join(''))
    expect(stats.counted).toBe(0)
  })

  it('drops and counts what does not fit while the reader is stuck, then notes the gap once, in order', async () => {
    let full = true
    const { log, stats, text } = destination({ accept: (length) => (full ? 'EAGAIN' : length) })
    const line = `${'y'.repeat(99)}\n`
    const total = Math.floor((2 * MAX_BUFFERED_BYTES) / line.length)
    for (let i = 0; i < total; i++) log.write(line)
    expect(log.buffered).toBeLessThanOrEqual(MAX_BUFFERED_BYTES)
    expect(stats.counted).toBeGreaterThan(0)
    expect(log.lost).toBe(stats.counted)
    const dropped = stats.counted
    full = false
    await until(() => log.buffered === 0, 5000)
    log.write('after the gap\n')
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    const out = text()
    // One note, where the gap is: lines before it, lines after it, all whole and in order.
    const [before, after, ...more] = out.split(`NOTICE ${dropped}\n`)
    expect(more).toEqual([])
    expect(before).toMatch(/^(y{99}\n)+$/)
    expect(after).toMatch(/^(y{99}\n)*after the gap\n$/)
    const kept = (out.match(/y{99}\n/g) ?? []).length
    expect(kept + dropped).toBe(total)
    expect(stats.counted).toBe(dropped)
    expect(log.lost).toBe(0)
  })

  it('fills its bound with lines before it drops any (batches packed into slabs)', () => {
    const { log, stats } = destination({ accept: () => 'EAGAIN' })
    const line = `${'w'.repeat(299)}\n`
    let written = 0
    while (stats.counted === 0) {
      log.write(line)
      written++
    }
    expect(log.buffered).toBeLessThanOrEqual(MAX_BUFFERED_BYTES)
    expect(log.buffered).toBeGreaterThan(0.75 * MAX_BUFFERED_BYTES)
    expect(written * line.length).toBeGreaterThan(0.75 * MAX_BUFFERED_BYTES)
  })

  it('notes the gap once the reader is back even when no line comes after it', async () => {
    let full = true
    const { log, stats, text } = destination({ accept: (length) => (full ? 'EAGAIN' : length) })
    const line = `${'v'.repeat(99)}\n`
    while (stats.counted === 0) log.write(line)
    const dropped = stats.counted
    full = false
    await until(() => text().includes('NOTICE'), 5000)
    expect(text().endsWith(`NOTICE ${dropped}\n`)).toBe(true)
  })

  it('once lines were dropped, keeps dropping until half the buffer has drained', async () => {
    let accept = 0
    const { log, stats, text } = destination({
      accept: (length) => {
        if (accept <= 0) return 'EAGAIN'
        const n = Math.min(length, accept)
        accept -= n
        return n
      },
    })
    const line = `${'z'.repeat(99)}\n`
    for (let i = 0; i < (1.2 * MAX_BUFFERED_BYTES) / line.length; i++) log.write(line)
    const dropped = stats.counted
    expect(dropped).toBeGreaterThan(0)
    accept = 256 * 1024 // the reader takes a little: not enough to be back
    await until(() => accept === 0)
    log.write(line.repeat(FLUSH_CHARS / line.length))
    expect(stats.counted).toBeGreaterThan(dropped)
    expect(text()).not.toContain('NOTICE')
  })

  it('treats a full disk (ENOSPC) like a full pipe: tried again, never thrown', async () => {
    let failures = 3
    const { log, text } = destination({ accept: (length) => (failures-- > 0 ? 'ENOSPC' : length) })
    log.write('after a full disk\n')
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    expect(text()).toBe('after a full disk\n')
  })

  it('stops writing once the reader is gone (EPIPE), quietly, counting what it could not write', async () => {
    const { log, stats } = destination({ accept: () => 'EPIPE' })
    log.write('lost\n')
    await new Promise<void>((resolve) => log.flush(() => resolve()))
    log.write('also lost\n')
    log.flush()
    log.flushSync()
    expect(stats.calls).toBe(1)
    expect(stats.syncCalls).toBe(0)
    expect(stats.counted).toBe(2)
  })

  it('flush(callback) calls back after FLUSH_WAIT_MS when the reader stays stuck', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval'] })
    const { log } = destination({ accept: () => 'EAGAIN' })
    log.write('stuck\n')
    let called = false
    log.flush(() => {
      called = true
    })
    await vi.advanceTimersByTimeAsync(FLUSH_WAIT_MS - 100)
    expect(called).toBe(false)
    await vi.advanceTimersByTimeAsync(200)
    expect(called).toBe(true)
  })

  it('flushSync (process exit) writes what waits and what is pending, in order', async () => {
    let full = true
    const { log, stats, text } = destination({ accept: (length) => (full ? 'EAGAIN' : length) })
    log.write(`${'q'.repeat(FLUSH_CHARS)}\n`) // handed on: waits for the pipe
    await until(() => stats.calls >= 2 && stats.inFlight === 0) // between tries, none in flight
    log.write('pending\n')
    full = false
    log.flushSync()
    expect(text()).toBe(`${'q'.repeat(FLUSH_CHARS)}\npending\n`)
  })

  it('flushSync waits a bounded time for a stuck reader, then drops and counts', async () => {
    const { log, stats } = destination({ accept: () => 'EAGAIN' })
    log.write('never read\n')
    log.flush() // starts a write, which meets the full pipe
    await until(() => stats.calls === 1 && stats.inFlight === 0)
    log.flushSync()
    // A try, then one more after each 1 ms wait, up to EXIT_WAIT_MS; then it gives up.
    expect(stats.syncCalls).toBe(EXIT_WAIT_MS + 1)
    expect(stats.counted).toBe(1)
  })
})
