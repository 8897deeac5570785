/**
 * Check 2 (sources) and the client address (trusted proxies, X-Forwarded-For, IPv4-mapped IPv6)
 * through the real CLI.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const TELEGRAM_IP = '149.154.167.99'
let upstream: TestUpstream

beforeAll(async () => {
  upstream = await TestUpstream.start()
})
afterAll(async () => {
  await upstream.close()
})

const send = (gateway: RunningGateway, ...headers: string[]) =>
  post(`${gateway.webhook}${PATH}`, JSON.stringify(messageUpdate()), telegramHeaders(SECRET, ...headers))

describe('sources: [telegram] without a trusted proxy', () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({ upstream: upstream.url, secret: SECRET, policy: 'sources: { allow: [telegram] }' }),
    })
  })
  afterAll(async () => {
    await gateway.stop()
  })

  it('refuses a local peer with 403 ip_not_allowed, before the secret is even looked at', async () => {
    const before = upstream.received.length
    const reply = await post(`${gateway.webhook}${PATH}`, 'x', ['content-type', 'text/plain'])
    expect(reply.status).toBe(403)
    expect(reply.json()).toEqual({ ok: false, error: 'ip_not_allowed' })
    expect(upstream.received.length).toBe(before)
  })

  it('is not fooled by a spoofed X-Forwarded-For', async () => {
    const reply = await send(gateway, 'x-forwarded-for', TELEGRAM_IP)
    expect(reply.status).toBe(403)
  })

  it('logs the private-proxy hint: the peer is private and not a trusted proxy', async () => {
    const reply = await send(gateway)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'ip_not_allowed', status: 403, ip: '127.0.0.1' })
    expect(String(line.detail)).toContain('add it to trusted_proxies')
  })
})

describe('sources: [telegram] behind a trusted proxy (127.0.0.1)', () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: 'trusted_proxies: [127.0.0.0/8]',
        policy: 'sources: { allow: [telegram] }',
      }),
    })
  })
  afterAll(async () => {
    await gateway.stop()
  })

  it('lets a Telegram address through, and forwards it as the client', async () => {
    const reply = await send(gateway, 'x-forwarded-for', TELEGRAM_IP)
    expect(reply.status).toBe(200)
    expect(upstream.received.at(-1)?.headers['x-forwarded-for']).toBe(TELEGRAM_IP)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'forwarded', ip: TELEGRAM_IP })
  })

  it.each([
    ['both of Telegram ranges', '91.108.4.10', 200],
    ['a Telegram address written as IPv4-mapped IPv6', `::ffff:${TELEGRAM_IP}`, 200],
    ['an address just outside the range', '149.154.176.1', 403],
    ['a client spoofing Telegram on the left of the chain', `${TELEGRAM_IP}, 203.0.113.9`, 403],
    ['Telegram behind a second trusted hop', `${TELEGRAM_IP}, 127.0.0.9`, 200],
    ['garbage in the chain', `${TELEGRAM_IP}, not-an-address`, 403],
    ['an IPv6 client', '2001:db8::1', 403],
  ])('%s: %d', async (_name, chain, status) => {
    const reply = await send(gateway, 'x-forwarded-for', chain)
    expect(reply.status).toBe(status)
  })

  it('takes the proxy itself as the client when it sends no X-Forwarded-For', async () => {
    const reply = await send(gateway)
    expect(reply.status).toBe(403)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line.ip).toBe('127.0.0.1')
    expect(line.detail).toBeUndefined() // the peer is a trusted proxy: no hint
  })
})

describe('addresses and networks in sources, on a dual-stack listener', () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        policy: 'sources: { allow: [127.0.0.1, "::1"] }',
      }).replace('listen: 127.0.0.1:0', 'listen: "[::]:0"'),
    })
  })
  afterAll(async () => {
    await gateway.stop()
  })

  it('matches an IPv4 peer that the dual-stack socket reports as ::ffff:127.0.0.1', async () => {
    const port = new URL(gateway.webhook).port
    const reply = await post(
      `http://127.0.0.1:${port}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line.ip).toBe('127.0.0.1')
  })

  it('matches an IPv6 peer', async () => {
    const port = new URL(gateway.webhook).port
    const reply = await post(
      `http://[::1]:${port}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
  })
})

describe('sources: [any]', () => {
  it('lets every address through (the secret still applies) and warns at startup', async () => {
    const gateway = await RunningGateway.start({
      config: botConfig({ upstream: upstream.url, secret: SECRET, policy: 'sources: { allow: [any] }' }),
    })
    expect((await send(gateway)).status).toBe(200)
    expect((await post(`${gateway.webhook}${PATH}`, '{}', telegramHeaders(secret()))).status).toBe(401)
    const warning = await gateway.waitFor((line) => line.msg === 'config warning')
    expect(String(warning.warning)).toContain('sources.allow includes any')
    await gateway.stop()
  })
})
