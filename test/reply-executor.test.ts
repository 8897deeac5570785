/**
 * The reply executor (src/egress/reply.ts) of a gateway started in this process from a config
 * file, against the fake Bot API: a bot's webhook answer (JSON, form, multipart) becomes the Bot
 * API call with the bot's real token and without `method`; a method the policy refuses is not
 * called; Telegram's 429 is waited out and retried; every call has its `egress call` line marked
 * `via: reply` and its count. The bot has a token and no egress credential. The token never
 * appears in a log line or /metrics. `outbound.chats` holds for replies too: a chat the bot has
 * not heard from is refused until it sends an update.
 */

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../src/server/gateway.js'
import { apiError, FakeBotApi, tooManyRequests } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, type LogLine, secret, tempDir } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const TOKEN = '5151:AAHreply-token-0123456789abcdefghijklmno'

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

describe('the reply executor', () => {
  let api: FakeBotApi
  let gateway: Gateway
  const lines: LogLine[] = []
  let logged = ''

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    const dir = tempDir()
    const file = path.join(dir, 'gateway.yaml')
    writeFileSync(
      file,
      botConfig({
        upstream: 'http://127.0.0.1:9',
        secret: secret(),
        // The listener is there for api_base; this bot has no credential for it.
        top: `egress: { listen: 127.0.0.1:0, api_base: "${api.url}", pacing: { private_chat: "100/s" } }`,
        bot: `    token: "${TOKEN}"`,
        policy: `sources: { allow: [any] }
outbound: { allow_methods: [messaging] }
replies: { allow_methods: [sendMessage, sendDocument, getMe, banChatMember] }`,
      }),
    )
    const logger = pino(
      { level: 'info' },
      {
        write(line: string) {
          logged += line
          lines.push(JSON.parse(line) as LogLine)
        },
      },
    )
    gateway = await Gateway.start({ configFile: file, logger })
  })

  afterAll(async () => {
    await gateway?.shutdown('test')
    await api?.close()
  })

  const replyLine = (method: string) =>
    lines.filter((line) => line.msg === 'egress call' && line.via === 'reply' && line.method === method)

  it('makes a JSON answer the call, with the token and without method', async () => {
    const outcome = await gateway.replies.execute(
      'bot',
      'application/json',
      json({ method: 'sendMessage', chat_id: 77, text: 'hello' }),
    )
    expect(outcome).toEqual({ status: 200, method: 'sendMessage' })
    const [sent] = api.callsOf('sendMessage')
    expect(sent?.token).toBe(TOKEN)
    expect(sent?.params).toEqual({ chat_id: 77, text: 'hello' })
    expect(replyLine('sendMessage')[0]).toMatchObject({ bot: 'bot', status: 200, chat_id: '77' })
  })

  it('makes a form answer the call', async () => {
    const outcome = await gateway.replies.execute(
      'bot',
      'application/x-www-form-urlencoded',
      Buffer.from('chat_id=78&method=sendMessage&text=form'),
    )
    expect(outcome).toEqual({ status: 200, method: 'sendMessage' })
    expect(api.callsOf('sendMessage').at(-1)?.params).toEqual({ chat_id: '78', text: 'form' })
  })

  it('makes a multipart answer the call, its file and fields kept', async () => {
    const form = new FormData()
    form.set('chat_id', '79')
    form.set('method', 'sendDocument')
    form.set('document', new Blob([Buffer.from('file bytes')], { type: 'text/plain' }), 'a.txt')
    form.set('caption', 'after the file')
    const request = new Request('http://x/', { method: 'POST', body: form })
    const body = Buffer.from(await request.arrayBuffer())
    const outcome = await gateway.replies.execute(
      'bot',
      request.headers.get('content-type') ?? undefined,
      body,
    )
    // The fake Bot API does not know sendDocument (404): what matters is what it received.
    expect(outcome).toMatchObject({ status: 404, method: 'sendDocument', errorCode: 404 })
    const [document] = api.callsOf('sendDocument')
    expect(document?.token).toBe(TOKEN)
    expect(document?.params).toEqual({ chat_id: '79', caption: 'after the file' })
    expect(document?.files.document?.content.toString()).toBe('file bytes')
  })

  it('does nothing for an empty answer or one without a method', async () => {
    const before = api.calls.length
    expect(await gateway.replies.execute('bot', undefined, Buffer.alloc(0))).toEqual({
      status: 0,
      method: undefined,
    })
    expect(await gateway.replies.execute('bot', 'application/json', json({ ok: true }))).toEqual({
      status: 0,
      method: undefined,
    })
    // Telegram does not execute get* from a webhook answer: neither does botgate.
    expect(await gateway.replies.execute('bot', 'application/json', json({ method: 'getMe' }))).toEqual({
      status: 0,
      method: 'getMe',
      reason: 'reply_method_ignored',
    })
    expect(api.calls.length).toBe(before)
  })

  it('refuses a method outbound or replies.allow_methods does not allow, with no call', async () => {
    const before = api.calls.length
    // Listed in replies.allow_methods, but outbound's messaging does not have it.
    const ban = await gateway.replies.execute(
      'bot',
      'application/json',
      json({ method: 'banChatMember', chat_id: -100, user_id: 1 }),
    )
    expect(ban).toEqual({
      status: 403,
      method: 'banChatMember',
      errorCode: 403,
      reason: 'reply_method_not_allowed',
    })
    // In messaging, but replies.allow_methods narrows it away.
    const photo = await gateway.replies.execute(
      'bot',
      'application/x-www-form-urlencoded',
      Buffer.from('method=sendPhoto&chat_id=1&photo=x'),
    )
    expect(photo).toMatchObject({ status: 403, reason: 'reply_method_not_allowed' })
    const unreadable = await gateway.replies.execute('bot', 'text/html', Buffer.from('<p>hi</p>'))
    expect(unreadable).toMatchObject({ status: 403, method: undefined, reason: 'reply_method_not_allowed' })
    expect(api.calls.length).toBe(before)
    expect(replyLine('banChatMember')[0]).toMatchObject({ status: 403, reason: 'reply_method_not_allowed' })
  })

  it("waits out Telegram's 429 and retries, the outcome the success", async () => {
    const before = api.callsOf('sendMessage').length
    api.failNext('sendMessage', tooManyRequests(1))
    const started = performance.now()
    const outcome = await gateway.replies.execute(
      'bot',
      'application/json',
      json({ method: 'sendMessage', chat_id: 80, text: 'after the flood' }),
    )
    expect(outcome).toEqual({ status: 200, method: 'sendMessage' })
    expect(performance.now() - started).toBeGreaterThan(900)
    expect(api.callsOf('sendMessage').length - before).toBe(2)
  })

  it("reports Telegram's error code", async () => {
    api.failNext('sendMessage', apiError(400, `Bad Request: bot${TOKEN} chat not found`))
    const outcome = await gateway.replies.execute(
      'bot',
      'application/json',
      json({ method: 'sendMessage', chat_id: 81, text: 'x' }),
    )
    expect(outcome).toEqual({ status: 400, method: 'sendMessage', errorCode: 400 })
  })

  it('knows no bot without a token', async () => {
    expect(
      await gateway.replies.execute('nobody', 'application/json', json({ method: 'sendMessage' })),
    ).toEqual({ status: 0, method: 'sendMessage', reason: 'no_token' })
  })

  it('never shows the token in a log line or /metrics, and counts the calls via reply', async () => {
    expect(logged).not.toContain(TOKEN)
    const metrics = await (await fetch(`http://${gateway.adminAddress}/metrics`)).text()
    expect(metrics).not.toContain(TOKEN)
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="sendMessage",status="200",via="reply",reason=""\} [3-9]/,
    )
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="other",status="403",via="reply",reason="reply_method_not_allowed"\} [1-9]/,
    )
  })
})

