import { describe, expect, it } from 'vitest'
import { Blocks } from '../../blocks/index.js'
import { Exchange } from '../../pipeline/exchange.js'
import type { Reason } from '../../pipeline/verdict.js'
import type { ClientAddress } from '../../request/client-ip.js'
import { parseIp } from '../../request/ip.js'
import { MemoryStore } from '../../store/memory.js'
import type { UpdateFacts } from '../../telegram/update.js'
import { type BanEvent, type BansPolicy, createBans } from './index.js'

const MINUTE = 60_000

function setup(policy: BansPolicy, shadow = false) {
  let now = Date.UTC(2026, 11, 7)
  const clock = () => now
  const store = new MemoryStore({ clock })
  const blocks = new Blocks(store, { clock })
  const events: BanEvent[] = []
  const errors: unknown[] = []
  const bans = createBans(policy, shadow, {
    bot: 'shop',
    store,
    blocks,
    onBan: (event) => events.push(event),
    onError: (error) => errors.push(error),
  })
  if (bans === undefined) throw new Error('no bans')
  return {
    bans,
    store,
    blocks,
    events,
    errors,
    advance: (ms: number) => {
      now += ms
    },
  }
}

function from(ip: string, userId?: number): Exchange {
  const exchange = new Exchange({} as never, 'r', 0)
  const parsed = parseIp(ip)
  exchange.client = { ip: parsed, text: ip, peer: parsed, trustedPeer: false } as ClientAddress
  if (userId !== undefined) exchange.update = { id: 1, type: 'message', userId } as UpdateFacts
  return exchange
}

const fail = (
  bans: ReturnType<typeof setup>['bans'],
  ip: string,
  reason: Reason,
  times: number,
  user?: number,
) => {
  for (let i = 0; i < times; i++) bans.observe(from(ip, user), reason)
}

const IPS: BansPolicy = { ips: { failures: 3, within: '10m', ban: '1h' } }

describe('address bans', () => {
  it('bans an address after more than N failed authentications, at check 2, for the ban time', async () => {
    const { bans, events, advance } = setup(IPS)
    expect(bans.check?.name).toBe('bans')
    fail(bans, '203.0.113.9', 'bad_secret', 3)
    expect(await bans.check?.run(from('203.0.113.9'))).toBeUndefined()
    fail(bans, '203.0.113.9', 'ip_not_allowed', 1)
    const exchange = from('203.0.113.9')
    expect(await bans.check?.run(exchange)).toEqual({ kind: 'reject', status: 403, reason: 'banned' })
    expect(exchange.detail).toBe('address banned')
    expect(events).toEqual([
      {
        bot: 'shop',
        kind: 'ip',
        subject: '203.0.113.9',
        cause: 'ip_not_allowed',
        durationMs: 60 * MINUTE,
        shadow: false,
      },
    ])
    // Another address is not touched, and more failures do not raise the ban again.
    expect(await bans.check?.run(from('203.0.113.10'))).toBeUndefined()
    fail(bans, '203.0.113.9', 'bad_secret', 5)
    expect(events).toHaveLength(1)
    advance(60 * MINUTE + 1)
    expect(await bans.check?.run(from('203.0.113.9'))).toBeUndefined()
  })

  it('forgets failures spread wider than the window: N per T pass', async () => {
    const { bans, advance } = setup(IPS)
    for (let i = 0; i < 12; i++) {
      fail(bans, '203.0.113.9', 'bad_secret', 1)
      advance(4 * MINUTE) // one per 4 minutes, under 3 per 10 minutes
    }
    expect(await bans.check?.run(from('203.0.113.9'))).toBeUndefined()
  })

  it("counts only failed authentication, and never bans Telegram's ranges unless told to", async () => {
    const { bans, events } = setup(IPS)
    fail(bans, '203.0.113.9', 'rate_limited', 10)
    fail(bans, '203.0.113.9', 'malformed_json', 10)
    fail(bans, '149.154.167.220', 'bad_secret', 10)
    expect(events).toEqual([])
    expect(await bans.check?.run(from('149.154.167.220'))).toBeUndefined()
    const told = setup({ ips: { ...IPS.ips, telegram: true } } as BansPolicy)
    fail(told.bans, '149.154.167.220', 'bad_secret', 4)
    expect(await told.bans.check?.run(from('149.154.167.220'))).toMatchObject({ reason: 'banned' })
  })

  it('bans IPv6 addresses by their /64', async () => {
    const { bans } = setup(IPS)
    fail(bans, '2001:db8:1:2::1', 'bad_secret', 2)
    fail(bans, '2001:db8:1:2::ffff', 'bad_secret', 2)
    expect(await bans.check?.run(from('2001:db8:1:2:abcd::9'))).toMatchObject({ reason: 'banned' })
    expect(await bans.check?.run(from('2001:db8:1:3::1'))).toBeUndefined()
  })

  it('in shadow mode reports the ban and marks it apart from real bans', async () => {
    const { bans, events, store } = setup(IPS, true)
    fail(bans, '203.0.113.9', 'bad_secret', 4)
    expect(events).toMatchObject([{ kind: 'ip', shadow: true }])
    expect(bans.check?.shadow).toBe(true)
    // The check still finds it, for the runner to count as "would": it refuses nothing itself.
    expect(await bans.check?.run(from('203.0.113.9'))).toMatchObject({ reason: 'banned' })
    expect(await store.read('{shop}:ban:ip:203.0.113.9')).toBeUndefined()
  })
})

