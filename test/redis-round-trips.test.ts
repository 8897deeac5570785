/**
 * What one update costs with `store: redis`, counted where Redis sees it: the commands the gateway
 * sends (MONITOR on a private redis-server; a script's own calls are not commands sent), before
 * its forward and after its answer. With blocks, dedupe and two limits, an update waits for one
 * round trip before it is forwarded (the chain script: generation read, claim, limits), and its
 * done mark follows the answer in one more; a blocked update or a duplicate waits for the same
 * one and changes nothing after its step.
 */

import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHAIN_SCRIPT, MARKS_SCRIPT } from '../src/store/lua.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { adminToken } from './helpers/keys.js'
import { client, RedisServer, redisServerAvailable } from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

const available = redisServerAvailable()
const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const ADMIN_KEY = randomBytes(32).toString('base64url')
/** Long enough for MONITOR to have reported what Redis ran, on a loaded machine. */
const SETTLE_MS = 400

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex')
const CHAIN = `evalsha ${sha1(CHAIN_SCRIPT)}`
const MARKS = `evalsha ${sha1(MARKS_SCRIPT)}`
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS))

/**
 * A gateway on a private redis-server whose commands MONITOR records: `measure` sends one update
 * and tells what was sent before its forward (if any) and in all, once its answer is in.
 */
function measured(policy: string) {
  let server: RedisServer
  let monitor: Redis
  let upstream: TestUpstream
  let gateway: RunningGateway
  /** The commands the gateway sent to Redis (not those its scripts ran), as "name first-argument". */
  const sent: string[] = []
  /** The gateway's connection, as MONITOR names it: the one that sends the chain script. */
  let gatewaySource: string | undefined
  /** The commands sent before each forward reached the upstream, from the test's mark on. */
  const beforeForward: string[][] = []
  let from = 0

  beforeAll(async () => {
    server = await RedisServer.start()
    const admin = client(server.url)
    await admin.connect()
    monitor = await admin.monitor()
    admin.disconnect()
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const command = `${(args[0] ?? '').toLowerCase()} ${args[1] ?? ''}`.trim()
      if (gatewaySource === undefined && (command === CHAIN || command.startsWith('eval ')))
        gatewaySource = source
      if (source === gatewaySource) sent.push(command)
    })
    upstream = await TestUpstream.start()
    upstream.respond = async (_request, response) => {
      await settle()
      beforeForward.push(sent.slice(from))
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    }
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        top: `admin:
  listen: 127.0.0.1:0
  api: { keys: [{ kid: ops, alg: HS256, key_file: admin.key }] }
store:
  type: redis
  url: ${server.url}
  prefix: "rt:"
  timeout: 2s`,
        policy,
      }).replace('admin: { listen: 127.0.0.1:0 }\n', ''),
      files: { 'admin.key': ADMIN_KEY },
    })
    // The first use of each script on a connection sends the script itself (EVAL).
    await send(messageUpdate())
    await settle()
  }, 30_000)

  afterAll(async () => {
    await gateway?.stop()
    await upstream?.close()
    monitor?.disconnect()
    await server?.kill()
  })

  const send = (update: Record<string, unknown>) =>
    post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))

  return {
    gateway: () => gateway,
    server: () => server,
    /** Sends `update`; what was sent before its forward (if any) and in all, once its answer is in. */
    async measure(update: Record<string, unknown>) {
      from = sent.length
      const forwards = beforeForward.length
      const reply = await send(update)
      await settle()
      return {
        status: reply.status,
        reason: (await gateway.requestLine(reply.headers['x-request-id'] as string)).reason,
        beforeForward: beforeForward.length > forwards ? beforeForward.at(-1) : undefined,
        all: sent.slice(from),
      }
    },
  }
}

const LIMITS = `limits:
  - { name: per-chat, key: chat, rate: 1000/s, burst: 1000 }
  - { name: per-user, key: user, rate: 1000/s, burst: 1000 }`

