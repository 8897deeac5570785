/**
 * The pacer on the in-process store with real timers and test-sized rates: per-chat and global
 * pacing seen in the attempt's timestamps, per-chat order and one call in flight per chat, the
 * bounded queue and wait answered with Telegram's 429, Telegram's 429 pausing the chat and
 * retried, and close().
 */

import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../store/memory.js'
import { type Attempt, type ChatTarget, createPacer, type PacingConfig } from './index.js'

const base: PacingConfig = {
  enabled: true,
  global: { count: 1000, periodMs: 1000, burst: 1 },
  privateChat: { count: 1000, periodMs: 1000, burst: 1 },
  groupChat: { count: 1000, periodMs: 1000, burst: 1 },
  maxQueue: 1000,
  maxWaitMs: 10_000,
  maxRetries: 3,
}

const group = (id: string): ChatTarget => ({ id, kind: 'group' })
const send = (chat: ChatTarget) => ({ bot: 'b', method: 'sendMessage', chat, retriable: true })

function pacer(overrides: Partial<PacingConfig> = {}) {
  return createPacer({ ...base, ...overrides }, { store: new MemoryStore(), metrics: counting() })
}

function counting() {
  const counts = { tooMany: 0, retried: 0, refused: 0, sent: 0 }
  return {
    counts,
    queueDepth() {},
    sent: () => void counts.sent++,
    tooMany: () => void counts.tooMany++,
    retried: () => void counts.retried++,
    refused: () => void counts.refused++,
  }
}

const ok = <T>(value: T): Promise<Attempt<T>> => Promise.resolve({ value })

