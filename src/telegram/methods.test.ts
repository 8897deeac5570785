import { describe, expect, it } from 'vitest'
import { canonicalMethod, methodForLog, methodLabel } from './methods.js'

describe('Bot API method names', () => {
  it('spells a method of any case as the spec does', () => {
    for (const name of ['sendmessage', 'SENDMESSAGE', 'sendMessage', 'SendMessage'])
      expect(canonicalMethod(name)).toBe('sendMessage')
    expect(canonicalMethod('deletewebhook')).toBe('deleteWebhook')
    expect(canonicalMethod('sendMessages')).toBeUndefined()
  })

  it('labels unknown names other, and logs only plain names', () => {
    expect(methodLabel('GETME')).toBe('getMe')
    expect(methodLabel('madeUpName')).toBe('other')
    expect(methodLabel(undefined)).toBe('other')
    expect(methodForLog('LOGOUT')).toBe('logOut')
    expect(methodForLog('madeUpName')).toBe('madeUpName')
    expect(methodForLog('deleteWebhoo%6B')).toBeUndefined()
    expect(methodForLog('a'.repeat(65))).toBeUndefined()
  })
})