describe('user bans', () => {
  const USERS: BansPolicy = { users: { drops: 2, within: '10m', ban: '30m' } }

  it('blocks a user dropped too often through the blocks, with its cause, for the ban time', async () => {
    const { bans, blocks, events, advance } = setup(USERS)
    expect(bans.check).toBeUndefined()
    fail(bans, '203.0.113.9', 'content_not_allowed', 2, 42)
    fail(bans, '203.0.113.9', 'command_not_allowed', 5, 42) // not a reason that counts
    await new Promise((resolve) => setImmediate(resolve))
    expect(await blocks.list('shop')).toEqual([])
    fail(bans, '203.0.113.9', 'rate_limited', 1, 42)
    await new Promise((resolve) => setImmediate(resolve))
    expect(await blocks.list('shop')).toMatchObject([
      {
        kind: 'user',
        id: 42,
        by: 'bans',
        note: 'banned: more than 2 drops (rate_limited) within 10m',
        until: Date.UTC(2026, 11, 7) + 30 * MINUTE,
      },
    ])
    expect(events).toEqual([
      {
        bot: 'shop',
        kind: 'user',
        subject: '42',
        cause: 'rate_limited',
        durationMs: 30 * MINUTE,
        shadow: false,
      },
    ])
    fail(bans, '203.0.113.9', 'rate_limited', 3, 42)
    await new Promise((resolve) => setImmediate(resolve))
    expect(events).toHaveLength(1)
    advance(30 * MINUTE + 1)
    expect(await blocks.list('shop')).toEqual([])
  })

  it('counts only the listed reasons', async () => {
    const { bans, blocks } = setup({
      users: { ...USERS.users, reasons: ['command_forbidden'] },
    } as BansPolicy)
    fail(bans, '203.0.113.9', 'rate_limited', 5, 42)
    fail(bans, '203.0.113.9', 'command_forbidden', 3, 7)
    await new Promise((resolve) => setImmediate(resolve))
    expect((await blocks.list('shop')).map((block) => block.id)).toEqual([7])
  })

  it('does not exist without ips or users', () => {
    expect(
      createBans({}, false, {
        bot: 'shop',
        store: new MemoryStore(),
        blocks: new Blocks(new MemoryStore()),
        onBan: () => {},
        onError: () => {},
      }),
    ).toBeUndefined()
  })
})
