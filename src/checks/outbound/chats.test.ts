import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../store/memory.js'
import { chatArguments, createChatLimits, usesHeardFrom } from './chats.js'
import { createHeardRecorder, heardKey } from './heard.js'

const facts = (chatId: number | undefined, userId?: number) => ({
  id: 1,
  type: 'message',
  chatId,
  userId,
  command: undefined,
  text: undefined,
})
const quiet = { warn() {} } as never

describe('chat arguments, from the Bot API spec', () => {
  it('are chat_id, and from_chat_id of forwards; none for methods naming no chat', () => {
    expect(chatArguments('sendMessage')).toEqual(['chat_id'])
    expect(chatArguments('FORWARDMESSAGE')).toEqual(['chat_id', 'from_chat_id'])
    expect(chatArguments('answerCallbackQuery')).toEqual([])
    expect(chatArguments('madeUp')).toEqual([])
  })
})

describe('createChatLimits', () => {
  const store = new MemoryStore()
  const limits = createChatLimits(
    {
      allow: ['heard_from', -100555, '@Shop_News'],
      methods: { forwardMessage: [-100555], banChatMember: ['any'] },
    },
    { store, bot: 'b' },
  )
  if (limits === undefined) throw new Error('no limits')

  it('allows listed ids in any form and @usernames in any case, refuses the rest', async () => {
    expect(await limits.check('sendMessage', [-100555])).toBeUndefined()
    expect(await limits.check('sendMessage', ['-100555'])).toBeUndefined()
    expect(await limits.check('sendMessage', ['@shop_news'])).toBeUndefined()
    expect(await limits.check('sendMessage', [-100556])).toBe('chat_not_allowed')
    expect(await limits.check('sendMessage', ['@other'])).toBe('chat_not_allowed')
    // Not chat ids at all: refused, not passed.
    expect(await limits.check('sendMessage', ['abc'])).toBe('chat_not_allowed')
    expect(await limits.check('sendMessage', [{ id: 1 }])).toBe('chat_not_allowed')
    expect(await limits.check('sendMessage', ['9007199254740993'])).toBe('chat_not_allowed')
    // Every value must pass.
    expect(await limits.check('sendMessage', [-100555, 7])).toBe('chat_not_allowed')
  })

  it('allows a chat heard from, through the store, until its mark expires', async () => {
    expect(await limits.check('sendMessage', [4242])).toBe('chat_not_allowed')
    const record = createHeardRecorder(60_000, { store, bot: 'b', logger: quiet })
    record(facts(4242))
    expect(await limits.check('sendMessage', [4242])).toBeUndefined()
    expect(await limits.check('sendMessage', ['4242'])).toBeUndefined()
    // Another bot has not heard from it.
    const other = createChatLimits({ allow: ['heard_from'] }, { store, bot: 'c' })
    expect(await other?.check('sendMessage', [4242])).toBe('chat_not_allowed')
    // An update without a chat: its sender's private chat.
    record(facts(undefined, 777))
    expect(await limits.check('sendMessage', [777])).toBeUndefined()
    record(undefined)
  })

  it("applies a method's own list instead of allow, and any", async () => {
    expect(await limits.check('forwardMessage', [-100555, '@shop_news'])).toBe('chat_not_allowed')
    expect(await limits.check('forwardmessage', [-100555, -100555])).toBeUndefined()
    expect(await limits.check('banChatMember', [1])).toBeUndefined()
    expect(limits.argumentsOf('banChatMember')).toEqual([])
    expect(limits.argumentsOf('forwardMessage')).toEqual(['chat_id', 'from_chat_id'])
  })

  it('refuses an unreadable chat only for methods with a chat argument; passes a call naming none', async () => {
    expect(await limits.check('sendDocument', 'unreadable')).toBe('chat_unreadable')
    expect(await limits.check('answerCallbackQuery', 'unreadable')).toBeUndefined()
    expect(await limits.check('editMessageText', [])).toBeUndefined()
  })

  it('is absent without chats; knows when heard_from is used', () => {
    expect(createChatLimits(undefined, { store, bot: 'b' })).toBeUndefined()
    expect(usesHeardFrom({ allow: [1] })).toBe(false)
    expect(usesHeardFrom({ methods: { sendMessage: ['heard_from'] } })).toBe(true)
    expect(usesHeardFrom(undefined)).toBe(false)
  })
})

describe('createHeardRecorder', () => {
  it('writes a chat once per refresh period, with the TTL, and again after it', () => {
    const puts: { key: unknown; ttl: number }[] = []
    const store = { put: (key: unknown, _v: string, ttl: number) => void puts.push({ key, ttl }) } as never
    let now = 0
    const record = createHeardRecorder(100_000_000, { store, bot: 'b', logger: quiet, clock: () => now })
    record(facts(-1))
    record(facts(-1))
    expect(puts).toEqual([{ key: heardKey('b', -1), ttl: 100_000_000 }])
    now += 1_000_001
    record(facts(-1))
    expect(puts).toHaveLength(2)
  })

  it('writes again after a failed write, and logs one line per outage', async () => {
    let fail = true
    let writes = 0
    const warnings: string[] = []
    const store = {
      put: () => {
        writes++
        return fail ? Promise.reject(new Error('down')) : Promise.resolve()
      },
    } as never
    const logger = { warn: (_: unknown, message: string) => void warnings.push(message) } as never
    const record = createHeardRecorder(60_000, { store, bot: 'b', logger })
    record(facts(-1))
    await new Promise((resolve) => setImmediate(resolve))
    record(facts(-1))
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes).toBe(2)
    expect(warnings).toEqual(['outbound: a chat heard from was not recorded'])
    fail = false
    record(facts(-1))
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes).toBe(3)
  })
})
