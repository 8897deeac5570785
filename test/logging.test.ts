/**
 * A slow log reader never stalls traffic (SPEC 7, issue 23): the real CLI with its stdout a pipe
 * that the test stops reading, the way a stuck `| tee`, a paused `docker logs` or a slow shipper
 * stops reading. Requests keep being answered, the lines that do not fit the destination's buffer
 * are dropped and counted on /metrics, the log says so once when the reader is back, what is kept
 * stays whole and in order, and SIGTERM writes out what is buffered (waiting a bounded time for a
 * reader that never comes back).
 *
 * Each request line carries a 4,000-character message text (`log.message_text: true`), about
 * 4.2 KB, so a bounded number of requests (1,500) produces more log than the pipe (a few hundred
 * KiB) and the destination's 4 MiB buffer hold.
 */

import { afterEach, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, type LogLine, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const TEXT = 'x'.repeat(4000)
/**
 * Answers slower than this mean the event loop waited for the log: the old synchronous destination
 * held it a full second (its stall limit) at the first full pipe, and answers took 1.0-1.6 s; with
 * the pipe read, every answer here takes a few milliseconds. Under a second, with room for a loaded
 * 2-core machine.
 */
const ANSWER_BOUND_MS = 750
const DROPPED = /^botgate_log_lines_dropped_total (\d+)$/m
const NOTICE = /^log lines dropped: (\d+) while the log reader was slow$/

let upstream: TestUpstream | undefined
let gateway: RunningGateway | undefined

afterEach(async () => {
  gateway?.child.stdout?.resume()
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  gateway = undefined
  upstream = undefined
})

async function start(): Promise<{ gateway: RunningGateway; url: string }> {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      top: 'log: { level: info, message_text: true }',
    }),
  })
  return { gateway, url: `${gateway.webhook}${PATH}` }
}

let nextUpdateId = 1

/**
 * Sends `count` updates, `concurrency` at a time; every one must be forwarded (200). Resolves to
 * their request ids in the order they were sent, and the slowest answer in milliseconds.
 */
async function load(url: string, count: number, concurrency: number) {
  const ids: string[] = []
  let slowestMs = 0
  let sent = 0
  const worker = async () => {
    while (sent < count) {
      sent++
      const body = JSON.stringify(messageUpdate({ text: TEXT }, nextUpdateId++))
      const started = performance.now()
      const reply = await post(url, body, telegramHeaders(SECRET))
      slowestMs = Math.max(slowestMs, performance.now() - started)
      expect(reply.status).toBe(200)
      ids.push(reply.headers['x-request-id'] as string)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { ids, slowestMs }
}

async function droppedTotal(gateway: RunningGateway): Promise<number> {
  const match = DROPPED.exec(await gateway.metrics())
  if (match === null) throw new Error('botgate_log_lines_dropped_total is not on /metrics')
  return Number(match[1])
}

/** Every line of stdout, parsed: a torn or interleaved line fails here. */
function parsedStdout(gateway: RunningGateway): LogLine[] {
  return gateway.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine)
}

describe('a log reader that stops reading', () => {
  it('stalls no request; lines that do not fit are dropped, counted, and noted once when it is back', async () => {
    const { gateway, url } = await start()
    expect(await droppedTotal(gateway)).toBe(0)
    await load(url, 50, 10)

    gateway.child.stdout?.pause()
    const stalled = await load(url, 1500, 10)
    // The event loop never waited for the pipe: the old destination slept up to a second per batch.
    expect(stalled.slowestMs).toBeLessThan(ANSWER_BOUND_MS)
    // Dropped, not waited for, while the reader is still stuck (the admin listener answers too).
    const dropped = await droppedTotal(gateway)
    expect(dropped).toBeGreaterThan(0)

    gateway.child.stdout?.resume()
    // Once the reader has caught up, the log says how many lines it lost, without waiting for traffic.
    const notice = await gateway.waitFor((line) => NOTICE.test(line.msg ?? ''), 10_000)
    const total = Number(NOTICE.exec(notice.msg ?? '')?.[1])
    expect(total).toBeGreaterThanOrEqual(dropped)
    expect(notice).toMatchObject({ level: 'warn', dropped: total })
    expect(await droppedTotal(gateway)).toBe(total)

    const after: string[] = []
    for (let i = 0; i < 20; i++) after.push(...(await load(url, 1, 1)).ids)
    await gateway.requestLine(after.at(-1) ?? null)
    const lines = parsedStdout(gateway)
    expect(lines.filter((line) => NOTICE.test(line.msg ?? ''))).toHaveLength(1)
    expect(await droppedTotal(gateway)).toBe(total)

    // Lines kept from the stall, plus the dropped ones, account for every request of it.
    const stalledIds = new Set(stalled.ids)
    const kept = lines.filter((line) => line.msg === 'request' && stalledIds.has(line.request_id as string))
    expect(new Set(kept.map((line) => line.request_id)).size).toBe(kept.length)
    expect(kept.length + total).toBe(stalled.ids.length)

    // After the reader is back: the later lines, each once, in the order they were answered, after the note.
    const noticeAt = lines.findIndex((line) => NOTICE.test(line.msg ?? ''))
    const requestIds = lines.map((line) => (line.msg === 'request' ? line.request_id : undefined))
    const positions = after.map((id) => requestIds.indexOf(id))
    expect(positions.every((at) => at > noticeAt)).toBe(true)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
    // No batch was written out of turn: the log's times never go back (the note has the time the
    // reader was found back, later than the lines it precedes, which were logged after the gap).
    const times = lines
      .filter((line) => !NOTICE.test(line.msg ?? ''))
      .map((line) => Date.parse(line.time as string))
    expect(times.every((time, i) => i === 0 || time >= (times[i - 1] as number))).toBe(true)
  }, 90_000)
})

describe('SIGTERM', () => {
  it('writes out what is buffered once the reader is back', async () => {
    const { gateway, url } = await start()
    gateway.child.stdout?.pause()
    // About 850 KB of log: more than the pipe holds, less than the destination's buffer.
    const { ids } = await load(url, 200, 10)
    expect(await droppedTotal(gateway)).toBe(0)
    const seen = new Set(gateway.lines.map((line) => line.request_id))
    expect(ids.filter((id) => !seen.has(id)).length).toBeGreaterThan(0)

    gateway.child.kill('SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 300))
    gateway.child.stdout?.resume()
    expect(await gateway.exited()).toBe(0)

    const lines = parsedStdout(gateway)
    const logged = new Set(lines.map((line) => line.request_id))
    expect(ids.filter((id) => !logged.has(id))).toEqual([])
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', clean: true })
    expect(lines.some((line) => NOTICE.test(line.msg ?? ''))).toBe(false)
  }, 60_000)

  it('exits, after a bounded wait, when the reader never comes back', async () => {
    const { gateway, url } = await start()
    gateway.child.stdout?.pause()
    await load(url, 200, 10)
    gateway.child.kill('SIGTERM')
    const exited = await Promise.race([
      gateway.exited(),
      new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000)),
    ])
    // The destination waits FLUSH_WAIT_MS (2 s) for the reader, then gives up: well within the race.
    expect(exited).toBe(0)
  }, 60_000)
})