describe('pacer', () => {
  it('paces one chat at its rate, in order, one call in flight', async () => {
    const p = pacer({ groupChat: { count: 20, periodMs: 1000, burst: 1 } })
    const times: number[] = []
    const order: number[] = []
    let inFlight = 0
    let most = 0
    const calls = Array.from({ length: 10 }, (_, i) =>
      p.run(send(group('-1')), async () => {
        inFlight++
        most = Math.max(most, inFlight)
        times.push(Date.now())
        order.push(i)
        await new Promise((r) => setTimeout(r, 5))
        inFlight--
        return { value: i }
      }),
    )
    const results = await Promise.all(calls)
    expect(results.map((r) => r.kind)).toEqual(Array(10).fill('sent'))
    expect(order).toEqual([...Array(10).keys()])
    expect(most).toBe(1)
    // 10 calls at 20/s: 9 intervals of 50 ms, at least (timers never fire early by more than 1 ms).
    expect((times[9] as number) - (times[0] as number)).toBeGreaterThanOrEqual(9 * 50 - 5)
    for (let i = 1; i < times.length; i++)
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(45)
  })

  it('paces the bot as a whole over many chats, chats not blocking each other', async () => {
    const p = pacer({ global: { count: 50, periodMs: 1000, burst: 1 } })
    const times: number[] = []
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        p.run(send(group(`-${i + 1}`)), async () => {
          times.push(Date.now())
          return { value: i }
        }),
      ),
    )
    // 20 calls at 50/s: 19 intervals of 20 ms.
    expect((times[19] as number) - (times[0] as number)).toBeGreaterThanOrEqual(19 * 20 - 10)
  })

  it('lets uncounted calls pass unpaced, yet in their chat order', async () => {
    const p = pacer({ groupChat: { count: 1, periodMs: 60_000, burst: 1 } })
    const order: string[] = []
    const record = (name: string) => async () => {
      order.push(name)
      return { value: name }
    }
    const start = Date.now()
    const results = await Promise.all([
      p.run({ bot: 'b', method: 'sendChatAction', chat: group('-1'), retriable: true }, record('a')),
      p.run({ bot: 'b', method: 'getMe', chat: undefined, retriable: true }, record('b')),
      p.run(send(group('-1')), record('c')),
      p.run({ bot: 'b', method: 'deleteMessage', chat: group('-1'), retriable: true }, record('d')),
    ])
    expect(results.map((r) => r.kind)).toEqual(['sent', 'sent', 'sent', 'sent'])
    expect(order.filter((n) => n !== 'b')).toEqual(['a', 'c', 'd'])
    expect(Date.now() - start).toBeLessThan(5000)
  })

  it("answers Telegram's 429 when the queue is full or the wait too long", async () => {
    const p = pacer({ groupChat: { count: 1, periodMs: 10_000, burst: 1 }, maxQueue: 2, maxWaitMs: 200 })
    const first = p.run(send(group('-1')), () => ok(1))
    const second = p.run(send(group('-1')), () => ok(2))
    const third = await p.run(send(group('-1')), () => ok(3))
    expect(third).toMatchObject({ kind: 'refused', why: 'queue_full' })
    expect((third as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(1)
    expect(await first).toMatchObject({ kind: 'sent', value: 1 })
    const late = await second
    expect(late).toMatchObject({ kind: 'refused', why: 'wait_too_long' })
    expect((late as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(9)
  })

  it("pauses the chat for Telegram's retry_after and retries, a bounded number of times", async () => {
    const p = pacer({ maxRetries: 2 })
    const times: number[] = []
    const result = await p.run(send(group('-1')), async () => {
      times.push(Date.now())
      return times.length < 3 ? { value: 'flood', retryAfterS: 1 } : { value: 'ok' }
    })
    expect(result).toMatchObject({ kind: 'sent', value: 'ok', retries: 2 })
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(990)
    // A later call of the same chat waits out no pause that has passed; past maxRetries the 429 goes back.
    const again = await p.run(send(group('-1')), async () => ({ value: 'flood', retryAfterS: 1 }))
    expect(again).toMatchObject({ kind: 'sent', value: 'flood', retries: 2 })
  }, 15_000)

  it('returns the 429 of a call that cannot be resent, and pauses the chat for the next', async () => {
    const p = pacer()
    const first = await p.run({ ...send(group('-1')), retriable: false }, async () => ({
      value: 'flood',
      retryAfterS: 1,
    }))
    expect(first).toMatchObject({ kind: 'sent', value: 'flood', retries: 0 })
    const start = Date.now()
    await p.run(send(group('-1')), () => ok('ok'))
    expect(Date.now() - start).toBeGreaterThanOrEqual(900)
  })

  it("keeps other calls out of the bot's message budget", async () => {
    const p = pacer({ global: { count: 1, periodMs: 10_000, burst: 1 }, maxWaitMs: 20_000 })
    await p.run(send(group('-1')), () => ok(1))
    const held = p.run(send(group('-2')), () => ok(2))
    const start = Date.now()
    const me = await p.run({ bot: 'b', method: 'getMe', chat: undefined, retriable: true }, () => ok('me'))
    const action = await p.run(
      { bot: 'b', method: 'sendChatAction', chat: group('-3'), retriable: true },
      () => ok('typing'),
    )
    expect(me).toMatchObject({ kind: 'sent', value: 'me' })
    expect(action).toMatchObject({ kind: 'sent', value: 'typing' })
    expect(Date.now() - start).toBeLessThan(5000)
    await p.close()
    expect(await held).toMatchObject({ kind: 'refused', why: 'closing' })
  })

  it('pauses the whole bot after a global 429', async () => {
    const p = pacer({ maxRetries: 0 })
    const flood = await p.run(send(group('-1')), async () => ({
      value: 'flood',
      retryAfterS: 1,
      global: true,
    }))
    expect(flood).toMatchObject({ kind: 'sent', value: 'flood' })
    const start = Date.now()
    await p.run({ bot: 'b', method: 'getMe', chat: undefined, retriable: true }, () => ok('me'))
    await p.run(send(group('-2')), () => ok('other chat'))
    expect(Date.now() - start).toBeGreaterThanOrEqual(900)
    // Another bot is not paused.
    const other = Date.now()
    await p.run({ ...send(group('-2')), bot: 'c' }, () => ok('c'))
    expect(Date.now() - other).toBeLessThan(500)
  })

  it('close() refuses waiting calls and waits for those in flight', async () => {
    const p = pacer({ groupChat: { count: 1, periodMs: 10_000, burst: 1 } })
    let finish: (() => void) | undefined
    const first = p.run(
      send(group('-1')),
      () => new Promise<Attempt<number>>((r) => (finish = () => r({ value: 1 }))),
    )
    const second = p.run(send(group('-1')), () => ok(2))
    await new Promise((r) => setTimeout(r, 20))
    const closed = p.close()
    expect(await second).toMatchObject({ kind: 'refused', why: 'closing' })
    finish?.()
    await closed
    expect(await first).toMatchObject({ kind: 'sent', value: 1 })
    expect(await p.run(send(group('-1')), () => ok(3))).toMatchObject({ kind: 'refused', why: 'closing' })
  })
})
