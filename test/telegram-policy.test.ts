/**
 * Checks 9-11 through the real CLI: update types, dedupe (with failing and slow upstreams) and
 * commands with roles, other bots and replies, across the message-bearing update types.
 */

import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { replyOk, TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const REPLY = 'Unknown command. Try /help.'
let upstream: TestUpstream
let gateway: RunningGateway
let nextId = 50_000

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      bot: '    username: Shop_Bot',
      policy: `sources: { allow: [any] }
updates: { allow: [message, edited_message, channel_post, business_message, callback_query] }
dedupe: { ttl: 1h }
commands:
  allow: [start, help, ban]
  roles: { ban: [admins] }
  reply: "${REPLY}"
roles:
  admins: [1]`,
    }),
  })
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

beforeEach(() => {
  upstream.respond = replyOk
})

const send = (update: Record<string, unknown>) =>
  post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
const command = (text: string, extra: Record<string, unknown> = {}, id = nextId++) =>
  messageUpdate(
    {
      text,
      entities: [{ type: 'bot_command', offset: 0, length: text.split(' ')[0]?.length ?? 0 }],
      ...extra,
    },
    id,
  )

async function expectDropped(
  update: Record<string, unknown>,
  reason: string,
  reply?: Record<string, unknown>,
) {
  const before = upstream.received.length
  const response = await send(update)
  expect(response.status).toBe(200)
  if (reply === undefined) expect(response.body).toBe('')
  else {
    expect(response.headers['content-type']).toBe('application/json')
    expect(response.json()).toEqual(reply)
  }
  expect(upstream.received.length).toBe(before)
  expect(await gateway.requestLine(response.headers['x-request-id'] as string)).toMatchObject({
    reason,
    status: 200,
  })
}

async function expectForwarded(update: Record<string, unknown>) {
  const before = upstream.received.length
  const response = await send(update)
  expect(response.status).toBe(200)
  expect(upstream.received.length).toBe(before + 1)
  return response
}

describe('check 8: the update schema', () => {
  // A real photo message (teloxide's test data), its caption lengthened to a Telegram Premium
  // sender's limit: 4096 characters, emoji included (one code point, two UTF-16 units each).
  const photo = (caption: string) => {
    const update = JSON.parse(
      readFileSync(new URL('./fixtures/updates/teloxide-016.json', import.meta.url), 'utf8'),
    ) as { update_id: number; message: Record<string, unknown> }
    update.update_id = nextId++
    update.message.caption = caption
    update.message.caption_entities = []
    return update
  }

  it("forwards a Premium sender's caption of 4096 characters, byte for byte", async () => {
    const body = JSON.stringify(photo(`${'\u{1F600}'.repeat(96)}${'c'.repeat(4000)}`))
    const response = await send(JSON.parse(body))
    expect(response.status).toBe(200)
    expect(upstream.received.at(-1)?.body.toString('utf8')).toBe(body)
  })

  it('drops a caption past 4096 characters as invalid_update', async () => {
    await expectDropped(photo('c'.repeat(4097)), 'invalid_update')
  })
})

describe('check 9: update types', () => {
  it('drops a type the policy does not allow, with 200', async () => {
    await expectDropped(
      {
        update_id: nextId++,
        inline_query: { id: 'q', from: { id: 5, is_bot: false, first_name: 'A' }, query: 'x', offset: '' },
      },
      'update_type_not_allowed',
    )
  })

  it('forwards a type newer than the gateway\u2019s Bot API version (updates.unknown: forward)', async () => {
    await expectForwarded({ update_id: nextId++, subscription: { id: 's' } })
  })
})

