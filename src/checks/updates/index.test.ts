import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import { createUpdateTypeCheck, unknownUpdateTypes } from './index.js'

const run = (check: ReturnType<typeof createUpdateTypeCheck>, type: string) =>
  check?.run(new Exchange({} as never, 'r', 0), readEnvelope({ update_id: 1, [type]: {} }) as Update)

describe('the update type check', () => {
  it('is absent when every type passes', () => {
    expect(
      createUpdateTypeCheck({ schema: 'standard', unknown: 'forward', max_body: '1KiB' }, false),
    ).toBeUndefined()
  })

  it('drops known types that are not allowed, with 200', () => {
    const check = createUpdateTypeCheck(
      { allow: ['message', 'callback_query'], schema: 'standard', unknown: 'forward', max_body: '1KiB' },
      false,
    )
    expect(run(check, 'message')).toBeUndefined()
    expect(run(check, 'callback_query')).toBeUndefined()
    expect(run(check, 'edited_message')).toEqual({ kind: 'drop', reason: 'update_type_not_allowed' })
  })

  it('lets types newer than the schema through, or drops them, as unknown says', () => {
    const forward = createUpdateTypeCheck(
      { allow: ['message'], schema: 'standard', unknown: 'forward', max_body: '1KiB' },
      false,
    )
    expect(run(forward, 'subscription')).toBeUndefined()
    const drop = createUpdateTypeCheck({ schema: 'standard', unknown: 'drop', max_body: '1KiB' }, false)
    expect(run(drop, 'subscription')).toEqual({ kind: 'drop', reason: 'update_type_not_allowed' })
    expect(run(drop, 'poll')).toBeUndefined()
  })
})

describe('unknownUpdateTypes', () => {
  it('names entries that are not update types, with a likely fix', () => {
    expect(
      unknownUpdateTypes(['message', 'mesage', 'callbackquery', 'Channel-Post', 'subscription']),
    ).toEqual([
      {
        index: 1,
        message:
          '"mesage" is not an update type of Bot API 10.1 (did you mean "message"?); newer types are governed by updates.unknown',
      },
      {
        index: 2,
        message:
          '"callbackquery" is not an update type of Bot API 10.1 (did you mean "callback_query"?); newer types are governed by updates.unknown',
      },
      {
        index: 3,
        message:
          '"Channel-Post" is not an update type of Bot API 10.1 (did you mean "channel_post"?); newer types are governed by updates.unknown',
      },
      {
        index: 4,
        message:
          '"subscription" is not an update type of Bot API 10.1; newer types are governed by updates.unknown',
      },
    ])
  })
})
