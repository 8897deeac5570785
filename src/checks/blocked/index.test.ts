import { describe, expect, it } from 'vitest'
import { Blocks } from '../../blocks/index.js'
import { Exchange } from '../../pipeline/exchange.js'
import { MemoryStore } from '../../store/memory.js'
import type { Update } from '../../telegram/update.js'
import { createBlockedCheck } from './index.js'

const update = (chatId: number | undefined, userId: number | undefined) =>
  ({ id: 1, type: 'message', chatId, userId }) as Update

describe('the blocked check', () => {
  it('drops an update of a blocked chat or user with 200 blocked, and says which in the log detail', async () => {
    const blocks = new Blocks(new MemoryStore())
    await blocks.block('shop', 'chat', -100, 60_000)
    await blocks.block('shop', 'user', 7, 60_000)
    const check = createBlockedCheck(blocks.forBot('shop'))
    expect(check.shadow).toBe(false)
    const chat = new Exchange({} as never, 'a', 0)
    expect(check.run(chat, update(-100, 1))).toEqual({ kind: 'drop', reason: 'blocked' })
    expect(chat.detail).toBe('chat blocked')
    const user = new Exchange({} as never, 'b', 0)
    expect(check.run(user, update(1, 7))).toEqual({ kind: 'drop', reason: 'blocked' })
    expect(user.detail).toBe('user blocked')
    const other = new Exchange({} as never, 'c', 0)
    expect(check.run(other, update(1, 1))).toBeUndefined()
    expect(other.detail).toBeUndefined()
  })

  it('passes an update with neither chat nor sender without asking the store', () => {
    const store = new MemoryStore()
    store.read = () => {
      throw new Error('read')
    }
    const check = createBlockedCheck(new Blocks(store).forBot('shop'))
    expect(check.run(new Exchange({} as never, 'a', 0), update(undefined, undefined))).toBeUndefined()
  })
})
