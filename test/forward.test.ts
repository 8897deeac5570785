/**
 * Check 13 through the real CLI: what the upstream receives, and what Telegram gets back for each
 * row of the upstream outcome table (SPEC section 3).
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { freePort, replyOk, TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const UPSTREAM_SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
let gateway: RunningGateway
let url: string

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: `${upstream.url}?bot=1`,
      secret: SECRET,
      top: 'trusted_proxies: [127.0.0.1]',
      bot: `      timeout: 1s\n      secret_token: ${UPSTREAM_SECRET}\n    max_inflight: 3`,
    }),
  })
  url = `${gateway.webhook}${PATH}`
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

beforeEach(() => {
  upstream.respond = replyOk
})

async function lineOf(reply: Awaited<ReturnType<typeof post>>) {
  return gateway.requestLine(reply.headers['x-request-id'] as string)
}

describe('what the upstream receives', () => {
  it('the exact bytes, never re-serialised', async () => {
    // Odd but valid JSON: key order, spacing, escapes and number forms a re-serialiser would change.
    const body =
      '{ "message" : {"text":"caf\\u00e9 \\/ \u{1F600}","date":1.0e9,"chat":{"type":"group","id":-100},"message_id":1} ,"update_id":  77 }'
    const reply = await post(url, body, telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
    expect(upstream.received.at(-1)?.body.toString('utf8')).toBe(body)
  })

  it('only the gateway headers: content type, forwarding headers, request id, upstream secret', async () => {
    const reply = await post(
      url,
      JSON.stringify(messageUpdate()),
      telegramHeaders(
        SECRET,
        'authorization',
        'Bearer stolen',
        'cookie',
        'a=b',
        'x-custom',
        '1',
        'x-request-id',
        'client-chosen',
        'x-forwarded-proto',
        'https',
      ),
    )
    const received = upstream.received.at(-1)
    expect(received?.method).toBe('POST')
    expect(received?.url).toBe('/webhook?bot=1')
    const names = Object.keys(received?.headers ?? {}).sort()
    expect(names).toEqual([
      'connection',
      'content-length',
      'content-type',
      'host',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-request-id',
      'x-telegram-bot-api-secret-token',
    ])
    expect(received?.headers['content-type']).toBe('application/json')
    expect(received?.headers['x-telegram-bot-api-secret-token']).toBe(UPSTREAM_SECRET)
    expect(received?.headers['x-request-id']).toBe(reply.headers['x-request-id'])
    expect(received?.headers['x-forwarded-for']).toBe('127.0.0.1')
    // 127.0.0.1 is a trusted proxy here, so its X-Forwarded-Proto is believed.
    expect(received?.headers['x-forwarded-proto']).toBe('https')
  })

  it('the client address from a trusted proxy, and never the incoming secret', async () => {
    await post(
      url,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET, 'x-forwarded-for', '203.0.113.7'),
    )
    const received = upstream.received.at(-1)
    expect(received?.headers['x-forwarded-for']).toBe('203.0.113.7')
    expect(received?.headers['x-forwarded-proto']).toBe('http')
    expect(JSON.stringify(received?.rawHeaders)).not.toContain(SECRET)
  })

  it('reuses keep-alive connections to the upstream', async () => {
    upstream.respond = (_request, response) => response.writeHead(200).end()
    const before = upstream.received.length
    for (let i = 0; i < 5; i++) await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    const received = upstream.received.slice(before)
    for (const request of received) expect(request.headers.connection).toBe('keep-alive')
    expect(new Set(received.map((request) => request.remotePort)).size).toBe(1)
  })
})

describe('the upstream outcome table', () => {
  it('2xx: passes status, Content-Type and body back (the webhook reply)', async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(201, {
        'content-type': 'application/json; charset=utf-8',
        'x-internal': 'secret-ish',
      })
      response.end('{"method":"sendMessage","chat_id":4242,"text":"hi"}')
    }
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(201)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(reply.headers['x-internal']).toBeUndefined()
    expect(reply.body).toBe('{"method":"sendMessage","chat_id":4242,"text":"hi"}')
    expect(await lineOf(reply)).toMatchObject({ reason: 'forwarded', status: 201, upstream_status: 201 })
  })

  it('2xx without a body: the same status, empty', async () => {
    upstream.respond = (_request, response) => response.writeHead(204).end()
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(204)
    expect(reply.body).toBe('')
    // A 204 carries no length and no content type (RFC 9110 section 8.6).
    expect(reply.headers['content-length']).toBeUndefined()
    expect(reply.headers['content-type']).toBeUndefined()
    upstream.respond = (_request, response) => response.writeHead(200).end()
    const empty = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect([empty.status, empty.body, empty.headers['content-length']]).toEqual([200, '', '0'])
    expect(empty.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('2xx with a reply over 1 MiB: an empty 200 (delivered, reply withheld)', async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(`{"method":"sendMessage","text":"${'a'.repeat(1024 * 1024)}"}`)
    }
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('')
    expect(await lineOf(reply)).toMatchObject({ reason: 'forwarded', detail: 'reply over 1 MiB withheld' })
  })

  it.each([429, 503])('%d: the same status with its Retry-After, upstream_busy', async (status) => {
    upstream.respond = (_request, response) => response.writeHead(status, { 'retry-after': '17' }).end('busy')
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(status)
    expect(reply.headers['retry-after']).toBe('17')
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_busy' })
    expect(await lineOf(reply)).toMatchObject({ reason: 'upstream_busy', status, upstream_status: status })
  })

  it.each([400, 401, 404, 500, 502])(
    '%d: 502 upstream_error, nothing of the upstream answer leaks',
    async (status) => {
      upstream.respond = (_request, response) =>
        response.writeHead(status, { 'content-type': 'text/plain' }).end('stack trace here')
      const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
      expect(reply.status).toBe(502)
      expect(reply.json()).toEqual({ ok: false, error: 'upstream_error' })
      expect(await lineOf(reply)).toMatchObject({
        reason: 'upstream_error',
        status: 502,
        upstream_status: status,
      })
    },
  )

  it('connection reset: 502 upstream_unreachable', async () => {
    upstream.respond = (_request, response) => response.socket?.destroy()
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(502)
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_unreachable' })
  })

  it('no answer within the timeout: 504 upstream_timeout', async () => {
    upstream.respond = () => undefined // never answers
    const started = Date.now()
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(504)
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_timeout' })
    expect(Date.now() - started).toBeLessThan(10_000) // bounded, not Telegram's 60 s
  })

  it('an answer that stops halfway: 504 upstream_timeout, and the next update still goes through', async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      response.write('{"method":') // and nothing more
    }
    const reply = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    expect(reply.status).toBe(504)
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_timeout' })
    upstream.respond = replyOk
    expect((await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))).status).toBe(200)
  })

  it('too many in flight: 503 overloaded with Retry-After, the others still delivered', async () => {
    const held: (() => void)[] = []
    upstream.respond = (_request, response) => {
      held.push(() => response.writeHead(200).end())
    }
    const replies = Array.from({ length: 5 }, () =>
      post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET)),
    )
    const overloaded = await Promise.race(replies)
    expect(overloaded.status).toBe(503)
    expect(overloaded.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
    expect(overloaded.json()).toEqual({ ok: false, error: 'overloaded' })
    for (let i = 0; i < 50 && held.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(held.length).toBe(3) // max_inflight: 3
    for (const release of held) release()
    const statuses = (await Promise.all(replies)).map((reply) => reply.status).sort()
    expect(statuses).toEqual([200, 200, 200, 503, 503])
  })
})

describe('an upstream that is down', () => {
  let down: RunningGateway
  beforeAll(async () => {
    down = await RunningGateway.start({
      config: botConfig({ upstream: `http://127.0.0.1:${await freePort()}/`, secret: SECRET }),
    })
  })
  afterAll(async () => {
    await down.stop()
  })

  it('connection refused: 502 upstream_unreachable', async () => {
    const reply = await post(
      `${down.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(502)
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_unreachable' })
    const line = await down.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'upstream_unreachable', detail: 'ECONNREFUSED' })
  })
})

describe('replies.allow_methods', () => {
  let filtered: RunningGateway
  let replyUpstream: TestUpstream
  beforeAll(async () => {
    replyUpstream = await TestUpstream.start()
    filtered = await RunningGateway.start({
      config: botConfig({
        upstream: replyUpstream.url,
        secret: SECRET,
        policy: 'sources: { allow: [any] }\nreplies: { allow_methods: [sendMessage, answerCallbackQuery] }',
      }),
    })
  })
  afterAll(async () => {
    await filtered.stop()
    await replyUpstream.close()
  })

  const cases: [string, string, string, boolean][] = [
    ['JSON, allowed', 'application/json', '{"method":"sendMessage","chat_id":1,"text":"x"}', true],
    [
      'JSON, allowed in another case',
      'application/json',
      '{"method":"SENDMESSAGE","chat_id":1,"text":"x"}',
      true,
    ],
    ['JSON, not allowed', 'application/json', '{"method":"banChatMember","chat_id":1,"user_id":2}', false],
    ['JSON without a method', 'application/json', '{"ok":true}', true],
    ['JSON with a non-string method', 'application/json', '{"method":["sendMessage"]}', false],
    ['form, allowed', 'application/x-www-form-urlencoded', 'method=sendMessage&chat_id=1&text=x', true],
    [
      'form, not allowed',
      'application/x-www-form-urlencoded',
      'chat_id=1&method=deleteMessage&message_id=3',
      false,
    ],
    [
      'multipart, not allowed',
      'multipart/form-data; boundary=XyZ',
      '--XyZ\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name="method"\r\n\r\nleaveChat\r\n--XyZ--\r\n',
      false,
    ],
    [
      'multipart, allowed',
      'multipart/form-data; boundary=XyZ',
      '--XyZ\r\nContent-Disposition: form-data; name="method"\r\n\r\nsendMessage\r\n--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--XyZ--\r\n',
      true,
    ],
    ['unreadable JSON', 'application/json', '{"method":', false],
    ['an unknown type', 'text/plain', 'method=banChatMember', false],
  ]
  it.each(cases)('%s', async (_name, type, body, passes) => {
    replyUpstream.respond = (_request, response) =>
      response.writeHead(200, { 'content-type': type }).end(body)
    const reply = await post(
      `${filtered.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    expect(reply.body).toBe(passes ? body : '')
    const line = await filtered.requestLine(reply.headers['x-request-id'] as string)
    expect(line.reason).toBe('forwarded')
    expect(line.detail).toBe(passes ? undefined : 'reply_method_not_allowed')
  })
})
