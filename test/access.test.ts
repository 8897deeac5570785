/**
 * The policy sections `chats`, `users` and `content` through the real CLI and a real upstream:
 * an internal bot ("only these users, private chats only, /report takes a number, no files"),
 * each refusal seen in the log with its rule and in /metrics, and a section in shadow mode.
 * Update shapes are the real samples of test/fixtures/updates, edited where a case needs it.
 */

import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
let gateway: RunningGateway
let nextId = 70_000

const TEAM = 12345 // the sender of nutgram-045.json

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      bot: '    username: shop_bot',
      policy: `sources: { allow: [any] }
roles:
  team: [${TEAM}, 777]
chats:
  types: [private]
  leave_reply: "Private chats only."
users:
  allow: [team]
  reply: "This bot is private."
commands:
  allow: [start, report]
content:
  max_text: 200
  args:
    report: { pattern: '^[0-9]{1,10}$' }
  deny: ['(a+)+$']
  media: { allow: [], max_size: { document: 10MiB } }
  forwarded: drop
  mode: enforce`,
    }),
  })
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

/** A real update sample with a fresh update_id, its payload edited by `edit`. */
function sample(file: string, edit: (payload: Record<string, unknown>) => void = () => {}) {
  const raw = JSON.parse(readFileSync(new URL(`./fixtures/updates/${file}`, import.meta.url), 'utf8'))
  raw.update_id = nextId++
  edit(raw[Object.keys(raw).find((key) => key !== 'update_id') as string])
  return raw as Record<string, unknown>
}

/** A private text message from the team member of nutgram-045.json. */
const text = (value: string, edit: (message: Record<string, unknown>) => void = () => {}) =>
  sample('nutgram-045.json', (m) => {
    delete m.game
    delete m.via_bot
    delete m.reply_markup
    m.text = value
    if (value.startsWith('/'))
      m.entities = [{ type: 'bot_command', offset: 0, length: value.split(' ')[0]?.length }]
    edit(m)
  })

async function send(update: Record<string, unknown>) {
  const before = upstream.received.length
  const response = await post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
  expect(response.status).toBe(200)
  const line = await gateway.requestLine(response.headers['x-request-id'] as string)
  return { forwarded: upstream.received.length > before, line, body: response.body }
}

describe('an internal bot: listed users, private chats, /report takes a number, no files', () => {
  it('forwards what its team sends', async () => {
    expect((await send(text('/report 123'))).forwarded).toBe(true)
    expect((await send(text('hello'))).forwarded).toBe(true)
  })

  it('drops a group message with chat_not_allowed and answers the group once', async () => {
    const group = () => sample('php-telegram-bot-001.json') // a group, -123
    const first = await send(group())
    expect(first.forwarded).toBe(false)
    expect(first.line).toMatchObject({ reason: 'chat_not_allowed', detail: 'chats.types' })
    expect(JSON.parse(first.body)).toEqual({
      method: 'sendMessage',
      chat_id: -123,
      text: 'Private chats only.',
    })
    expect((await send(group())).body).toBe('')
  })

  it('lets my_chat_member through, so the bot learns where it was added', async () => {
    expect((await send(sample('teloxide-049.json'))).forwarded).toBe(true)
  })

  it('drops a stranger with user_not_allowed and tells them once', async () => {
    const stranger = () =>
      text('hello', (m) => {
        m.from = { id: 1234567, is_bot: false, first_name: 'Eve' }
        m.chat = { id: 1234567, type: 'private', first_name: 'Eve' }
      })
    const first = await send(stranger())
    expect(first).toMatchObject({
      forwarded: false,
      line: { reason: 'user_not_allowed', detail: 'users.allow' },
    })
    expect(JSON.parse(first.body)).toMatchObject({ method: 'sendMessage', text: 'This bot is private.' })
    expect((await send(stranger())).body).toBe('')
  })

  it('drops content the policy refuses, naming the rule and never the text', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [text('/report 1; rm -rf /'), 'content.args.report'],
      [text('x'.repeat(201)), 'content.max_text'],
      [
        text('hello', (m) =>
          Object.assign(m, { forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'A' } }),
        ),
        'content.forwarded',
      ],
      [
        sample('nutgram-035.json', (m) =>
          Object.assign(m, { from: { id: TEAM, is_bot: false, first_name: 'A' } }),
        ),
        'content.media.document',
      ],
    ]
    for (const [update, rule] of cases) {
      const { forwarded, line } = await send(update)
      expect(forwarded, rule).toBe(false)
      expect(line, rule).toMatchObject({ reason: 'content_not_allowed', detail: rule })
      expect(JSON.stringify(line)).not.toContain('rm -rf')
    }
  })

  it('counts max_text in UTF-16 units, as Telegram does: an emoji is two', async () => {
    // 100 emoji are 100 code points but 200 UTF-16 units: exactly max_text.
    expect((await send(text('\u{1F600}'.repeat(100)))).forwarded).toBe(true)
    const over = await send(text(`${'\u{1F600}'.repeat(100)}a`))
    expect(over).toMatchObject({ forwarded: false, line: { detail: 'content.max_text' } })
  })

  it('runs an operator pattern that backtracks catastrophically elsewhere in linear time', async () => {
    // "(a+)+$" against 199 a's and a b: a backtracking engine would not answer for ages.
    const { forwarded, line } = await send(text(`${'a'.repeat(199)}b`))
    expect(forwarded).toBe(true)
    expect(line).toMatchObject({ reason: 'forwarded' })
  })

  it('does not look into the message a message replies to', async () => {
    const reply = text('see the file above', (m) => {
      m.reply_to_message = sample('nutgram-035.json').message
    })
    expect((await send(reply)).forwarded).toBe(true)
  })

  it('counts each refusal in /metrics', async () => {
    const metrics = await gateway.metrics()
    for (const reason of ['chat_not_allowed', 'user_not_allowed', 'content_not_allowed']) {
      expect(metrics).toMatch(
        new RegExp(`^botgate_requests_total\\{[^}]*reason="${reason}"[^}]*\\} [1-9]`, 'm'),
      )
    }
  })
})

