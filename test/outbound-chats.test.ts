/**
 * `outbound.chats` through the real CLI: two gateways on one Redis, each with the egress in front
 * of the fake Bot API. A chat the bot has not heard from is refused (Telegram's 403 shape, logged,
 * counted as chat_not_allowed) and reaches no Bot API; once it sends an update through one gateway,
 * the other lets the bot write to it. A listed @username passes; a method's own list replaces
 * allow; an upload whose chat_id comes after its file is refused (chat_unreadable), also when a
 * checked chat_id before the file is followed by another after it, and Telegram never gets it.
 */

import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import {
  client,
  keysAndCleanup,
  SHARED_REDIS_URL,
  sharedRedisAvailable,
  testPrefix,
} from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const available = await sharedRedisAvailable()
const TOKEN = '6161:AAHchats-token-0123456789abcdefghijklmno'
const CREDENTIAL = '6161:local-credential-chats-ZYXWVUTSRQPONML'
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
/** A real supergroup message (nutgram's fixtures): chat -1001234567489. */
const GROUP_UPDATE = readFileSync(new URL('./fixtures/updates/nutgram-061.json', import.meta.url), 'utf8')
const GROUP = -1001234567489

describe.skipIf(!available)('outbound.chats across two gateways on one Redis', () => {
  const prefix = testPrefix('outbound-chats')
  let api: FakeBotApi
  let upstream: TestUpstream
  let gateways: RunningGateway[]
  let egress: string[]
  let redis: Redis

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    upstream = await TestUpstream.start()
    redis = client(SHARED_REDIS_URL)
    await redis.connect()
    const config = botConfig({
      upstream: upstream.url,
      secret: SECRET,
      path: PATH,
      top: `store: { type: redis, url: ${SHARED_REDIS_URL}, prefix: "${prefix}", timeout: 1s, on_error: closed }
egress: { listen: 127.0.0.1:0, api_base: "${api.url}", pacing: { group_chat: "100/s", private_chat: "100/s" } }`,
      bot: `    token: "${TOKEN}"
    egress:
      credential: "${CREDENTIAL}"`,
      policy: `sources: { allow: [any] }
updates: { allow: [message] }
outbound:
  allow_methods: [messaging]
  chats:
    allow: [heard_from, "@Shop_News", 555]
    methods:
      forwardMessage: [555]
    heard_from_ttl: 1h`,
    })
    gateways = await Promise.all([1, 2].map(() => RunningGateway.start({ config })))
    egress = await Promise.all(
      gateways.map(async (gateway) => {
        const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
        return `http://${started.egress as string}`
      }),
    )
  })

  afterAll(async () => {
    await Promise.all((gateways ?? []).map((gateway) => gateway.stop()))
    await upstream?.close()
    await api?.close()
    if (redis !== undefined) {
      await keysAndCleanup(redis, prefix)
      redis.disconnect()
    }
  })

  const send = (gateway: number, chatId: unknown, method = 'sendMessage', extra = {}) =>
    fetch(`${egress[gateway]}/bot${CREDENTIAL}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: chatId, text: 'hi', ...extra }),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as unknown }))

  it('refuses a chat the bot has not heard from, logged and counted, with no Bot API call', async () => {
    const before = api.calls.length
    const answer = await send(1, GROUP)
    expect(answer).toEqual({
      status: 403,
      body: { ok: false, error_code: 403, description: 'Forbidden: chat not allowed by botgate policy' },
    })
    // A chat id given as a string is the same chat.
    expect((await send(0, String(GROUP))).status).toBe(403)
    expect(api.calls.length).toBe(before)
    const line = await gateways[1]?.waitFor((l) => l.msg === 'egress call' && l.reason === 'chat_not_allowed')
    expect(line).toMatchObject({
      bot: 'bot',
      via: 'egress',
      method: 'sendMessage',
      status: 403,
      chat_id: String(GROUP),
    })
    expect(await gateways[1]?.metrics()).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="sendMessage",status="403",via="egress",reason="chat_not_allowed"\} 1/,
    )
  })

  it('lets the bot write to a chat once it sent an update, through the other gateway', async () => {
    const delivered = await post(`${gateways[0]?.webhook}${PATH}`, GROUP_UPDATE, telegramHeaders(SECRET))
    expect(delivered.status).toBe(200)
    expect(upstream.received).toHaveLength(1)
    const keys = await redis.keys(`${prefix}{bot}:heard:*`)
    expect(keys).toEqual([`${prefix}{bot}:heard:${GROUP}`])
    const ttl = await redis.pttl(keys[0] as string)
    expect(ttl).toBeGreaterThan(3_500_000)
    expect(ttl).toBeLessThanOrEqual(3_600_000)
    const answer = await send(1, GROUP)
    expect(answer).toMatchObject({ status: 200, body: { ok: true, result: { chat: { id: GROUP } } } })
    expect(api.callsOf('sendMessage').at(-1)).toMatchObject({ token: TOKEN, params: { chat_id: GROUP } })
  })

  it('passes a listed id or @username; a method of its own list, and methods naming no chat', async () => {
    expect((await send(0, 555)).status).toBe(200)
    expect((await send(0, '@shop_news')).status).toBe(200)
    expect((await send(0, '@other_channel')).status).toBe(403)
    // forwardMessage has its own list: [555], so the group heard from is refused as its source.
    const forward = await send(0, 555, 'forwardMessage', { from_chat_id: GROUP, message_id: 1 })
    expect(forward.status).toBe(403)
    expect((await send(0, 555, 'forwardMessage', { from_chat_id: 555, message_id: 1 })).status).toBe(404)
    // getMe names no chat: not limited.
    expect((await fetch(`${egress[0]}/bot${CREDENTIAL}/getMe`)).status).toBe(200)
  })

  it('refuses a chat named twice when one of them is not allowed (form and query)', async () => {
    const before = api.calls.length
    const form = await fetch(`${egress[0]}/bot${CREDENTIAL}/sendMessage`, {
      method: 'POST',
      body: new URLSearchParams([
        ['chat_id', '555'],
        ['chat_id', '777'],
        ['text', 'x'],
      ]),
    })
    expect(form.status).toBe(403)
    const query = await fetch(`${egress[0]}/bot${CREDENTIAL}/sendMessage?chat_id=777`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: 555, text: 'x' }),
    })
    expect(query.status).toBe(403)
    expect(api.calls.length).toBe(before)
  })

  /** A multipart upload as a stream (so botgate cannot read it whole), its parts in this order. */
  const upload = (parts: [string, string, string?][]) => {
    const boundary = 'botgate-test-boundary'
    const file = Buffer.alloc(200 * 1024, 'f')
    const chunks = parts.map(([name, value, filename]) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n`,
        ),
        filename ? file : Buffer.from(value),
        Buffer.from('\r\n'),
      ]),
    )
    chunks.push(Buffer.from(`--${boundary}--\r\n`))
    let next = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks[next++]
        if (chunk === undefined) controller.close()
        else controller.enqueue(chunk)
      },
    })
    return fetch(`${egress[0]}/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
    } as RequestInit).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { description?: string },
    }))
  }

  it('streams an upload whose chat_id comes first, and refuses one whose chat comes after the file', async () => {
    const good = await upload([
      ['chat_id', '555'],
      ['document', '', 'a.bin'],
    ])
    // The fake Bot API knows no sendDocument (404): it received the whole upload.
    expect(good.status).toBe(404)
    const [document] = api.callsOf('sendDocument')
    expect(document?.params.chat_id).toBe('555')
    expect(document?.files.document?.content.length).toBe(200 * 1024)
    const late = await upload([
      ['document', '', 'a.bin'],
      ['chat_id', '555'],
    ])
    expect(late.status).toBe(403)
    expect(late.body.description).toMatch(/could not read the chat/)
    const twice = await upload([
      ['chat_id', '555'],
      ['document', '', 'a.bin'],
      ['chat_id', '777'],
    ])
    expect(twice.status).toBe(403)
    expect(twice.body.description).toMatch(/chat_id came after a file/)
    expect(api.callsOf('sendDocument')).toHaveLength(1)
    await gateways[0]?.waitFor((l) => l.msg === 'egress call' && l.reason === 'chat_unreadable')
  })

  it('never shows the token or the credential in a log line', () => {
    for (const gateway of gateways) {
      expect(gateway.stdout + gateway.stderr).not.toContain(TOKEN)
      expect(gateway.stdout + gateway.stderr).not.toContain(CREDENTIAL)
    }
  })
})
