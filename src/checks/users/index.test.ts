import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { MemoryStore } from '../../store/memory.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import type { RolesPolicy } from '../roles/index.js'
import { createUsersCheck, USER_REPLY_PERIOD_MS, type UsersPolicy, userProblems } from './index.js'

/** A real update shape from test/fixtures/updates (provenance in its MANIFEST.md). */
function sample(file: string): Update {
  const raw = JSON.parse(
    readFileSync(new URL(`../../../test/fixtures/updates/${file}`, import.meta.url), 'utf8'),
  )
  const update = readEnvelope(raw)
  if (typeof update === 'string') throw new Error(`${file}: ${update}`)
  return update
}

const USER = sample('nutgram-045.json') // a private message from user 12345
const OTHER = sample('telegram-bot-net-005.json') // a private message from user 1234567
const ANONYMOUS = sample('teloxide-012.json') // an anonymous group admin: GroupAnonymousBot + sender_chat
const BOT = sample('nutgram-001.json') // a message whose sender is_bot (987654321)
const CALLBACK = sample('nutgram-006.json') // a callback query from 222222222
const CHANNEL_POST = sample('teloxide-020.json') // a real channel post: sender_chat, no from
const ADDED = sample('teloxide-049.json') // my_chat_member
const ROLES: RolesPolicy = { team: [12345, 777] }

async function verdict(policy: UsersPolicy, update: Update, store = new MemoryStore()) {
  const check = createUsersCheck(policy, ROLES, false, { store, bot: 'shop' })
  if (check === undefined) throw new Error('no check')
  const exchange = new Exchange({} as never, 'r', 0)
  const outcome = await check.run(exchange, update)
  return { outcome, detail: exchange.detail }
}

const refused = (detail: string) => ({ outcome: { kind: 'drop', reason: 'user_not_allowed' }, detail })

describe('the users check', () => {
  it('does not exist without a users section', () => {
    expect(
      createUsersCheck(undefined, ROLES, false, { store: new MemoryStore(), bot: 'shop' }),
    ).toBeUndefined()
  })

  it('lets only the allow list in, roles expanded, and refuses updates without a sender', async () => {
    const policy: UsersPolicy = { allow: ['team'] }
    expect((await verdict(policy, USER)).outcome).toBeUndefined()
    expect(await verdict(policy, OTHER)).toEqual(refused('users.allow'))
    expect(await verdict({ allow: [1234567] }, OTHER)).toEqual({ outcome: undefined, detail: undefined })
    expect(await verdict({ allow: [222222222] }, CALLBACK)).toEqual({ outcome: undefined, detail: undefined })
    expect(await verdict(policy, CHANNEL_POST)).toEqual(refused('users.anonymous'))
    const poll = readEnvelope({ update_id: 1, poll: { id: 'p', question: 'q', options: [] } }) as Update
    expect(await verdict(policy, poll)).toEqual(refused('users.allow'))
  })

  it('never lets a denied user in, even one that allow names', async () => {
    expect(await verdict({ allow: ['team'], deny: [12345] }, USER)).toEqual(refused('users.deny'))
    expect(await verdict({ deny: ['team'] }, USER)).toEqual(refused('users.deny'))
    expect((await verdict({ deny: ['team'] }, OTHER)).outcome).toBeUndefined()
  })

  it('drops bots by default, unless listed by id or bots: forward', async () => {
    expect(await verdict({}, BOT)).toEqual(refused('users.bots'))
    expect((await verdict({ bots: 'forward' }, BOT)).outcome).toBeUndefined()
    expect((await verdict({ allow: [987654321] }, BOT)).outcome).toBeUndefined()
    // bots: forward does not lift allow.
    expect(await verdict({ allow: ['team'], bots: 'forward' }, BOT)).toEqual(refused('users.allow'))
  })

  it('decides anonymous senders by anonymous: forward without allow, drop with it, or as set', async () => {
    expect((await verdict({}, ANONYMOUS)).outcome).toBeUndefined()
    expect(await verdict({ allow: ['team'] }, ANONYMOUS)).toEqual(refused('users.anonymous'))
    expect(await verdict({ anonymous: 'drop' }, ANONYMOUS)).toEqual(refused('users.anonymous'))
    expect((await verdict({ allow: ['team'], anonymous: 'forward' }, ANONYMOUS)).outcome).toBeUndefined()
    // The placeholder sender GroupAnonymousBot is a bot, but anonymous decides, not bots.
    expect((await verdict({ bots: 'drop', anonymous: 'forward' }, ANONYMOUS)).outcome).toBeUndefined()
  })

  it('lets my_chat_member through', async () => {
    expect((await verdict({ allow: [1] }, ADDED)).outcome).toBeUndefined()
  })

  it('answers a refused user with reply once per hour, a callback query with a toast', async () => {
    const store = new MemoryStore()
    const policy: UsersPolicy = { allow: [1], reply: 'This bot is private.' }
    expect((await verdict(policy, OTHER, store)).outcome).toEqual({
      kind: 'drop',
      reason: 'user_not_allowed',
      reply: { method: 'sendMessage', chat_id: OTHER.chatId, text: 'This bot is private.' },
    })
    expect((await verdict(policy, OTHER, store)).outcome).toEqual({
      kind: 'drop',
      reason: 'user_not_allowed',
    })
    const [mark] = await store.list('{shop}:users:r:')
    expect(mark?.key).toBe('{shop}:users:r:1234567')
    expect(mark?.ttlMs).toBeLessThanOrEqual(USER_REPLY_PERIOD_MS)
    expect((await verdict(policy, CALLBACK, store)).outcome).toMatchObject({
      reply: { method: 'answerCallbackQuery', text: 'This bot is private.' },
    })
  })
})

describe('the users section', () => {
  it('refuses roles that do not exist and an empty allow list', () => {
    expect(userProblems({ allow: ['team', 'staff', 5], deny: ['nobody'] }, ROLES)).toEqual([
      { path: ['users', 'allow', 1], message: 'no role "staff" in the roles section' },
      { path: ['users', 'deny', 0], message: 'no role "nobody" in the roles section' },
    ])
    expect(userProblems({ allow: [] }, undefined)).toEqual([
      { path: ['users', 'allow'], message: 'an empty allow list lets nobody in: remove it to allow all' },
    ])
  })
})
