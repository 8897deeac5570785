import { describe, expect, it } from 'vitest'
import { GatewayMetrics } from '../observe/metrics.js'
import { Exchange } from '../pipeline/exchange.js'
import { answerFor, type ForwardTarget } from './index.js'
import type { Upstream, UpstreamResult } from './upstream.js'

const target = (filter?: ForwardTarget['replyFilter'], shadow = false): ForwardTarget => ({
  upstream: {} as Upstream,
  maxInflight: 1,
  metrics: new GatewayMetrics('test').bot('t'),
  replyFilter: filter,
  replyShadow: shadow,
  sign: undefined,
})
const exchange = () => new Exchange({} as never, 'id', 0)
const answer = (status: number, body = '', contentType?: string, retryAfter?: string): UpstreamResult => ({
  kind: 'answer',
  status,
  contentType,
  retryAfter,
  body: Buffer.from(body),
})

describe('the upstream outcome table', () => {
  it.each([
    [
      answer(200, '{"method":"sendMessage"}', 'application/json'),
      200,
      'forwarded',
      '{"method":"sendMessage"}',
    ],
    [answer(200, '{}'), 200, 'forwarded', '{}'],
    [answer(204), 204, 'forwarded', null],
    [answer(299, 'x', 'text/plain'), 299, 'forwarded', 'x'],
    [answer(429, '', undefined, '30'), 429, 'upstream_busy', '{"ok":false,"error":"upstream_busy"}'],
    [answer(503), 503, 'upstream_busy', '{"ok":false,"error":"upstream_busy"}'],
    [answer(500), 502, 'upstream_error', '{"ok":false,"error":"upstream_error"}'],
    [answer(404), 502, 'upstream_error', '{"ok":false,"error":"upstream_error"}'],
    [answer(302), 502, 'upstream_error', '{"ok":false,"error":"upstream_error"}'],
    [{ kind: 'too_large', status: 200 }, 200, 'forwarded', null],
    [
      { kind: 'unreachable', code: 'ECONNREFUSED' },
      502,
      'upstream_unreachable',
      '{"ok":false,"error":"upstream_unreachable"}',
    ],
    [{ kind: 'timeout' }, 504, 'upstream_timeout', '{"ok":false,"error":"upstream_timeout"}'],
  ] as [UpstreamResult, number, string, string | null][])(
    '%j -> %d %s',
    async (result, status, reason, body) => {
      const out = await answerFor(target(), exchange(), result)
      expect(out.status).toBe(status)
      expect(out.reason).toBe(reason)
      expect(out.body === null ? null : out.body.toString()).toBe(body)
    },
  )

  it('passes Retry-After of a busy upstream on, and the content type of a reply', async () => {
    expect((await answerFor(target(), exchange(), answer(429, '', undefined, '30'))).retryAfter).toBe('30')
    expect(
      (await answerFor(target(), exchange(), answer(200, '{}', 'application/json; charset=utf-8')))
        .contentType,
    ).toBe('application/json; charset=utf-8')
    expect((await answerFor(target(), exchange(), answer(200, '{}'))).contentType).toBe('application/json')
  })

  it('replaces a refused reply by an empty 200, or passes it in shadow mode with a note', async () => {
    const refuse = () =>
      ({ kind: 'refused', reason: 'reply_method_not_allowed', method: 'leaveChat' }) as const
    const enforced = exchange()
    expect(await answerFor(target(refuse), enforced, answer(200, '{"method":"leaveChat"}'))).toMatchObject({
      status: 200,
      body: null,
    })
    expect(enforced.detail).toBe('reply_method_not_allowed')
    const shadowed = exchange()
    expect(
      (
        await answerFor(target(refuse, true), shadowed, answer(200, '{"method":"leaveChat"}'))
      ).body?.toString(),
    ).toBe('{"method":"leaveChat"}')
    expect(shadowed.detail).toBe('would withhold reply: reply_method_not_allowed')
  })

  it('waits for a filter that checks chats, and sends the body it read', async () => {
    const reread = Buffer.from('{"method":"sendMessage","chat_id":1}')
    const checked = async () => ({ kind: 'pass', body: reread }) as const
    const out = await answerFor(
      target(checked),
      exchange(),
      answer(200, '{"chat_id":2,"method":"sendMessage","chat_id":1}'),
    )
    expect(out.body).toBe(reread)
    const refused = exchange()
    const chat = async () => ({ kind: 'refused', reason: 'chat_not_allowed', method: 'sendMessage' }) as const
    expect((await answerFor(target(chat), refused, answer(200, '{"method":"sendMessage"}'))).body).toBeNull()
    expect(refused.detail).toBe('chat_not_allowed')
  })
})