describe('check 10: dedupe', () => {
  it('drops a redelivered update with 200 once it was delivered', async () => {
    const update = messageUpdate({}, nextId++)
    await expectForwarded(update)
    await expectDropped(update, 'duplicate_update')
  })

  it('forwards a redelivery again when the first forward failed', async () => {
    const update = messageUpdate({}, nextId++)
    upstream.respond = (_request, response) => response.writeHead(500).end()
    expect((await send(update)).status).toBe(502)
    upstream.respond = replyOk
    await expectForwarded(update)
    await expectDropped(update, 'duplicate_update')
  })

  it('never forwards a copy that arrives while the first is in flight', async () => {
    const update = messageUpdate({}, nextId++)
    let release: () => void = () => undefined
    upstream.respond = (_request, response) => {
      release = () => response.writeHead(200).end()
    }
    const before = upstream.received.length
    const first = send(update)
    for (let i = 0; i < 100 && upstream.received.length === before; i++)
      await new Promise((r) => setTimeout(r, 10))
    const copy = await send(update)
    expect(copy.status).toBe(503)
    expect(copy.headers['retry-after']).toBe('5')
    expect(copy.json()).toEqual({ ok: false, error: 'duplicate_update' })
    release()
    expect((await first).status).toBe(200)
    expect(upstream.received.length).toBe(before + 1)
    await expectDropped(update, 'duplicate_update')
  })

  it('remembers an update that policy dropped', async () => {
    const update = command('/admin')
    await expectDropped(update, 'command_not_allowed', { method: 'sendMessage', chat_id: 4242, text: REPLY })
    await expectDropped(update, 'duplicate_update')
  })
})

describe('check 11: commands', () => {
  it('forwards allowed commands, in any case, addressed to us in any case, and messages without commands', async () => {
    await expectForwarded(command('/start'))
    await expectForwarded(command('/HELP me'))
    await expectForwarded(command('/start@shop_bot'))
    await expectForwarded(
      messageUpdate({ text: 'just chatting /not a command because no entity is here' }, nextId++),
    )
  })

  it('drops a command not on the whitelist and answers with the configured reply', async () => {
    await expectDropped(command('/admin'), 'command_not_allowed', {
      method: 'sendMessage',
      chat_id: 4242,
      text: REPLY,
    })
  })

  it('restricts a command to its roles', async () => {
    await expectDropped(command('/ban 42'), 'command_forbidden', {
      method: 'sendMessage',
      chat_id: 4242,
      text: REPLY,
    })
    await expectForwarded(command('/ban 42', { from: { id: 1, is_bot: false, first_name: 'Admin' } }))
  })

  it('drops commands for other bots without a reply', async () => {
    await expectDropped(command('/start@OtherBot'), 'command_for_other_bot')
  })

  it('finds commands anywhere a forger might hide them', async () => {
    // mid-text, after an emoji (UTF-16 offset 3), in a caption, without entities at the start
    await expectDropped(
      messageUpdate(
        { text: '\u{1F600} /admin', entities: [{ type: 'bot_command', offset: 3, length: 6 }] },
        nextId++,
      ),
      'command_not_allowed',
      { method: 'sendMessage', chat_id: 4242, text: REPLY },
    )
    await expectDropped(
      messageUpdate(
        {
          text: undefined,
          photo: [{ file_id: 'f', file_unique_id: 'u', width: 1, height: 1 }],
          caption: 'look /admin',
          caption_entities: [{ type: 'bot_command', offset: 5, length: 6 }],
        },
        nextId++,
      ),
      'command_not_allowed',
      { method: 'sendMessage', chat_id: 4242, text: REPLY },
    )
    await expectDropped(messageUpdate({ text: '/admin sneaky' }, nextId++), 'command_not_allowed', {
      method: 'sendMessage',
      chat_id: 4242,
      text: REPLY,
    })
  })

  it('applies to every message-bearing update type the policy allows', async () => {
    const message = command('/admin').message as Record<string, unknown>
    for (const type of ['edited_message', 'channel_post']) {
      await expectDropped({ update_id: nextId++, [type]: message }, 'command_not_allowed', {
        method: 'sendMessage',
        chat_id: 4242,
        text: REPLY,
      })
    }
    await expectDropped(
      { update_id: nextId++, business_message: { ...message, business_connection_id: 'conn-1' } },
      'command_not_allowed',
      { method: 'sendMessage', business_connection_id: 'conn-1', chat_id: 4242, text: REPLY },
    )
  })

  it('does not treat callback data as a command', async () => {
    await expectForwarded({
      update_id: nextId++,
      callback_query: {
        id: 'cb1',
        from: { id: 5, is_bot: false, first_name: 'A' },
        chat_instance: 'ci',
        data: '/admin',
      },
    })
  })

  it('logs the command', async () => {
    const response = await send(command('/start now'))
    expect(await gateway.requestLine(response.headers['x-request-id'] as string)).toMatchObject({
      command: 'start',
      chat_id: 4242,
      user_id: 4242,
    })
  })
})
