/**
 * Check 8 through the real CLI: hostile shapes are answered 200 and dropped (`invalid_update`)
 * with the reason in the log, never the content; the three modes of `updates.schema`.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
const gateways: Record<string, RunningGateway> = {}
let nextId = 70_000

beforeAll(async () => {
  upstream = await TestUpstream.start()
  for (const mode of ['standard', 'strict', 'off']) {
    gateways[mode] = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        policy: `sources: { allow: [any] }\nupdates: { schema: ${mode} }`,
      }),
    })
  }
})

afterAll(async () => {
  for (const gateway of Object.values(gateways)) await gateway.stop()
  await upstream.close()
})

async function verdict(mode: string, body: string) {
  const gateway = gateways[mode] as RunningGateway
  const before = upstream.received.length
  const reply = await post(`${gateway.webhook}${PATH}`, body, telegramHeaders(SECRET))
  expect(reply.status).toBe(200)
  const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
  const forwarded = upstream.received.length === before + 1
  expect(forwarded).toBe(line.reason === 'forwarded')
  return line
}

const message = (fields: Record<string, unknown>) => JSON.stringify(messageUpdate(fields, nextId++))

describe('standard mode drops hostile shapes with 200 and says why in the log, never what', () => {
  it.each([
    [
      'a string chat id',
      message({ chat: { id: '4242', type: 'private' } }),
      'schema: message.chat.id: expected Integer, got string',
    ],
    [
      'a null where the spec says object',
      message({ reply_markup: null }),
      'schema: message.reply_markup: expected InlineKeyboardMarkup, got null',
    ],
    ['a chat without its type', message({ chat: { id: 1 } }), 'schema: message.chat.type: missing'],
    ['a fractional date', message({ date: 1.5 }), 'schema: message.date: expected Integer, got number'],
    [
      'an id beyond 2^53',
      `{"update_id":${nextId++},"message":{"message_id":1,"date":1,"chat":{"id":9007199254740993,"type":"private"},"text":"x"}}`,
      'schema: message.chat.id: more than 52 bits',
    ],
    [
      'a prototype key deep inside',
      `{"update_id":${nextId++},"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"x","via_bot":{"id":1,"is_bot":true,"first_name":"b","__proto__":{"admin":true}}}}`,
      'schema: message.via_bot.__proto__: forbidden key',
    ],
    [
      'a constructor key in an unknown field',
      message({ future_field: { nested: { constructor: 1 } } }),
      'schema: message.future_field.nested.constructor: forbidden key',
    ],
    [
      'an entity past the end of its text',
      message({ text: '\u{1F600}/ban', entities: [{ type: 'bot_command', offset: 2, length: 5 }] }),
      'schema: message.entities[0]: outside its text',
    ],
    [
      'a text over 4096 characters',
      message({ text: 'a'.repeat(4097) }),
      'schema: message.text: longer than 4096 characters',
    ],
  ])('%s', async (_name, body, detail) => {
    const line = await verdict('standard', body)
    expect(line).toMatchObject({ reason: 'invalid_update', detail })
    expect(JSON.stringify(line)).not.toContain('admin')
  })

  it('drops callback_data over 64 bytes (bytes, not characters)', async () => {
    const data = '\u00e9'.repeat(33) // 33 characters, 66 bytes
    const line = await verdict(
      'standard',
      JSON.stringify({
        update_id: nextId++,
        callback_query: {
          id: 'c',
          from: { id: 1, is_bot: false, first_name: 'A' },
          chat_instance: 'i',
          data,
        },
      }),
    )
    expect(line).toMatchObject({ reason: 'invalid_update' })
    expect(String(line.detail)).toContain('callback_query.data')
  })

  it('bounds nesting: a body nested 5000 levels deep is dropped, not a crash', async () => {
    const deep = `{"update_id":${nextId++},"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"extra":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`
    const line = await verdict('standard', deep)
    expect(line.reason).toBe('invalid_update')
    expect(String(line.detail)).toContain('nested deeper than 64')
  })

  it('accepts unknown fields, and checks forbidden keys in update types it does not know', async () => {
    expect((await verdict('standard', message({ brand_new_field: { x: 1 } }))).reason).toBe('forwarded')
    expect(
      (await verdict('standard', JSON.stringify({ update_id: nextId++, subscription: { id: 1 } }))).reason,
    ).toBe('forwarded')
    const proto = await verdict('standard', `{"update_id":${nextId++},"subscription":{"prototype":1}}`)
    expect(proto).toMatchObject({
      reason: 'invalid_update',
      detail: 'schema: subscription.prototype: forbidden key',
    })
  })
})

describe('strict and off', () => {
  it('strict also requires every field the spec requires; standard does not', async () => {
    const withoutIsBot = message({ from: { id: 5, first_name: 'Old' } })
    expect((await verdict('standard', withoutIsBot)).reason).toBe('forwarded')
    const strict = await verdict('strict', message({ from: { id: 5, first_name: 'Old' } }))
    expect(strict).toMatchObject({ reason: 'invalid_update', detail: 'schema: message.from.is_bot: missing' })
  })

  it('off checks only the envelope', async () => {
    expect((await verdict('off', message({ chat: { id: 'not a number' } }))).reason).toBe('forwarded')
    expect(
      (await verdict('off', JSON.stringify({ update_id: nextId++, message: {}, poll: {} }))).reason,
    ).toBe('invalid_update')
  })
})