describe('the reply executor under outbound.chats', () => {
  const SECRET = secret()
  const PATH = '/tg/hook-0123456789abcdef'
  let api: FakeBotApi
  let upstream: TestUpstream
  let gateway: Gateway

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    upstream = await TestUpstream.start()
    const file = path.join(tempDir(), 'gateway.yaml')
    writeFileSync(
      file,
      botConfig({
        upstream: upstream.url,
        secret: SECRET,
        path: PATH,
        top: `egress: { listen: 127.0.0.1:0, api_base: "${api.url}" }`,
        bot: `    token: "${TOKEN}"`,
        policy: 'sources: { allow: [any] }\noutbound: { chats: { allow: [heard_from] } }',
      }),
    )
    gateway = await Gateway.start({ configFile: file, logger: pino({ level: 'silent' }) })
  })

  afterAll(async () => {
    await gateway?.shutdown('test')
    await upstream?.close()
    await api?.close()
  })

  it('refuses a chat not heard from, and calls it once it sent an update', async () => {
    const reply = json({ method: 'sendMessage', chat_id: 31337, text: 'hi' })
    expect(await gateway.replies.execute('bot', 'application/json', reply)).toEqual({
      status: 403,
      method: 'sendMessage',
      errorCode: 403,
      reason: 'chat_not_allowed',
    })
    expect(api.calls).toHaveLength(0)
    const update = messageUpdate({ chat: { id: 31337, type: 'private', first_name: 'Ann' } })
    const delivered = await post(
      `http://${gateway.webhookAddress}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(SECRET),
    )
    expect(delivered.status).toBe(200)
    expect(await gateway.replies.execute('bot', 'application/json', reply)).toEqual({
      status: 200,
      method: 'sendMessage',
    })
    expect(api.callsOf('sendMessage')).toHaveLength(1)
  })
})
