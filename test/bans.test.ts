/**
 * The policy section `bans` through the real CLI: an address that keeps sending bad secrets is
 * refused 403 `banned` (before its secret is compared) and let back in when the ban ends;
 * Telegram's ranges are never banned; a user who keeps being dropped is blocked through the
 * admin API's blocks (listed with its cause, removable); each ban is logged once, counted in
 * /metrics and alerted; and two gateways on one Redis share the counts and the bans.
 */

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { adminToken } from './helpers/keys.js'
import {
  client,
  keysAndCleanup,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const FORGED = `forged-${secret()}`
const ADMIN_KEY = randomBytes(32).toString('base64url')
const ALERT_TOKEN = '777000:alert-bot-token-bans_ABCDEFGHIJKLMNOP'
const PATH = '/tg/hook-0123456789abcdef'
/** Short enough to wait out in a test, long enough to be seen holding on a loaded machine. */
const BAN_MS = 3000

const BANS_POLICY = `sources: { allow: [any] }
roles:
  admins: [1]
commands:
  allow: [start, admin]
  roles: { admin: [admins] }
bans:
  ips: { failures: 3, within: 10m, ban: ${BAN_MS / 1000}s }
  users: { drops: 2, within: 10m, ban: 1h, reasons: [command_forbidden] }`

const from = (ip: string) => ['x-forwarded-for', ip]

function command(text: string, user: number) {
  return messageUpdate({
    chat: { id: user, type: 'private' },
    from: { id: user, is_bot: false, first_name: 'U' },
    text,
    entities: [{ type: 'bot_command', offset: 0, length: text.length }],
  })
}

describe('bans on one gateway', () => {
  let upstream: TestUpstream
  let api: FakeBotApi
  let gateway: RunningGateway
  let token: string
  let url: string

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    api = await FakeBotApi.start([ALERT_TOKEN])
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: `trusted_proxies: [127.0.0.1]
admin:
  listen: 127.0.0.1:0
  api: { keys: [{ kid: ops, alg: HS256, key_file: admin.key }] }
alerts:
  token_file: alert_token
  chat_id: -100123
  api_base: ${api.url}
  interval: 2s
  bad_secret: false`,
        policy: BANS_POLICY,
      }).replace('admin: { listen: 127.0.0.1:0 }\n', ''),
      files: { 'admin.key': ADMIN_KEY, alert_token: ALERT_TOKEN },
    })
    token = await adminToken(ADMIN_KEY)
    url = `${gateway.webhook}${PATH}`
  })

  afterAll(async () => {
    expect(await gateway.stop()).toBe(0)
    await upstream.close()
    await api.close()
  })

  const send = (update: Record<string, unknown>, ip: string, secretToken = SECRET) =>
    post(url, JSON.stringify(update), telegramHeaders(secretToken, ...from(ip)))

  it('bans an address after more than N bad secrets, refuses it 403 banned, and lets it back in after the ban', async () => {
    const attacker = '203.0.113.5'
    for (let i = 0; i < 4; i++) expect((await send(messageUpdate(), attacker, FORGED)).status).toBe(401)
    // Banned: even the right secret is refused now, before it is compared.
    const refused = await send(messageUpdate(), attacker)
    expect(refused.status).toBe(403)
    expect(JSON.parse(refused.body)).toEqual({ ok: false, error: 'banned' })
    expect(await gateway.requestLine(refused.headers['x-request-id'] as string)).toMatchObject({
      reason: 'banned',
      ip: attacker,
    })
    // Others are not affected.
    expect((await send(messageUpdate(), '203.0.113.6')).status).toBe(200)
    // More failures while banned raise nothing new.
    await send(messageUpdate(), attacker, FORGED)
    const bans = gateway.lines.filter((line) => line.msg === 'banned' && line.ip === attacker)
    expect(bans).toEqual([
      expect.objectContaining({ bot: 'bot', kind: 'ip', cause: 'bad_secret', ban_ms: BAN_MS, level: 'warn' }),
    ])
    expect(await gateway.metrics()).toMatch(/^botgate_bans_total\{bot="bot",kind="ip",mode="enforce"\} 1$/m)

    // The ban runs its time, then the address is answered as anyone else.
    const deadline = Date.now() + BAN_MS + 10_000
    let status = 403
    while (status === 403 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      status = (await send(messageUpdate(), attacker)).status
    }
    expect(status).toBe(200)
  })

  it("never bans Telegram's own ranges", async () => {
    const telegram = '149.154.167.99'
    for (let i = 0; i < 8; i++) expect((await send(messageUpdate(), telegram, FORGED)).status).toBe(401)
    expect((await send(messageUpdate(), telegram)).status).toBe(200)
    expect(gateway.lines.some((line) => line.msg === 'banned' && line.ip === telegram)).toBe(false)
  })

  it('blocks a user dropped too often, visible and removable in the admin API', async () => {
    const user = 4242
    const ip = '198.51.100.7'
    for (let i = 0; i < 3; i++) {
      const reply = await send(command('/admin', user), ip)
      expect(reply.status).toBe(200)
      expect((await gateway.requestLine(reply.headers['x-request-id'] as string)).reason).toBe(
        'command_forbidden',
      )
    }
    await gateway.waitFor((line) => line.msg === 'banned' && line.user_id === user)
    const blocked = await send(command('/start', user), ip)
    expect(await gateway.requestLine(blocked.headers['x-request-id'] as string)).toMatchObject({
      reason: 'blocked',
      detail: 'user blocked',
    })

    const headers = { authorization: `Bearer ${token}` }
    const list = (await (await fetch(`${gateway.admin}/api/v1/blocks`, { headers })).json()) as {
      blocks: Record<string, unknown>[]
    }
    expect(list.blocks).toEqual([
      expect.objectContaining({
        bot: 'bot',
        kind: 'user',
        id: user,
        note: 'banned: more than 2 drops (command_forbidden) within 10m',
        by: 'bans',
      }),
    ])
    const removed = await fetch(`${gateway.admin}/api/v1/blocks/bot/user/${user}`, {
      method: 'DELETE',
      headers,
    })
    expect(await removed.json()).toEqual({ ok: true, removed: true })
    const before = upstream.received.length
    await send(command('/start', user), ip)
    expect(upstream.received.length).toBe(before + 1)
  })

  it('alerts the bans, aggregated, naming neither address nor user', async () => {
    const calls = await api.waitForCalls('sendMessage', 1)
    const texts = calls.map((call) => String(call.params.text))
    const text = texts.find((t) => t.includes(': bans')) ?? texts.join('\n')
    expect(text).toMatch(/[12] automatic bans? raised in 2s/)
    expect(text).toContain('By bot: bot')
    expect(text).not.toContain('203.0.113.5')
    expect(text).not.toContain('4242')
  })
})