describe.skipIf(!available)('Redis round trips per update', () => {
  const { measure, gateway, server } = measured(`sources: { allow: [any] }
${LIMITS}`)

  it('waits for one round trip before the forward, the chain script; the done mark follows the answer', async () => {
    for (let i = 0; i < 3; i++) {
      const measured = await measure(messageUpdate())
      expect(measured).toMatchObject({ status: 200, reason: 'forwarded' })
      expect(measured.beforeForward).toEqual([CHAIN])
      expect(measured.all).toEqual([CHAIN, MARKS])
    }
  })

  it('answers a duplicate after the same one round trip, and forwards nothing', async () => {
    const update = messageUpdate()
    expect((await measure(update)).reason).toBe('forwarded')
    const duplicate = await measure(update)
    expect(duplicate).toMatchObject({ status: 200, reason: 'duplicate_update', beforeForward: undefined })
    expect(duplicate.all).toEqual([CHAIN])
  })

  it('sends its scripts again when Redis has lost them (SCRIPT FLUSH; a restart or failover does the same)', async () => {
    await server().command('script', 'flush')
    const measured = await measure(messageUpdate())
    expect(measured).toMatchObject({ status: 200, reason: 'forwarded' })
    // Redis answers the script's hash NOSCRIPT; the client sends the script itself, in time.
    expect(measured.beforeForward?.[0]).toBe(CHAIN)
    expect(measured.beforeForward?.[1]).toMatch(/^eval /)
    expect(gateway().lines.filter((line) => String(line.msg).startsWith('store unavailable'))).toEqual([])
    const next = await measure(messageUpdate())
    expect(next.beforeForward).toEqual([CHAIN])
  })

  it('answers a blocked chat after one round trip: no mark, no limit consumed', async () => {
    const token = await adminToken(ADMIN_KEY)
    const set = await fetch(`${gateway().admin}/api/v1/blocks/bot/chat/77`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ duration: '1h' }),
    })
    expect(set.status).toBe(200)
    for (let i = 0; i < 2; i++) {
      const update = messageUpdate({
        chat: { id: 77, type: 'group', title: 'g' },
        from: { id: 78, is_bot: false, first_name: 'U' },
      })
      const measured = await measure(update)
      expect(measured).toMatchObject({ status: 200, reason: 'blocked', beforeForward: undefined })
      // The chain, and no marks script after it; the first update after the block also starts
      // the background refresh of the replica's snapshot (a SCAN and its reads).
      expect(measured.all[0]).toBe(CHAIN)
      expect(measured.all.filter((command) => command.startsWith('evalsha'))).toEqual([CHAIN])
      const keys = (await server().command('keys', 'rt:*')) as string[]
      // The block, and nothing of this update: no dedupe mark, no limit state of chat 77 or user 78.
      const mine = keys.filter(
        (key) => key.endsWith(':77') || key.endsWith(':78') || key.endsWith(`:dedupe:${update.update_id}`),
      )
      expect(mine).toEqual(['rt:block:bot:chat:77'])
    }
  })
})

// Most shipped policies filter commands, and two filter content: checks that run between the
// dedupe claim and the limits, and change nothing, so the limits still join the chain.
describe.skipIf(!available)('Redis round trips per update, with commands and content filtered', () => {
  const { measure, server } = measured(`sources: { allow: [any] }
commands: { allow: [start, help], reply: "Try /help." }
content: { forwarded: drop, links: 3 }
${LIMITS}`)
  const command = (name: string) =>
    messageUpdate({
      text: `/${name}`,
      entities: [{ type: 'bot_command', offset: 0, length: name.length + 1 }],
    })

  it('waits for one round trip before the forward, the chain script; the done mark follows the answer', async () => {
    for (const update of [messageUpdate(), command('start')]) {
      const measured = await measure(update)
      expect(measured).toMatchObject({ status: 200, reason: 'forwarded' })
      expect(measured.beforeForward).toEqual([CHAIN])
      expect(measured.all).toEqual([CHAIN, MARKS])
    }
  })

  it('drops a command off the list after the same one round trip, with no limit consumed', async () => {
    // A chat and a user of its own, whose limit states would show.
    const update = messageUpdate(
      {
        chat: { id: 9191, type: 'private', first_name: 'Bo' },
        from: { id: 9191, is_bot: false, first_name: 'Bo' },
        text: '/admin',
        entities: [{ type: 'bot_command', offset: 0, length: 6 }],
      },
      990_001,
    )
    const measured = await measure(update)
    expect(measured).toMatchObject({ status: 200, reason: 'command_not_allowed', beforeForward: undefined })
    expect(measured.all).toEqual([CHAIN, MARKS])
    // Its dedupe mark is done (dropped by policy), and no limit state of its chat or user exists.
    expect(await server().command('get', 'rt:{bot}:dedupe:990001')).toBe('done')
    const keys = (await server().command('keys', 'rt:*9191*')) as string[]
    expect(keys).toEqual([])
  })

  it('answers a duplicate of a dropped command as a duplicate, not as a command', async () => {
    const update = command('admin')
    expect((await measure(update)).reason).toBe('command_not_allowed')
    const duplicate = await measure(update)
    expect(duplicate).toMatchObject({ status: 200, reason: 'duplicate_update' })
    expect(duplicate.all).toEqual([CHAIN])
  })
})
