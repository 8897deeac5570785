import { describe, expect, it } from 'vitest'
import { GatewayMetrics } from '../../observe/metrics.js'
import type { RequestCheck, UpdateCheck } from '../../pipeline/check.js'
import { Exchange } from '../../pipeline/exchange.js'
import { ClientIpResolver } from '../../request/client-ip.js'
import { CidrSet } from '../../request/ip.js'
import { type Store, StoreError } from '../../store/index.js'
import { MemoryStore } from '../../store/memory.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import {
  checkLimits,
  createIpLimitsCheck,
  createUpdateLimitsCheck,
  ipKey,
  type LimitRule,
  type LimitsDeps,
} from './index.js'

const resolver = new ClientIpResolver(new CidrSet([]))

function setup(rules: LimitRule[], options: { policyMode?: 'shadow'; store?: Store } = {}) {
  let now = 1_800_000_000_000
  const metrics = new GatewayMetrics('test')
  const deps: LimitsDeps = {
    bot: 'shop',
    username: 'shop_bot',
    store: options.store ?? new MemoryStore({ clock: () => now }),
    metrics,
    policyMode: options.policyMode,
  }
  return {
    ip: createIpLimitsCheck(rules, deps),
    updates: createUpdateLimitsCheck(rules, deps),
    metrics,
    advance: (ms: number) => {
      now += ms
    },
  }
}

function exchange(ip = '149.154.167.99'): Exchange {
  const x = new Exchange({} as never, 'id', 0)
  x.client = resolver.resolve(ip, undefined)
  return x
}

function update(type: string, payload: Record<string, unknown>, id = 1): Update {
  const parsed = readEnvelope({ update_id: id, [type]: payload })
  if (typeof parsed === 'string') throw new Error(parsed)
  return parsed
}

const message = (chat: number, user: number, text = 'hi') =>
  update('message', { message_id: 1, date: 0, chat: { id: chat, type: 'private' }, from: { id: user }, text })

const callback = (chat: number, user: number, id = 'cq-1') =>
  update('callback_query', {
    id,
    from: { id: user },
    chat_instance: 'x',
    message: { message_id: 1, date: 0, chat: { id: chat, type: 'private' } },
  })

const run = (check: UpdateCheck | undefined, u: Update, x = exchange()) => check?.run(x, u)
const runIp = (check: RequestCheck | undefined, x: Exchange) => check?.run(x)

