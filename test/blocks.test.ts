/**
 * Runtime blocks through the real CLI and the admin API: the API's authentication, then a chat and
 * a user blocked (their updates answered 200 `blocked`, never forwarded), listed, lifted, and a
 * block that ends by itself with its duration.
 */

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { adminToken } from './helpers/keys.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const ADMIN_KEY = randomBytes(32).toString('base64url')
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
let gateway: RunningGateway
let token: string

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      top: 'admin:\n  listen: 127.0.0.1:0\n  api: { keys: [{ kid: ops, alg: HS256, key_file: admin.key }] }',
    }).replace('admin: { listen: 127.0.0.1:0 }\n', ''),
    files: { 'admin.key': ADMIN_KEY },
  })
  token = await adminToken(ADMIN_KEY)
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

/** Calls the admin API with the operator's token, or with `bearer` (null: no Authorization at all). */
async function api(method: string, path: string, body?: unknown, bearer?: string | null) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const given = bearer === undefined ? token : bearer
  if (given !== null) headers.authorization = `Bearer ${given}`
  const response = await fetch(`${gateway.admin}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, json: (await response.json()) as Record<string, unknown> }
}

/** Sends a message update from `user` in `chat`; returns the answer, its log line, and whether it was forwarded. */
async function send(chat: number, user = chat) {
  const update = messageUpdate({
    chat: { id: chat, type: 'group', title: 'g' },
    from: { id: user, is_bot: false, first_name: 'U' },
  })
  const before = upstream.received.length
  const reply = await post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
  const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
  return { reply, line, forwarded: upstream.received.length > before }
}

describe('admin API authentication through the CLI', () => {
  it.each([
    ['no token', 401, null],
    ['a forged token', 401, 'forged'],
    ['an expired token', 401, 'expired'],
    ['a token for another audience', 401, 'audience'],
    ['a token without the scope', 403, 'scope'],
  ])('%s: %i, and nothing is blocked', async (_name, status, kind) => {
    const bearer =
      kind === null
        ? null
        : kind === 'forged'
          ? await adminToken(randomBytes(32).toString('base64url'))
          : kind === 'expired'
            ? await adminToken(ADMIN_KEY, { exp: Math.floor(Date.now() / 1000) - 60 })
            : kind === 'audience'
              ? await adminToken(ADMIN_KEY, { aud: 'elsewhere' })
              : await adminToken(ADMIN_KEY, { scope: 'blocks:read' })
    const reply = await api('PUT', '/api/v1/blocks/bot/chat/1', { duration: '1h' }, bearer)
    expect([reply.status, reply.json]).toEqual([
      status,
      { ok: false, error: status === 401 ? 'unauthorized' : 'forbidden' },
    ])
    expect((await api('GET', '/api/v1/blocks')).json).toEqual({ ok: true, blocks: [] })
  })
})

describe('blocks through the CLI', () => {
  it('a blocked chat: its updates are dropped with 200 blocked; others pass; unblock restores it', async () => {
    expect((await send(-1001)).forwarded).toBe(true)
    const set = await api('PUT', '/api/v1/blocks/bot/chat/-1001', { duration: '1h', note: 'spam wave' })
    expect(set.status).toBe(200)
    expect(set.json.block).toMatchObject({
      bot: 'bot',
      kind: 'chat',
      id: -1001,
      expires_in: 3600,
      note: 'spam wave',
      by: 'test-operator',
    })
    await gateway.waitFor(
      (line) => line.msg === 'block set' && line.id === -1001 && line.sub === 'test-operator',
    )

    const blocked = await send(-1001, 5)
    expect([blocked.reply.status, blocked.reply.body, blocked.forwarded]).toEqual([200, '', false])
    expect(blocked.line).toMatchObject({
      reason: 'blocked',
      status: 200,
      chat_id: -1001,
      detail: 'chat blocked',
    })
    expect((await send(-1002, 5)).forwarded).toBe(true)

    const list = await api('GET', '/api/v1/blocks')
    expect(list.json.blocks).toEqual([expect.objectContaining({ bot: 'bot', kind: 'chat', id: -1001 })])

    expect((await api('DELETE', '/api/v1/blocks/bot/chat/-1001')).json).toEqual({ ok: true, removed: true })
    expect((await send(-1001, 5)).forwarded).toBe(true)
    expect((await api('GET', '/api/v1/blocks')).json).toEqual({ ok: true, blocks: [] })
  })

  it('a blocked user: dropped in every chat', async () => {
    await api('PUT', '/api/v1/blocks/bot/user/66', { duration: '10m' })
    for (const chat of [-2001, -2002, 66]) {
      const { line, forwarded } = await send(chat, 66)
      expect([line.reason, line.detail, forwarded]).toEqual(['blocked', 'user blocked', false])
    }
    expect((await send(-2001, 67)).forwarded).toBe(true)
    await api('DELETE', '/api/v1/blocks/bot/user/66')
  })

  it('a block ends with its duration', async () => {
    await api('PUT', '/api/v1/blocks/bot/chat/-3001', { duration: '1s' })
    expect((await send(-3001)).line.reason).toBe('blocked')
    let last = 'blocked'
    for (let i = 0; i < 60 && last === 'blocked'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      last = (await send(-3001)).line.reason as string
    }
    expect(last).toBe('forwarded')
    expect((await api('GET', '/api/v1/blocks')).json).toEqual({ ok: true, blocks: [] })
  })

  it('blocks outlive a reload', async () => {
    await api('PUT', '/api/v1/blocks/bot/chat/-4001', { duration: '1h' })
    const before = gateway.lines.filter((line) => line.msg === 'config reloaded').length
    gateway.child.kill('SIGHUP')
    await gateway.waitFor(
      () => gateway.lines.filter((line) => line.msg === 'config reloaded').length > before,
    )
    expect((await send(-4001)).line.reason).toBe('blocked')
  })
})
