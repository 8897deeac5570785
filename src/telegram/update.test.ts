import { describe, expect, it } from 'vitest'
import { readEnvelope } from './update.js'

describe('readEnvelope', () => {
  it('reads the id, the type, the payload and the facts', () => {
    const raw = {
      update_id: 0,
      callback_query: { id: 'x', from: { id: 7 }, message: { chat: { id: -100 } } },
    }
    expect(readEnvelope(raw)).toEqual({
      id: 0,
      type: 'callback_query',
      payload: raw.callback_query,
      raw,
      message: undefined,
      chatId: -100,
      userId: 7,
      commands: [],
    })
  })

  it.each([
    ['message', { chat: { id: 1 }, from: { id: 2 }, text: '/start' }, 1, 2, ['start']],
    ['edited_message', { chat: { id: 1 }, from: { id: 2 }, caption: '/Help me' }, 1, 2, ['help']],
    ['channel_post', { chat: { id: -5 }, text: '/x' }, -5, undefined, ['x']],
    ['business_message', { chat: { id: 1 }, from: { id: 2 }, text: 'hi' }, 1, 2, []],
    ['guest_message', { chat: { id: 1 }, from: { id: 2 }, text: '/g' }, 1, 2, ['g']],
    ['inline_query', { id: 'q', from: { id: 3 }, query: '/not a command' }, undefined, 3, []],
    ['poll_answer', { poll_id: 'p', user: { id: 4 } }, undefined, 4, []],
    ['message_reaction', { chat: { id: 9 }, user: { id: 4 } }, 9, 4, []],
    ['chat_member', { chat: { id: 9 }, from: { id: 8 } }, 9, 8, []],
    ['some_future_type', { chat: { id: 9 }, from: { id: 8 }, text: '/x' }, 9, 8, []],
  ])('%s: chat %s, user %s, commands %j', (type, payload, chat, user, commands) => {
    const update = readEnvelope({ update_id: 1, [type]: payload })
    expect(update).toMatchObject({ chatId: chat, userId: user })
    expect(typeof update === 'string' ? [] : update.commands.map((c) => c.name)).toEqual(commands)
  })

  it('ignores ids that are not safe integers', () => {
    expect(
      readEnvelope({ update_id: 1, message: { chat: { id: '1' }, from: { id: 2 ** 60 } } }),
    ).toMatchObject({
      chatId: undefined,
      userId: undefined,
    })
  })

  it('takes an update type it does not know: newer Bot API versions add them', () => {
    expect(readEnvelope({ update_id: 9, subscription: {} })).toMatchObject({ type: 'subscription' })
  })

  it.each([
    [{ message: {} }, 'update_id'],
    [{ update_id: null, message: {} }, 'update_id'],
    [{ update_id: -5, message: {} }, 'update_id'],
    [{ update_id: 0.5, message: {} }, 'update_id'],
    [{ update_id: Number.MAX_SAFE_INTEGER + 1, message: {} }, 'update_id'],
    [{ update_id: 1 }, 'no_update_type'],
    [{ update_id: 1, message: {}, callback_query: {} }, 'several_update_types'],
    [{ update_id: 1, message: 'hi' }, 'update_type_not_object'],
    [{ update_id: 1, message: null }, 'update_type_not_object'],
    [{ update_id: 1, message: [] }, 'update_type_not_object'],
  ])('%j: %s', (raw, problem) => {
    expect(readEnvelope(raw as Record<string, unknown>)).toBe(problem)
  })
})
