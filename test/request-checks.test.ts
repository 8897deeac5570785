/**
 * Checks 1-8 of SPEC section 3 through the real CLI: every status, reason and header a forger, a
 * scanner or a broken client can provoke, and what reaches the upstream (nothing).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, raw, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
let gateway: RunningGateway
let url: string

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      policy: 'sources: { allow: [any] }\nupdates: { max_body: 4KiB }',
    }),
  })
  url = `${gateway.webhook}${PATH}`
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

const update = () => JSON.stringify(messageUpdate())

async function expectRejected(reply: Awaited<ReturnType<typeof post>>, status: number, reason: string) {
  expect(reply.status).toBe(status)
  expect(reply.json()).toEqual({ ok: false, error: reason })
  expect(reply.headers['content-type']).toBe('application/json')
  const requestId = reply.headers['x-request-id'] as string
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
  const line = await gateway.requestLine(requestId)
  expect(line).toMatchObject({ reason, status })
}

describe('check 1: route', () => {
  it('answers 404 unknown_route off the bot paths, with a request id', async () => {
    const before = upstream.received.length
    await expectRejected(
      await post(`${gateway.webhook}/tg/other`, update(), telegramHeaders(SECRET)),
      404,
      'unknown_route',
    )
    await expectRejected(
      await post(`${gateway.webhook}${PATH}/`, update(), telegramHeaders(SECRET)),
      404,
      'unknown_route',
    )
    await expectRejected(
      await post(`${gateway.webhook}/TG/HOOK-0123456789ABCDEF`, update(), telegramHeaders(SECRET)),
      404,
      'unknown_route',
    )
    await expectRejected(await post(gateway.webhook, update(), telegramHeaders(SECRET)), 404, 'unknown_route')
    expect(upstream.received.length).toBe(before)
  })

  it('answers 405 method_not_allowed with Allow: POST for other methods on a bot path', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const reply = await post(url, method === 'GET' ? null : update(), telegramHeaders(SECRET), method)
      await expectRejected(reply, 405, 'method_not_allowed')
      expect(reply.headers.allow).toBe('POST')
    }
    const head = await post(url, null, telegramHeaders(SECRET), 'HEAD')
    expect(head.status).toBe(405)
  })

  it('ignores the query string', async () => {
    const reply = await post(`${url}?x=1`, update(), telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
  })

  it('reads a request target in absolute form, as a forward proxy sends it', async () => {
    const body = update()
    const head = (target: string) =>
      `POST ${target} HTTP/1.1\r\nHost: example.org\r\nContent-Type: application/json\r\n` +
      `X-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`
    expect((await raw(gateway.webhook, head(`http://example.org${PATH}?x=1`))).text).toMatch(
      /^HTTP\/1\.1 200 /,
    )
    const elsewhere = await raw(gateway.webhook, head('http://example.org/tg/other'))
    expect(elsewhere.text).toMatch(/^HTTP\/1\.1 404 /)
    expect(elsewhere.text).toContain('{"ok":false,"error":"unknown_route"}')
  })
})

describe('check 4: secret token', () => {
  const cases: [string, string[]][] = [
    ['missing', ['content-type', 'application/json']],
    ['empty', ['content-type', 'application/json', 'x-telegram-bot-api-secret-token', '']],
    ['wrong', telegramHeaders(secret())],
    ['a prefix of it', telegramHeaders(SECRET.slice(0, -1))],
    ['it plus one character', telegramHeaders(`${SECRET}x`)],
    ['in another case', telegramHeaders(SECRET.toUpperCase())],
    ['sent twice', [...telegramHeaders(SECRET), 'x-telegram-bot-api-secret-token', SECRET]],
    ['sent twice, once wrong', [...telegramHeaders(SECRET), 'x-telegram-bot-api-secret-token', 'nope']],
    ['with spaces inside', telegramHeaders(`${SECRET.slice(0, 10)} ${SECRET.slice(10)}`)],
  ]
  it.each(cases)('rejects a secret that is %s with 401 bad_secret', async (_name, headers) => {
    const before = upstream.received.length
    await expectRejected(await post(url, update(), headers), 401, 'bad_secret')
    expect(upstream.received.length).toBe(before)
  })

  it('closes the connection when it refuses a request whose body it did not read', async () => {
    const reply = await post(url, 'x'.repeat(2000), ['content-type', 'application/json'])
    expect(reply.status).toBe(401)
    expect(reply.headers.connection).not.toBe('keep-alive')
  })

  it('checks the secret before the media type and the body', async () => {
    await expectRejected(await post(url, 'not json', ['content-type', 'text/plain']), 401, 'bad_secret')
  })
})

describe('check 5: media type', () => {
  it.each([
    ['no content type', []],
    ['text/plain', ['content-type', 'text/plain']],
    ['application/jsonx', ['content-type', 'application/jsonx']],
    ['application/json-seq', ['content-type', 'application/json-seq']],
    ['multipart/form-data', ['content-type', 'multipart/form-data; boundary=x']],
    ['gzip encoding', ['content-type', 'application/json', 'content-encoding', 'gzip']],
    ['br encoding', ['content-type', 'application/json', 'content-encoding', 'br']],
  ])('rejects %s with 415 unsupported_media_type', async (_name, headers) => {
    await expectRejected(
      await post(url, update(), ['x-telegram-bot-api-secret-token', SECRET, ...headers]),
      415,
      'unsupported_media_type',
    )
  })

  it.each([
    ['with a charset', 'application/json; charset=utf-8'],
    ['in upper case', 'Application/JSON'],
    ['with spaces', ' application/json ;charset=UTF-8'],
  ])('accepts application/json %s', async (_name, type) => {
    const reply = await post(url, update(), ['x-telegram-bot-api-secret-token', SECRET, 'content-type', type])
    expect(reply.status).toBe(200)
  })

  it('accepts Content-Encoding: identity', async () => {
    const reply = await post(url, update(), telegramHeaders(SECRET, 'content-encoding', 'identity'))
    expect(reply.status).toBe(200)
  })
})

describe('check 6: body size', () => {
  it('refuses a declared Content-Length over max_body before reading, and closes', async () => {
    const reply = await raw(
      url,
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: 10000000\r\n\r\n`,
    )
    expect(reply.text).toMatch(/^HTTP\/1\.1 413 /)
    expect(reply.text).toContain('{"ok":false,"error":"body_too_large"}')
    expect(reply.closed).toBe(true)
  })

  it('accepts a body of exactly max_body', async () => {
    const base = JSON.stringify(messageUpdate({ text: '' }))
    const padded = base.replace('"text":""', `"text":"${'a'.repeat(4096 - base.length)}"`)
    expect(Buffer.byteLength(padded)).toBe(4096)
    expect((await post(url, padded, telegramHeaders(SECRET))).status).toBe(200)
    const over = padded.replace('"text":"', '"text":"a')
    await expectRejected(await post(url, over, telegramHeaders(SECRET)), 413, 'body_too_large')
  })

  it('stops reading an endless chunked body at the limit and closes the connection', async () => {
    const before = upstream.received.length
    const chunk = `${(16384).toString(16)}\r\n${'a'.repeat(16384)}\r\n`
    function* endless() {
      for (let i = 0; i < 4096; i++) yield chunk // 64 MiB if nobody stops us
    }
    const reply = await raw(
      url,
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      endless(),
      10_000,
    )
    expect(reply.text).toMatch(/^HTTP\/1\.1 413 /)
    expect(reply.closed).toBe(true)
    expect(reply.written).toBeLessThan(32 * 1024 * 1024)
    expect(upstream.received.length).toBe(before)
  })
})

describe('check 7: one JSON object', () => {
  it.each([
    ['truncated JSON', '{"update_id":1,"message":{"message_id":1'],
    ['an array', '[{"update_id":1,"message":{}}]'],
    ['a string', '"update"'],
    ['null', 'null'],
    ['a number', '42'],
    ['empty', ''],
    ['two objects', '{"update_id":1,"message":{}}{"update_id":2,"message":{}}'],
    ['a UTF-8 byte order mark', '\uFEFF{"update_id":1,"message":{}}'],
    ['trailing garbage', '{"update_id":1,"message":{}} x'],
  ])('rejects %s with 400 malformed_json', async (_name, body) => {
    await expectRejected(await post(url, body, telegramHeaders(SECRET)), 400, 'malformed_json')
  })

  it('rejects invalid UTF-8 with 400 malformed_json', async () => {
    const body = Buffer.concat([
      Buffer.from('{"update_id":1,"message":{"text":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}}'),
    ])
    await expectRejected(await post(url, body, telegramHeaders(SECRET)), 400, 'malformed_json')
  })

  it('survives very deep nesting without crashing', async () => {
    const deep = `{"update_id":5,"message":${'['.repeat(1500)}${']'.repeat(1500)}}`
    const reply = await post(url, deep, telegramHeaders(SECRET))
    expect(reply.status).toBeLessThan(500)
    expect((await post(url, update(), telegramHeaders(SECRET))).status).toBe(200)
  })
})

describe('check 8: the update envelope', () => {
  it.each([
    ['no update_id', { message: { text: 'x' } }, 'envelope: update_id'],
    ['a negative update_id', { update_id: -1, message: {} }, 'envelope: update_id'],
    ['a fractional update_id', { update_id: 1.5, message: {} }, 'envelope: update_id'],
    ['a string update_id', { update_id: '1', message: {} }, 'envelope: update_id'],
    ['an unsafe update_id', { update_id: 2 ** 53, message: {} }, 'envelope: update_id'],
    ['no update type', { update_id: 1 }, 'envelope: no_update_type'],
    ['two update types', { update_id: 1, message: {}, edited_message: {} }, 'envelope: several_update_types'],
    ['a null update', { update_id: 1, message: null }, 'envelope: update_type_not_object'],
    ['a list as update', { update_id: 1, message: [] }, 'envelope: update_type_not_object'],
  ])('drops an update with %s: 200 invalid_update, not forwarded', async (_name, body, detail) => {
    const before = upstream.received.length
    const reply = await post(url, JSON.stringify(body), telegramHeaders(SECRET))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('')
    expect(upstream.received.length).toBe(before)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'invalid_update', status: 200, detail })
  })
})

describe('malformed HTTP', () => {
  it('answers garbage with 400 and closes', async () => {
    const reply = await raw(url, 'HELLO\r\n\r\n')
    expect(reply.text).toMatch(/^HTTP\/1\.1 400 /)
    expect(reply.closed).toBe(true)
  })
})