describe('ipKey', () => {
  it('keys IPv4 by address and IPv6 by its /64 network', () => {
    const key = (ip: string) => ipKey(resolver.resolve(ip, undefined))
    expect(key('149.154.167.99')).toBe('149.154.167.99')
    expect(key('::ffff:149.154.167.99')).toBe('149.154.167.99')
    expect(key('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(key('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(key('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64')
  })
})

describe('ip limits (check 3)', () => {
  it('answers 429 with Retry-After in whole seconds, rounded up, once the burst is spent', () => {
    const { ip, advance } = setup([{ name: 'per-ip', key: 'ip', rate: '2/s', burst: 3 }])
    for (let i = 0; i < 3; i++) expect(runIp(ip, exchange())).toBeUndefined()
    expect(runIp(ip, exchange())).toEqual({
      kind: 'reject',
      status: 429,
      reason: 'rate_limited',
      retryAfter: 1,
    })
    advance(500)
    expect(runIp(ip, exchange())).toBeUndefined()
    const x = exchange()
    expect(runIp(ip, x)).toMatchObject({ status: 429 })
    expect(x.detail).toBe('limit per-ip')
  })

  it('caps Retry-After at Telegram’s 3600 s', () => {
    const { ip } = setup([{ name: 'per-ip', key: 'ip', rate: '1/day', burst: 1 }])
    runIp(ip, exchange())
    expect(runIp(ip, exchange())).toMatchObject({ retryAfter: 3600 })
  })

  it('shares one limit across an IPv6 /64 and keeps other networks apart', () => {
    const { ip } = setup([{ name: 'per-ip', key: 'ip', rate: '1/h' }])
    expect(runIp(ip, exchange('2001:db8:0:1::1'))).toBeUndefined()
    expect(runIp(ip, exchange('2001:db8:0:1::2'))).toMatchObject({ status: 429 })
    expect(runIp(ip, exchange('2001:db8:0:2::1'))).toBeUndefined()
    expect(runIp(ip, exchange('149.154.167.1'))).toBeUndefined()
  })

  it('is not created without ip rules, and takes no chat, user or bot rule', () => {
    const { ip, updates } = setup([{ name: 'per-chat', key: 'chat', rate: '1/h' }])
    expect(ip).toBeUndefined()
    expect(updates).toBeDefined()
    expect(setup([{ name: 'per-ip', key: 'ip', rate: '1/h' }]).updates).toBeUndefined()
  })
})

describe('chat, user and bot limits (check 12)', () => {
  it('drops with 200 (a drop verdict) per chat, and counts each chat on its own', () => {
    const { updates, metrics } = setup([{ name: 'per-chat', key: 'chat', rate: '1/min', burst: 2 }])
    expect(run(updates, message(1, 10))).toBeUndefined()
    expect(run(updates, message(1, 11))).toBeUndefined()
    const x = exchange()
    expect(run(updates, message(1, 12), x)).toEqual({ kind: 'drop', reason: 'rate_limited' })
    expect(x.detail).toBe('limit per-chat')
    expect(run(updates, message(2, 10))).toBeUndefined()
    expect(metrics.render()).toMatch(
      /^botgate_limit_exceeded_total\{bot="shop",limit="per-chat",mode="enforce"\} 1$/m,
    )
  })

  it('keys user limits by the sender, across chats, and bot limits by the bot', () => {
    const { updates } = setup([
      { name: 'per-user', key: 'user', rate: '1/h' },
      { name: 'all', key: 'bot', rate: '3/h' },
    ])
    expect(run(updates, message(1, 10))).toBeUndefined()
    expect(run(updates, message(2, 10))).toMatchObject({ reason: 'rate_limited' })
    expect(run(updates, message(2, 11))).toBeUndefined()
    expect(run(updates, message(3, 12))).toBeUndefined()
    expect(run(updates, message(4, 13))).toMatchObject({ reason: 'rate_limited' })
  })

  it('does not apply a rule to an update without what it keys on', () => {
    const { updates } = setup([
      { name: 'per-chat', key: 'chat', rate: '1/h' },
      { name: 'per-user', key: 'user', rate: '1/h' },
    ])
    const inline = update('inline_query', { id: 'q', from: { id: 5 }, query: '', offset: '' })
    expect(run(updates, inline)).toBeUndefined()
    // per-chat does not apply, per-user does
    expect(run(updates, inline)).toMatchObject({ reason: 'rate_limited' })
    const post = update('channel_post', {
      message_id: 1,
      date: 0,
      chat: { id: -100, type: 'channel' },
      text: 'x',
    })
    expect(run(updates, post)).toBeUndefined()
    expect(run(updates, post)).toMatchObject({ reason: 'rate_limited' })
  })

  it('applies update_types filters', () => {
    const { updates } = setup([
      { name: 'buttons', key: 'user', rate: '1/h', update_types: ['callback_query'] },
    ])
    expect(run(updates, message(1, 10))).toBeUndefined()
    expect(run(updates, message(1, 10))).toBeUndefined()
    expect(run(updates, callback(1, 10))).toBeUndefined()
    expect(run(updates, callback(1, 10))).toMatchObject({ reason: 'rate_limited' })
  })

  it('counts a commands rule per command, only for ours, and a command only once per update', () => {
    const { updates } = setup([{ name: 'reports', key: 'user', rate: '1/h', commands: ['report', 'Ban'] }])
    const command = (text: string) => message(1, 10, text)
    expect(run(updates, command('hello'))).toBeUndefined()
    expect(run(updates, command('/report@other_bot x'))).toBeUndefined()
    expect(run(updates, command('/report x'))).toBeUndefined()
    expect(run(updates, command('/REPORT@Shop_Bot again'))).toMatchObject({ reason: 'rate_limited' })
    expect(run(updates, command('/ban 1'))).toBeUndefined()
    expect(run(updates, command('/ban 2'))).toMatchObject({ reason: 'rate_limited' })
    // another user has their own counts
    expect(run(updates, message(1, 11, '/report'))).toBeUndefined()
    const twice = message(2, 12, '/report')
    const entities = [
      { type: 'bot_command', offset: 0, length: 7 },
      { type: 'bot_command', offset: 8, length: 7 },
    ]
    const doubled = update('message', {
      ...(twice.payload as object),
      text: '/report /report',
      entities,
    })
    expect(run(updates, doubled)).toBeUndefined()
  })

  it('replies at most once per interval to a chat: sendMessage, or answerCallbackQuery', () => {
    const { updates, advance } = setup([
      { name: 'per-chat', key: 'chat', rate: '20/min', burst: 1, reply: "You're sending messages too fast." },
    ])
    run(updates, message(7, 10))
    expect(run(updates, message(7, 10))).toEqual({
      kind: 'drop',
      reason: 'rate_limited',
      reply: { method: 'sendMessage', chat_id: 7, text: "You're sending messages too fast." },
    })
    expect(run(updates, message(7, 10))).toEqual({ kind: 'drop', reason: 'rate_limited' })
    advance(2999)
    expect(run(updates, callback(7, 10))).toEqual({ kind: 'drop', reason: 'rate_limited' })
    advance(1)
    run(updates, message(7, 10)) // passes: one interval (3 s) has gone by
    expect(run(updates, callback(7, 10, 'cq-9'))).toEqual({
      kind: 'drop',
      reason: 'rate_limited',
      reply: {
        method: 'answerCallbackQuery',
        callback_query_id: 'cq-9',
        text: "You're sending messages too fast.",
      },
    })
  })

  it('keys the reply-once mark by chat, so a user limit replies in each chat', () => {
    const { updates } = setup([{ name: 'per-user', key: 'user', rate: '1/h', reply: 'slow down' }])
    run(updates, message(1, 10))
    expect(run(updates, message(1, 10))).toMatchObject({ reply: { chat_id: 1 } })
    expect(run(updates, message(2, 10))).toMatchObject({ reply: { chat_id: 2 } })
    expect(run(updates, message(2, 10))).not.toHaveProperty('reply')
  })

  it('records shadow rules as "would" and never drops for them', () => {
    const { updates, metrics } = setup([
      { name: 'trial', key: 'chat', rate: '1/h', mode: 'shadow', reply: 'never sent' },
      { name: 'per-chat', key: 'chat', rate: '2/h' },
    ])
    run(updates, message(1, 10))
    const x = exchange()
    expect(run(updates, message(1, 10), x)).toBeUndefined()
    expect(x.would).toEqual(['rate_limited'])
    expect(x.detail).toBe('limit trial (shadow)')
    const y = exchange()
    expect(run(updates, message(1, 10), y)).toEqual({ kind: 'drop', reason: 'rate_limited' })
    expect(y.would).toEqual(['rate_limited'])
    expect(y.detail).toBe('limit per-chat')
    expect(metrics.render()).toMatch(
      /^botgate_limit_exceeded_total\{bot="shop",limit="trial",mode="shadow"\} 2$/m,
    )
  })

  it('takes the policy mode for rules without their own', () => {
    const { updates } = setup(
      [
        { name: 'a', key: 'chat', rate: '1/h' },
        { name: 'b', key: 'chat', rate: '1/h', mode: 'enforce' },
      ],
      { policyMode: 'shadow' },
    )
    run(updates, message(1, 10))
    const x = exchange()
    expect(run(updates, message(1, 10), x)).toEqual({ kind: 'drop', reason: 'rate_limited' })
    expect(x.would).toEqual(['rate_limited'])
  })
})

describe('a store that cannot answer (on_error: closed)', () => {
  const failing = {
    kind: 'redis',
    limit: () => Promise.reject(new StoreError('store unavailable')),
  } as unknown as Store

  it('gives 503 + Retry-After (store_unavailable), never rate_limited', async () => {
    const { ip, updates } = setup(
      [
        { name: 'per-ip', key: 'ip', rate: '1/h' },
        { name: 'per-chat', key: 'chat', rate: '1/h' },
      ],
      { store: failing },
    )
    const unavailable = { kind: 'reject', status: 503, reason: 'store_unavailable', retryAfter: 5 }
    expect(await runIp(ip, exchange())).toEqual(unavailable)
    expect(await run(updates, message(1, 10))).toEqual(unavailable)
  })

  it('lets any other error through as a bug (500), not as a verdict', async () => {
    const broken = { kind: 'redis', limit: () => Promise.reject(new TypeError('bug')) } as unknown as Store
    const { updates } = setup([{ name: 'per-chat', key: 'chat', rate: '1/h' }], { store: broken })
    await expect(run(updates, message(1, 10))).rejects.toThrow('bug')
  })
})

describe('checkLimits', () => {
  function problems(rules: LimitRule[]): string[] {
    const found: string[] = []
    checkLimits(rules, (at, message) => found.push(`${at.join('.')}: ${message}`))
    return found
  }

  it('accepts sound rules', () => {
    expect(
      problems([
        { name: 'per-ip', key: 'ip', rate: '50/s', burst: 100 },
        { name: 'reports', key: 'user', rate: '3/h', commands: ['report'], update_types: ['message'] },
      ]),
    ).toEqual([])
  })

  it('names each problem', () => {
    expect(
      problems([
        { name: 'a', key: 'ip', rate: '2000000/s' },
        {
          name: 'a',
          key: 'ip',
          rate: '1/day',
          burst: 400,
          commands: ['x'],
          update_types: ['message'],
          reply: 'r',
        },
        { name: 'b', key: 'chat', rate: '1/s', update_types: ['mesage', 'nonsense_type_xyz'] },
      ]),
    ).toEqual([
      '0.rate: is more than one request per microsecond; the most is 1000000/s',
      '1.name: duplicates limits[0].name: each limit needs its own name',
      '1.burst: lasts longer than a year at this rate (burst x period / N); lower it',
      '1.commands: an ip limit runs before the update is read, so it cannot filter by commands',
      '1.update_types: an ip limit runs before the update is read, so it cannot filter by update_types',
      '1.reply: an ip limit answers 429 before the update is read; it cannot reply',
      '2.update_types.0: "mesage" is not an update type (did you mean "message"?)',
      '2.update_types.1: "nonsense_type_xyz" is not an update type',
    ])
  })
})
