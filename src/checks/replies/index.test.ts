import { describe, expect, it } from 'vitest'
import { StoreError } from '../../store/index.js'
import { MemoryStore } from '../../store/memory.js'
import { createChatLimits } from '../outbound/chats.js'
import { heardKey } from '../outbound/heard.js'
import { createReplyFilter, replyMethod } from './index.js'

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

describe('replyMethod', () => {
  it.each([
    ['application/json', json({ method: 'sendMessage', chat_id: 1 }), 'sendMessage'],
    ['application/json; charset=utf-8', json({ method: 'answerCallbackQuery' }), 'answerCallbackQuery'],
    ['application/json', json({ ok: true }), null],
    ['application/json', json([1, 2]), null],
    ['application/json', json({ method: 5 }), undefined],
    ['application/json', json('sendMessage'), undefined],
    ['application/json', Buffer.from('{"method":'), undefined],
    ['application/x-www-form-urlencoded', Buffer.from('chat_id=1&method=sendPhoto'), 'sendPhoto'],
    ['application/x-www-form-urlencoded', Buffer.from('chat_id=1'), null],
    ['text/plain', Buffer.from('method=sendMessage'), undefined],
    [undefined, Buffer.from('{"method":"sendMessage"}'), undefined],
    ['application/json', Buffer.alloc(0), null],
  ])('%s %s -> %s', (type, body, method) => {
    expect(replyMethod(type, body)).toBe(method)
  })

  it('reads the method field of multipart/form-data, quoted boundary and all', () => {
    const body = Buffer.from(
      '--b0\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1\r\n' +
        '--b0\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\nmethod\r\n' +
        '--b0\r\nContent-Disposition: form-data; name="method"\r\n\r\nsendPhoto\r\n--b0--\r\n',
    )
    expect(replyMethod('multipart/form-data; boundary=b0', body)).toBe('sendPhoto')
    expect(replyMethod('multipart/form-data; boundary="b0"', body)).toBe('sendPhoto')
    expect(replyMethod('multipart/form-data', body)).toBeUndefined() // no boundary: cannot tell
    expect(replyMethod('multipart/form-data; boundary=b0', Buffer.from('--b0--\r\n'))).toBeNull()
  })
})

describe('createReplyFilter', () => {
  it('is absent without allow_methods: nothing to parse on the request path', () => {
    expect(createReplyFilter(undefined, undefined)).toBeUndefined()
    expect(createReplyFilter({}, undefined)).toBeUndefined()
  })

  it('allows listed methods case-insensitively, answers without a method, and refuses the rest', () => {
    const filter = createReplyFilter({ allow_methods: ['sendMessage'] }, undefined)
    expect(filter?.('application/json', json({ method: 'SendMessage' }))).toBeUndefined()
    expect(filter?.('application/json', json({}))).toBeUndefined()
    expect(filter?.('application/json', json({ method: 'deleteMessage' }))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
    expect(filter?.('text/html', Buffer.from('<p>'))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
  })

  it('applies the outbound section, the egress filter, and replies.allow_methods only narrows it', () => {
    const outbound = createReplyFilter(undefined, { allow_methods: ['messaging'] })
    expect(outbound?.('application/json', json({ method: 'sendPhoto' }))).toBeUndefined()
    expect(outbound?.('application/json', json({ method: 'banChatMember' }))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
    expect(outbound?.('application/json', json({ method: 'deleteWebhook' }))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
    const both = createReplyFilter(
      { allow_methods: ['sendMessage', 'banChatMember'] },
      { allow_methods: ['messaging'] },
    )
    expect(both?.('application/json', json({ method: 'sendMessage' }))).toBeUndefined()
    expect(both?.('application/json', json({ method: 'sendPhoto' }))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
    expect(both?.('application/json', json({ method: 'banChatMember' }))).toMatchObject({
      kind: 'refused',
      reason: 'reply_method_not_allowed',
    })
  })
})

describe('createReplyFilter with outbound.chats', () => {
  const outbound = { chats: { allow: ['heard_from' as const, 555] } }
  const filterOn = (store: MemoryStore) =>
    createReplyFilter(undefined, outbound, createChatLimits(outbound.chats, { store, bot: 'b' }))

  it('refuses a chat not allowed, passes a listed or heard-from one, and the chat being answered', async () => {
    const store = new MemoryStore()
    await store.put(heardKey('b', 77), '1', 60_000)
    const filter = filterOn(store)
    const send = (chat: unknown) => json({ method: 'sendMessage', chat_id: chat, text: 'x' })
    expect(await filter?.('application/json', send(9))).toEqual({
      kind: 'refused',
      reason: 'chat_not_allowed',
      method: 'sendMessage',
    })
    expect(await filter?.('application/json', send(555))).toBeUndefined()
    expect(await filter?.('application/json', send(77))).toBeUndefined()
    // Not in the store yet: the update being answered came from it.
    expect(await filter?.('application/json', send(9), 9)).toBeUndefined()
    // Nothing to ask the store for a method without a chat argument: no promise.
    expect(filter?.('application/json', json({ method: 'answerCallbackQuery' }))).toBeUndefined()
  })

  it('sends a JSON answer on as it read it, with the chat it checked', async () => {
    const filter = filterOn(new MemoryStore())
    const verdict = await filter?.(
      'application/json',
      Buffer.from('{"method":"sendMessage","chat_id":9,"chat_id":555}'),
    )
    expect(verdict?.kind === 'pass' ? verdict.body.toString() : verdict).toBe(
      '{"method":"sendMessage","chat_id":555}',
    )
  })

  it('withholds the answer when the store cannot say (fail closed)', async () => {
    const store = new MemoryStore()
    store.read = (() => Promise.reject(new StoreError('down'))) as never
    expect(await filterOn(store)?.('application/json', json({ method: 'sendMessage', chat_id: 9 }))).toEqual({
      kind: 'refused',
      reason: 'store_unavailable',
      method: 'sendMessage',
    })
  })
})