const redisAvailable = await sharedRedisAvailable()

describe.skipIf(!redisAvailable)('bans shared by two gateways on one Redis', () => {
  const prefix = testPrefix('bans')
  let upstream: TestUpstream
  let gateways: RunningGateway[]

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    const config = botConfig({
      upstream: upstream.url,
      secret: SECRET,
      top: `trusted_proxies: [127.0.0.1]
store:
  type: redis
  url: ${SHARED_REDIS_URL}
  prefix: "${prefix}"
  timeout: 1s
  on_error: closed`,
      policy: BANS_POLICY.replace(`ban: ${BAN_MS / 1000}s`, 'ban: 1h'),
    })
    gateways = await Promise.all([1, 2].map(() => RunningGateway.start({ config })))
  })

  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()))
    await upstream.close()
    const redis = client(SHARED_REDIS_URL)
    await redis.connect()
    await keysAndCleanup(redis, prefix)
    redis.disconnect()
  })

  const sendTo = (i: number, ip: string, secretToken: string) =>
    post(
      `${(gateways[i] as RunningGateway).webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(secretToken, ...from(ip)),
    )

  it('counts failures on both gateways together, and both refuse the banned address', async () => {
    const attacker = '192.0.2.44'
    // Two failures on each: more than 3 in all, though neither saw more than 2.
    for (const i of [0, 1, 0, 1]) expect((await sendTo(i, attacker, FORGED)).status).toBe(401)
    // The ban is counted after the answer (two Redis round trips): wait for it to be raised.
    const banned = (gateway: RunningGateway) =>
      gateway.lines.some((line) => line.msg === 'banned' && line.ip === attacker)
    const deadline = Date.now() + 10_000
    while (!gateways.some(banned) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    for (const i of [0, 1]) expect((await sendTo(i, attacker, SECRET)).status).toBe(403)
    expect((await sendTo(1, '192.0.2.45', SECRET)).status).toBe(200)
    // Raised once, by whichever gateway saw the failure that tipped it over.
    const raised = gateways.flatMap((gateway) =>
      gateway.lines.filter((line) => line.msg === 'banned' && line.ip === attacker),
    )
    expect(raised).toHaveLength(1)
  })
})