describe('a section in shadow mode', () => {
  let shadowUpstream: TestUpstream
  let shadowGateway: RunningGateway

  beforeAll(async () => {
    shadowUpstream = await TestUpstream.start()
    shadowGateway = await RunningGateway.start({
      config: botConfig({
        upstream: shadowUpstream.url,
        secret: SECRET,
        policy: 'sources: { allow: [any] }\nusers: { mode: shadow, allow: [1] }',
      }),
    })
  })

  afterAll(async () => {
    expect(await shadowGateway.stop()).toBe(0)
    await shadowUpstream.close()
  })

  it('forwards the update and logs what it would have done', async () => {
    const response = await post(
      `${shadowGateway.webhook}${PATH}`,
      JSON.stringify(text('hi')),
      telegramHeaders(SECRET),
    )
    expect(response.status).toBe(200)
    expect(shadowUpstream.received).toHaveLength(1)
    expect(await shadowGateway.requestLine(response.headers['x-request-id'] as string)).toMatchObject({
      reason: 'forwarded',
      would: ['user_not_allowed'],
    })
  })
})

describe('a public bot: deny lists, no bots or anonymous admins, spam and file rules', () => {
  let publicUpstream: TestUpstream
  let publicGateway: RunningGateway

  beforeAll(async () => {
    publicUpstream = await TestUpstream.start()
    publicGateway = await RunningGateway.start({
      config: botConfig({
        upstream: publicUpstream.url,
        secret: SECRET,
        policy: `sources: { allow: [any] }
chats: { deny: [-1001] }
users: { deny: [666], bots: drop, anonymous: drop }
content:
  deny: ['(?i)\\bcasino\\b', 'bit\\.ly/']
  links: 1
  media:
    allow: [document, photo]
    mime_types: [application/pdf]
    deny_extensions: [.exe]
  via_bot: drop`,
      }),
    })
  })

  afterAll(async () => {
    expect(await publicGateway.stop()).toBe(0)
    await publicUpstream.close()
  })

  async function verdict(update: Record<string, unknown>) {
    const before = publicUpstream.received.length
    const response = await post(
      `${publicGateway.webhook}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(SECRET),
    )
    expect(response.status).toBe(200)
    const line = await publicGateway.requestLine(response.headers['x-request-id'] as string)
    return publicUpstream.received.length > before ? 'forwarded' : `${line.reason} ${line.detail}`
  }

  const pdf = (edit: (document: Record<string, unknown>) => void = () => {}) =>
    sample('nutgram-035.json', (m) => edit(m.document as Record<string, unknown>))
  const url = (offset: number) => ({ type: 'url', offset, length: 5 })

  it.each([
    ['a plain message', () => text('hello'), 'forwarded'],
    ['a PDF', () => pdf(), 'forwarded'],
    [
      'a chat on chats.deny',
      () => text('hi', (m) => Object.assign(m, { chat: { id: -1001, type: 'group', title: 'g' } })),
      'chat_not_allowed chats.deny',
    ],
    [
      'a user on users.deny',
      () => text('hi', (m) => Object.assign(m, { from: { id: 666, is_bot: false, first_name: 'M' } })),
      'user_not_allowed users.deny',
    ],
    [
      'another bot',
      () => text('hi', (m) => Object.assign(m, { from: { id: 999, is_bot: true, first_name: 'B' } })),
      'user_not_allowed users.bots',
    ],
    [
      'an anonymous group admin',
      () => sample('ktgbotapi-001.json', (m) => Object.assign(m, { text: 'hi' })),
      'user_not_allowed users.anonymous',
    ],
    ['a denied word, any case', () => text('Best CASINO in town'), 'content_not_allowed content.deny[0]'],
    [
      'a denied link in a caption',
      () => sample('nutgram-035.json', (m) => Object.assign(m, { caption: 'see bit.ly/x' })),
      'content_not_allowed content.deny[1]',
    ],
    [
      'two links',
      () => text('a.com b.com', (m) => Object.assign(m, { entities: [url(0), url(6)] })),
      'content_not_allowed content.links',
    ],
    ['one link', () => text('a.com', (m) => Object.assign(m, { entities: [url(0)] })), 'forwarded'],
    [
      'a voice note',
      () =>
        text('', (m) => {
          delete m.text
          m.voice = { file_id: 'v', file_unique_id: 'v', duration: 1 }
        }),
      'content_not_allowed content.media.voice',
    ],
    [
      'a document of another type',
      () => pdf((d) => Object.assign(d, { mime_type: 'application/zip', file_name: 'a.zip' })),
      'content_not_allowed content.media.mime_types',
    ],
    [
      'an .exe named as a PDF',
      () => pdf((d) => Object.assign(d, { file_name: 'invoice.pdf.exe' })),
      'content_not_allowed content.media.deny_extensions',
    ],
    [
      'a message via an inline bot',
      () => text('hi', (m) => Object.assign(m, { via_bot: { id: 5, is_bot: true, first_name: 'I' } })),
      'content_not_allowed content.via_bot',
    ],
  ])('%s: %s', async (_name, update, expected) => {
    expect(await verdict(update())).toBe(expected)
  })
})
