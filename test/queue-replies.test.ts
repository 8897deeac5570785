/**
 * The webhook answer of a queued update (upstream.delivery: queued) through the real CLI: the bot
 * answers botgate's delivery with a Bot API call, and botgate makes that call itself with the
 * bot's token (the reply executor) against the fake Bot API, logged `via: reply`. Telegram's
 * webhook request was answered long before, so nothing else would execute it.
 */

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
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
const PATH = '/tg/hook-0123456789abcdef'
const TOKEN = '8181:AAHqueued-reply-token-0123456789abcdefg'

describe.skipIf(!available)('webhook answers of queued updates', () => {
  const prefix = testPrefix('queue-replies')
  let api: FakeBotApi
  let upstream: TestUpstream
  let gateway: RunningGateway
  let admin: Redis

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    upstream = await TestUpstream.start()
    upstream.respond = (request, response) => {
      const update = JSON.parse(request.body.toString('utf8')) as { message: { chat: { id: number } } }
      // Chat 5151 gets an answer over the 1 MiB an answer may have: delivered, its reply withheld.
      const text = update.message.chat.id === 5151 ? 'x'.repeat(1_100_000) : 'echo'
      const answer = JSON.stringify({ method: 'sendMessage', chat_id: update.message.chat.id, text })
      response.writeHead(200, { 'content-type': 'application/json' }).end(answer)
    }
    admin = client(SHARED_REDIS_URL)
    await admin.connect()
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        path: PATH,
        top: `store: { type: redis, url: ${SHARED_REDIS_URL}, prefix: "${prefix}", timeout: 1s }
shutdown_grace: 5s
egress: { listen: 127.0.0.1:0, api_base: "${api.url}" }`,
        bot: `      delivery: queued
      queue: { retry_min: 50ms, retry_max: 400ms, lease: 2s, poll: 50ms }
    token: "${TOKEN}"`,
      }),
    })
  })

  afterAll(async () => {
    await gateway?.stop()
    await upstream?.close()
    await api?.close()
    if (admin !== undefined) {
      await keysAndCleanup(admin, prefix)
      admin.disconnect()
    }
  })

  it("makes the bot's answer as a Bot API call with its token", async () => {
    const update = messageUpdate({ chat: { id: 5150, type: 'private', first_name: 'Ann' } })
    const accepted = await post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
    expect(accepted.status).toBe(200)
    expect(accepted.body).toBe('')
    const [sent] = await api.waitForCalls('sendMessage', 1)
    expect(sent).toMatchObject({ token: TOKEN, params: { chat_id: 5150, text: 'echo' } })
    const line = await gateway.waitFor((l) => l.msg === 'egress call' && l.via === 'reply')
    expect(line).toMatchObject({ bot: 'bot', method: 'sendMessage', status: 200, chat_id: '5150' })
    expect(gateway.stdout + gateway.stderr).not.toContain(TOKEN)
  })

  it('delivers an update whose answer is over 1 MiB, and says its reply was withheld', async () => {
    const update = messageUpdate({ chat: { id: 5151, type: 'private', first_name: 'Ann' } })
    const accepted = await post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
    expect(accepted.status).toBe(200)
    const line = await gateway.waitFor((l) => l.msg === 'webhook reply of a queued update dropped')
    expect(line).toMatchObject({ bot: 'bot', update_id: update.update_id, reason: 'answer_too_large' })
    const delivered = await gateway.waitFor(
      (l) => l.msg === 'queued update delivered' && l.update_id === update.update_id,
    )
    expect(delivered).toMatchObject({ status: 200, attempts: 0 })
    expect(api.calls.filter((call) => (call.params as { chat_id?: number }).chat_id === 5151)).toEqual([])
  })
})
