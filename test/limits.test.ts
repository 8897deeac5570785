/**
 * Rate limits through the real CLI with the default memory store: ip limits answer 429 +
 * Retry-After between the sources and the secret check (SPEC check 3); chat, user and bot limits
 * drop with 200 after every other check (check 12), replying at most once per interval.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream

beforeAll(async () => {
  upstream = await TestUpstream.start()
})
afterAll(async () => {
  await upstream.close()
})

function callbackUpdate(id: string, chat = 4242): Record<string, unknown> {
  return {
    update_id: Math.floor(Math.random() * 1e9),
    callback_query: {
      id,
      from: { id: chat, is_bot: false, first_name: 'Ann' },
      chat_instance: '1',
      data: 'x',
      message: { message_id: 1, date: 1763712000, chat: { id: chat, type: 'private' } },
    },
  }
}

describe('ip limits (check 3)', () => {
  let gateway: RunningGateway
  let url: string
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: 'trusted_proxies: [127.0.0.1]',
        policy: `sources: { allow: [149.154.160.0/20, 2001:db8::/32] }
limits:
  - { name: per-ip, key: ip, rate: 1/h, burst: 2 }`,
      }),
    })
    url = `${gateway.webhook}${PATH}`
  })
  afterAll(async () => {
    await gateway.stop()
  })

  const from = (ip: string, token = SECRET) =>
    post(url, JSON.stringify(messageUpdate()), telegramHeaders(token, 'x-forwarded-for', ip))

  it('answers 429 with Retry-After past the burst, before the secret is even looked at', async () => {
    expect((await from('149.154.167.1')).status).toBe(200)
    expect((await from('149.154.167.1', secret())).status).toBe(401) // authenticated later: still counted
    const limited = await from('149.154.167.1')
    expect(limited.status).toBe(429)
    expect(limited.headers['retry-after']).toBe('3600')
    expect(limited.json()).toEqual({ ok: false, error: 'rate_limited' })
    // over the limit, a wrong secret gets the 429 too: check 3 comes before check 4
    expect((await from('149.154.167.1', secret())).status).toBe(429)
    const line = await gateway.requestLine(limited.headers['x-request-id'] as string)
    expect(line).toMatchObject({
      reason: 'rate_limited',
      status: 429,
      ip: '149.154.167.1',
      detail: 'limit per-ip',
    })
  })

  it('runs after sources: a refused address consumes nothing', async () => {
    for (let i = 0; i < 3; i++) expect((await from('203.0.113.9')).status).toBe(403)
    expect((await from('149.154.167.2')).status).toBe(200)
  })

  it('counts an IPv6 /64 as one client', async () => {
    expect((await from('2001:db8:0:1::1')).status).toBe(200)
    expect((await from('2001:db8:0:1:ffff::2')).status).toBe(200)
    expect((await from('2001:db8:0:1::3')).status).toBe(429)
    expect((await from('2001:db8:0:2::1')).status).toBe(200)
  })
})

describe('chat, user and bot limits (check 12)', () => {
  let gateway: RunningGateway
  let url: string
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        bot: '    username: shop_bot',
        policy: `sources: { allow: [any] }
limits:
  - name: per-chat
    key: chat
    rate: 1/h
    burst: 2
    reply: "You're sending messages too fast."
  - name: reports
    key: user
    commands: [report]
    rate: 1/day
  - name: trial
    key: bot
    rate: 1/day
    mode: shadow`,
      }),
    })
    url = `${gateway.webhook}${PATH}`
  })
  afterAll(async () => {
    await gateway.stop()
  })

  const send = (update: Record<string, unknown>) => post(url, JSON.stringify(update), telegramHeaders(SECRET))

  it('drops with 200, replies once per interval, and forwards nothing over the limit', async () => {
    const chat = { chat: { id: 101, type: 'private' }, from: { id: 101, is_bot: false, first_name: 'A' } }
    const before = upstream.received.length
    expect((await send(messageUpdate(chat))).status).toBe(200)
    expect((await send(messageUpdate(chat))).status).toBe(200)
    expect(upstream.received.length).toBe(before + 2)
    const first = await send(messageUpdate(chat))
    expect(first.status).toBe(200)
    expect(first.headers['content-type']).toBe('application/json')
    expect(first.json()).toEqual({
      method: 'sendMessage',
      chat_id: 101,
      text: "You're sending messages too fast.",
    })
    const second = await send(messageUpdate(chat))
    expect(second.status).toBe(200)
    expect(second.body).toBe('')
    expect(upstream.received.length).toBe(before + 2)
    const line = await gateway.requestLine(second.headers['x-request-id'] as string)
    expect(line).toMatchObject({
      reason: 'rate_limited',
      status: 200,
      chat_id: 101,
      detail: 'limit per-chat',
    })
    const text = await gateway.metrics()
    expect(text).toMatch(/^botgate_requests_total\{bot="bot",reason="rate_limited",outcome="dropped"\} 2$/m)
    expect(text).toMatch(/^botgate_limit_exceeded_total\{bot="bot",limit="per-chat",mode="enforce"\} 2$/m)
  })

  it('answers a callback query over the limit with answerCallbackQuery', async () => {
    await send(callbackUpdate('cq-1', 202))
    await send(callbackUpdate('cq-2', 202))
    const limited = await send(callbackUpdate('cq-3', 202))
    expect(limited.json()).toEqual({
      method: 'answerCallbackQuery',
      callback_query_id: 'cq-3',
      text: "You're sending messages too fast.",
    })
  })

  it('counts a commands rule per user and command, and only for this bot', async () => {
    // each in its own chat, so only the user's command limit is in play
    let chat = 300
    const from = (id: number, text: string) =>
      messageUpdate({
        chat: { id: chat++, type: 'group' },
        from: { id, is_bot: false, first_name: 'U' },
        text,
      })
    expect((await send(from(7, '/report spam'))).status).toBe(200)
    const before = upstream.received.length
    expect((await send(from(7, '/report@other_bot spam'))).status).toBe(200)
    expect((await send(from(8, '/report spam'))).status).toBe(200)
    expect(upstream.received.length).toBe(before + 2)
    const again = await send(from(7, '/Report@Shop_Bot more'))
    const line = await gateway.requestLine(again.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'rate_limited', detail: 'limit reports' })
    expect(upstream.received.length).toBe(before + 2)
  })

  it('logs and counts a shadow rule without dropping', async () => {
    const reply = await send(messageUpdate({ chat: { id: 404, type: 'private' } }))
    expect(reply.status).toBe(200)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'forwarded', would: ['rate_limited'] })
    expect(await gateway.metrics()).toMatch(
      /^botgate_shadow_verdicts_total\{bot="bot",reason="rate_limited"\} [1-9]\d*$/m,
    )
  })

  it('keeps limits across a reload: the store outlives the config', async () => {
    const chat = { chat: { id: 505, type: 'private' } }
    await send(messageUpdate(chat))
    await send(messageUpdate(chat))
    gateway.child.kill('SIGHUP')
    await gateway.waitFor((line) => line.msg === 'config reloaded')
    const after = await send(messageUpdate(chat))
    expect((await gateway.requestLine(after.headers['x-request-id'] as string)).reason).toBe('rate_limited')
  })

  it('shows the memory store as ready', async () => {
    const ready = await fetch(`${gateway.admin}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ ok: true, config: 'loaded', listener: 'serving', store: 'memory' })
    expect(await gateway.metrics()).toMatch(/^botgate_store_up\{store="memory"\} 1$/m)
  })
})
