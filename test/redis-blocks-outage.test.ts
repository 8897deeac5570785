/**
 * Blocks while Redis is down: an operator's block is not lifted by an outage. The replica's last
 * snapshot of the bot's blocks decides (docs/admin-api.md, "How blocks work"), whatever
 * `on_error` says about limits and dedupe.
 */

import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { adminToken } from './helpers/keys.js'
import { RedisServer, redisServerAvailable } from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const available = redisServerAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const ADMIN_KEY = randomBytes(32).toString('base64url')

describe.skipIf(!available)('blocks while Redis is down', () => {
  let server: RedisServer
  let upstream: TestUpstream
  let gateway: RunningGateway | undefined

  beforeAll(async () => {
    upstream = await TestUpstream.start()
  })
  afterEach(async () => {
    await gateway?.stop()
    gateway = undefined
    await server?.kill()
  })
  afterAll(async () => {
    await upstream?.close()
  })

  const update = (chat: number) =>
    messageUpdate({
      chat: { id: chat, type: 'private', first_name: 'Di' },
      from: { id: chat, is_bot: false, first_name: 'Di' },
    })

  async function reason(running: RunningGateway, chat: number): Promise<unknown> {
    const reply = await post(
      `${running.webhook}${PATH}`,
      JSON.stringify(update(chat)),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    return (await running.requestLine(reply.headers['x-request-id'] as string)).reason
  }

  for (const onError of ['local', 'open', 'closed']) {
    it(`keeps a block while Redis is down (on_error ${onError})`, async () => {
      server = await RedisServer.start()
      const running = await RunningGateway.start({
        config: botConfig({
          upstream: upstream.url,
          secret: SECRET,
          top: `admin:
  listen: 127.0.0.1:0
  api: { keys: [{ kid: ops, alg: HS256, key_file: admin.key }] }
store:
  type: redis
  url: ${server.url}
  prefix: "bo:"
  on_error: ${onError}`,
          policy: 'sources: { allow: [any] }\ndedupe: false',
        }).replace('admin: { listen: 127.0.0.1:0 }\n', ''),
        files: { 'admin.key': ADMIN_KEY },
      })
      gateway = running
      const token = await adminToken(ADMIN_KEY)
      const set = await fetch(`${running.admin}/api/v1/blocks/bot/chat/55`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ duration: '1h' }),
      })
      expect(set.status).toBe(200)
      // The first blocked update starts the replica's snapshot of the bot's blocks.
      expect(await reason(running, 55)).toBe('blocked')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await reason(running, 55)).toBe('blocked')

      await server.kill()
      await running.waitFor((line) => String(line.msg).startsWith('store unavailable'))
      for (let i = 0; i < 3; i++) expect(await reason(running, 55)).toBe('blocked')
      // Others are not blocked: the snapshot holds only chat 55.
      expect(await reason(running, 56)).toBe('forwarded')
      // A block cannot be set or lifted without the store that shares it: the API says so.
      for (const method of ['PUT', 'DELETE']) {
        const change = await fetch(`${running.admin}/api/v1/blocks/bot/chat/56`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(method === 'PUT' ? { body: JSON.stringify({ duration: '1h' }) } : {}),
        })
        expect({ status: change.status, body: await change.json() }).toEqual({
          status: 503,
          body: { ok: false, error: 'store_unavailable' },
        })
      }
    })
  }
})
