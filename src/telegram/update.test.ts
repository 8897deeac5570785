import { describe, expect, it } from 'vitest'
import { readEnvelope } from './update.js'

describe('readEnvelope', () => {
  it('reads the id, the type and the payload', () => {
    const raw = { update_id: 0, callback_query: { id: 'x' } }
    expect(readEnvelope(raw)).toEqual({ id: 0, type: 'callback_query', payload: { id: 'x' }, raw })
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
