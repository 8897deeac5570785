/**
 * `outbound.chats` on direct-mode webhook answers, through the real CLI with the Redis store: the
 * bot's 2xx answer carrying a Bot API call goes back to Telegram only when the chats it names are
 * allowed, as the egress would allow the same call. A refused answer becomes an empty 200 (the
 * update counts as delivered, Telegram has nothing to execute or retry), logged on the request
 * line (`detail: chat_not_allowed`) and counted (botgate_egress_calls_total, `via: answer`). The
 * chat of the update being answered is heard from; a listed chat passes, in any spelling of the
 * method; a form answer is refused when any of its chat_id values is not allowed; a JSON answer
 * with a duplicate chat_id goes back as botgate read it, naming the chat it checked.
 */

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
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
const SECRET = secret()
const PATH = '/tg/hook-answers-0123456789abcdef'
/** messageUpdate's chat: a private chat. */
const CHAT = 4242

describe.skipIf(!available)('outbound.chats on webhook answers Telegram executes', () => {
  const prefix = testPrefix('answer-chats')
  let upstream: TestUpstream
  let gateway: RunningGateway
  let redis: Redis

  beforeAll(async () => {
    upstream = await TestUpstream.start()
    redis = client(SHARED_REDIS_URL)
    await redis.connect()
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        path: PATH,
        top: `store: { type: redis, url: ${SHARED_REDIS_URL}, prefix: "${prefix}", timeout: 1s, on_error: closed }`,
        policy: `sources: { allow: [any] }
dedupe: false
outbound:
  chats:
    allow: [heard_from, 555]
    methods:
      forwardMessage: [555]`,
      }),
    })
  })

  afterAll(async () => {
    await gateway?.stop()
    await upstream?.close()
    if (redis !== undefined) {
      await keysAndCleanup(redis, prefix)
      redis.disconnect()
    }
  })

  /** Delivers an update from CHAT; the bot answers it with `body`; what Telegram gets back. */
  async function answered(
    body: string,
    type = 'application/json',
  ): Promise<{ status: number; body: string; line: Record<string, unknown> }> {
    upstream.respond = (_request, response) => response.writeHead(200, { 'content-type': type }).end(body)
    const reply = await post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    return { status: reply.status, body: reply.body, line }
  }

  it('passes an answer to the chat it answers, and to a listed chat', async () => {
    for (const chat of [CHAT, 555, '555']) {
      const body = JSON.stringify({ method: 'sendMessage', chat_id: chat, text: 'hi' })
      const out = await answered(body)
      expect(out.status).toBe(200)
      expect(JSON.parse(out.body)).toEqual(JSON.parse(body))
      expect(out.line).toMatchObject({ reason: 'forwarded', status: 200 })
      expect(out.line.detail).toBeUndefined()
    }
  })

  it('withholds an answer to a chat not allowed: an empty 200, logged and counted', async () => {
    for (const method of ['sendMessage', 'SENDMESSAGE']) {
      const out = await answered(JSON.stringify({ method, chat_id: -1009999, text: 'spam' }))
      expect(out.status).toBe(200)
      expect(out.body).toBe('')
      expect(out.line).toMatchObject({ reason: 'forwarded', detail: 'chat_not_allowed', chat_id: CHAT })
    }
    // A method's own list: forwardMessage only to 555, not even to the chat heard from.
    const forward = await answered(
      JSON.stringify({ method: 'forwardMessage', chat_id: CHAT, from_chat_id: 555, message_id: 1 }),
    )
    expect(forward.body).toBe('')
    expect(forward.line.detail).toBe('chat_not_allowed')
    const metrics = await gateway.metrics()
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="sendMessage",status="403",via="answer",reason="chat_not_allowed"\} 2\n/,
    )
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="forwardMessage",status="403",via="answer",reason="chat_not_allowed"\} 1\n/,
    )
  })

  it('checks every chat_id of a form answer, and a multipart one', async () => {
    const form = await answered(
      'method=sendMessage&chat_id=555&chat_id=-1009999&text=x',
      'application/x-www-form-urlencoded',
    )
    expect(form.body).toBe('')
    expect(form.line.detail).toBe('chat_not_allowed')
    const multipart =
      '--XyZ\r\nContent-Disposition: form-data; name="method"\r\n\r\nsendMessage\r\n' +
      '--XyZ\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n-1009999\r\n' +
      '--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--XyZ--\r\n'
    const upload = await answered(multipart, 'multipart/form-data; boundary=XyZ')
    expect(upload.body).toBe('')
    expect(upload.line.detail).toBe('chat_not_allowed')
    const allowed = await answered(
      'method=sendMessage&chat_id=555&text=x',
      'application/x-www-form-urlencoded',
    )
    expect(allowed.body).toBe('method=sendMessage&chat_id=555&text=x')
  })

  it('answers with the chat it checked when a JSON answer repeats chat_id', async () => {
    const out = await answered(`{"method":"sendMessage","chat_id":-1009999,"chat_id":555,"text":"x"}`)
    expect(out.status).toBe(200)
    expect(out.body).toBe('{"method":"sendMessage","chat_id":555,"text":"x"}')
  })

  it('lets through answers that name no chat, or a method without a chat argument', async () => {
    for (const body of [
      '{"method":"answerCallbackQuery","callback_query_id":"1"}',
      '{"method":"editMessageText","inline_message_id":"abc","text":"x"}',
      '{"ok":true}',
    ])
      expect((await answered(body)).body).toBe(body)
  })
})
