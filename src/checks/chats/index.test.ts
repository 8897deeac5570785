import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { StoreError } from '../../store/index.js'
import { MemoryStore } from '../../store/memory.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import {
  type ChatsPolicy,
  chatProblems,
  chatsSchema,
  createChatsCheck,
  LEAVE_REPLY_PERIOD_MS,
} from './index.js'

/** A real update shape from test/fixtures/updates (provenance in its MANIFEST.md). */
function sample(file: string): Update {
  const raw = JSON.parse(
    readFileSync(new URL(`../../../test/fixtures/updates/${file}`, import.meta.url), 'utf8'),
  )
  const update = readEnvelope(raw)
  if (typeof update === 'string') throw new Error(`${file}: ${update}`)
  return update
}

const PRIVATE = sample('nutgram-010.json') // a private chat, 12345
const GROUP = sample('php-telegram-bot-001.json') // a group, -123
const SUPERGROUP = sample('nutgram-061.json') // a supergroup, -1001234567489
const CHANNEL = sample('nutgram-011.json') // a channel post
const CALLBACK = sample('nutgram-006.json') // a callback query from a private chat, 222222222
const ADDED = sample('teloxide-049.json') // my_chat_member

function check(policy: ChatsPolicy, store = new MemoryStore(), shadow = false) {
  const created = createChatsCheck(policy, shadow, { store, bot: 'shop' })
  if (created === undefined) throw new Error('no check')
  return created
}

function verdict(policy: ChatsPolicy, update: Update, store?: MemoryStore) {
  const exchange = new Exchange({} as never, 'r', 0)
  return Promise.resolve(check(policy, store).run(exchange, update)).then((outcome) => ({
    outcome,
    detail: exchange.detail,
  }))
}

describe('the chats check', () => {
  it('does not exist without a chats section', () => {
    expect(createChatsCheck(undefined, false, { store: new MemoryStore(), bot: 'shop' })).toBeUndefined()
  })

  it('serves only the listed chat types: private only drops groups, supergroups and channel posts', async () => {
    const policy: ChatsPolicy = { types: ['private'] }
    expect((await verdict(policy, PRIVATE)).outcome).toBeUndefined()
    expect((await verdict(policy, CALLBACK)).outcome).toBeUndefined()
    for (const update of [GROUP, SUPERGROUP, CHANNEL]) {
      expect(await verdict(policy, update)).toEqual({
        outcome: { kind: 'drop', reason: 'chat_not_allowed' },
        detail: 'chats.types',
      })
    }
  })

  it('lets my_chat_member through whatever the policy, so the bot learns where it was added', async () => {
    expect((await verdict({ types: ['channel'], allow: [1] }, ADDED)).outcome).toBeUndefined()
  })

  it('serves only the allow list when there is one, and never a chat on deny', async () => {
    expect((await verdict({ allow: [-123] }, GROUP)).outcome).toBeUndefined()
    expect(await verdict({ allow: [-123] }, SUPERGROUP)).toEqual({
      outcome: { kind: 'drop', reason: 'chat_not_allowed' },
      detail: 'chats.allow',
    })
    expect(await verdict({ deny: [-123] }, GROUP)).toEqual({
      outcome: { kind: 'drop', reason: 'chat_not_allowed' },
      detail: 'chats.deny',
    })
    expect((await verdict({ deny: [-123] }, SUPERGROUP)).outcome).toBeUndefined()
    // A callback query's chat is its message's.
    expect((await verdict({ allow: [-123] }, CALLBACK)).detail).toBe('chats.allow')
  })

  it('passes updates that have no chat', async () => {
    const inline = readEnvelope({
      update_id: 1,
      inline_query: { id: 'q', from: { id: 5, is_bot: false, first_name: 'A' }, query: 'x', offset: '' },
    }) as Update
    expect((await verdict({ types: ['private'], allow: [1] }, inline)).outcome).toBeUndefined()
  })

  it('answers a refused group with leave_reply once per hour, and never a private chat', async () => {
    const store = new MemoryStore()
    const policy: ChatsPolicy = { types: ['private'], leave_reply: 'Private chats only.' }
    expect((await verdict(policy, GROUP, store)).outcome).toEqual({
      kind: 'drop',
      reason: 'chat_not_allowed',
      reply: { method: 'sendMessage', chat_id: -123, text: 'Private chats only.' },
    })
    expect((await verdict(policy, GROUP, store)).outcome).toEqual({
      kind: 'drop',
      reason: 'chat_not_allowed',
    })
    // Another group has its own mark.
    expect((await verdict(policy, SUPERGROUP, store)).outcome).toMatchObject({
      reply: { chat_id: -1001234567489 },
    })
    expect(await store.read('{shop}:chats:r:-123')).toBe('1')
    const marks = await store.list('{shop}:chats:r:')
    expect(marks.every((mark) => mark.ttlMs > 0 && mark.ttlMs <= LEAVE_REPLY_PERIOD_MS)).toBe(true)
    // A channel post and a private chat refused by deny get no reply.
    expect((await verdict({ deny: [12345], leave_reply: 'no' }, PRIVATE, store)).outcome).toEqual({
      kind: 'drop',
      reason: 'chat_not_allowed',
    })
  })

  it('answers as the store says when it fails while deciding about a reply', async () => {
    const store = new MemoryStore()
    store.claim = (() => Promise.reject(new StoreError('down'))) as never
    expect((await verdict({ types: ['private'], leave_reply: 'x' }, GROUP, store)).outcome).toEqual({
      kind: 'reject',
      status: 503,
      reason: 'store_unavailable',
      retryAfter: 5,
    })
  })

  it('carries its shadow flag for the runner', () => {
    expect(check({}, new MemoryStore(), true).shadow).toBe(true)
  })
})

describe('the chats section', () => {
  it('has a schema that names chat types', () => {
    expect(
      chatsSchema.properties.types.items.anyOf.map((literal: { const: string }) => literal.const),
    ).toEqual(['private', 'group', 'supergroup', 'channel'])
  })

  it('refuses a chat both allowed and denied, and an empty allow list', () => {
    expect(chatProblems({ allow: [1, -5], deny: [-5] })).toEqual([
      { path: ['chats', 'allow', 1], message: 'chat -5 is also on deny' },
    ])
    expect(chatProblems({ allow: [] })).toEqual([
      { path: ['chats', 'allow'], message: 'an empty allow list serves no chat: remove it to serve all' },
    ])
  })
})
