import { describe, expect, it } from 'vitest'
import { FLUSH_CHARS, LogDestination, STALL_LIMIT_MS } from './log-destination.js'

type Write = (fd: number, buffer: Buffer, offset: number, length: number) => number

/** A destination over a fake write(2) that records the bytes it accepted. */
function destination(write: (chunk: Buffer) => number) {
  const written: Buffer[] = []
  const fake: Write = (_fd, buffer, offset, length) => {
    const accepted = write(buffer.subarray(offset, offset + length))
    // A copy, as write(2) makes one: the destination reuses its buffer for the next batch.
    written.push(Buffer.from(buffer.subarray(offset, offset + accepted)))
    return accepted
  }
  const log = new LogDestination(99, fake as never)
  return { log, text: () => Buffer.concat(written).toString('utf8') }
}

function errno(code: string): Error {
  return Object.assign(new Error(code), { code })
}

describe('LogDestination', () => {
  it('holds lines until a batch is full, then writes them in one call, in order', () => {
    let calls = 0
    const { log, text } = destination((chunk) => {
      calls++
      return chunk.length
    })
    const line = `${'x'.repeat(127)}\n`
    for (let i = 0; i < FLUSH_CHARS / line.length - 1; i++) log.write(line)
    expect(calls).toBe(0)
    log.write(line)
    log.write('tail ü\n')
    expect(calls).toBe(1)
    log.flushSync()
    expect(calls).toBe(2)
    expect(text()).toBe(`${line.repeat(FLUSH_CHARS / line.length)}tail ü\n`)
  })

  it('writes batches of any size and script byte for byte, one after another', () => {
    const { log, text } = destination((chunk) => chunk.length)
    const lines = [
      `${'ü€😀'.repeat(3000)}\n`, // 12,000 code units, 27,000 bytes: encoded in the kept buffer
      `${'a'.repeat(100)}\n`,
      `${'€'.repeat(30_000)}\n`, // over a third of the kept buffer: a buffer of its own
      'last \ud800 lone surrogate\n',
    ]
    for (const line of lines) {
      log.write(line)
      log.flushSync()
    }
    expect(text()).toBe(Buffer.from(lines.join(''), 'utf8').toString('utf8'))
  })

  it('finishes a partial write', () => {
    const { log, text } = destination((chunk) => Math.min(chunk.length, 3))
    log.write('a line of text\n')
    log.flushSync()
    expect(text()).toBe('a line of text\n')
  })

  it('waits for a full pipe (EAGAIN) and then writes everything', () => {
    let stalls = 3
    const { log, text } = destination((chunk) => {
      if (stalls-- > 0) throw errno('EAGAIN')
      return chunk.length
    })
    log.write('after a stall\n')
    log.flushSync()
    expect(text()).toBe('after a stall\n')
  })

  it('drops a batch the pipe stays too full for, then tries later ones once, without waiting', () => {
    let full = true
    let calls = 0
    const { log, text } = destination((chunk) => {
      calls++
      if (full) throw errno('EAGAIN')
      return chunk.length
    })
    log.write('lost\n')
    log.flushSync() // a try, then one more after each 1 ms wait, up to STALL_LIMIT_MS; then drops
    expect(calls).toBe(STALL_LIMIT_MS + 1)
    log.write('also lost\n')
    log.flushSync()
    expect(calls).toBe(STALL_LIMIT_MS + 2) // one try, no waiting
    full = false
    log.write('written\n')
    log.flushSync()
    expect(text()).toBe('written\n')
  })

  it('stops writing once the reader is gone (EPIPE), without throwing', () => {
    let calls = 0
    const { log } = destination(() => {
      calls++
      throw errno('EPIPE')
    })
    log.write('lost\n')
    log.flushSync()
    log.write('also lost\n')
    log.flushSync()
    expect(calls).toBe(1)
  })

  it('flush(callback) writes out and calls back, as pino expects', () => {
    const { log, text } = destination((chunk) => chunk.length)
    log.write('pending\n')
    let called = false
    log.flush(() => {
      called = true
    })
    expect(called).toBe(true)
    expect(text()).toBe('pending\n')
  })
})
