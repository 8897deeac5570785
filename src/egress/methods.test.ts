import { describe, expect, it } from 'vitest'
import { compileMethodFilter, GUARDED_METHODS } from './methods.js'

describe('compileMethodFilter', () => {
  it('any allows every method but the guarded ones', () => {
    const allows = compileMethodFilter(['any'])
    expect(allows('sendMessage')).toBe(true)
    expect(allows('SENDMESSAGE')).toBe(true)
    for (const method of GUARDED_METHODS) {
      expect(allows(method)).toBe(false)
      expect(allows(method.toUpperCase())).toBe(false)
    }
  })

  it('a guarded method is allowed when listed by name', () => {
    const allows = compileMethodFilter(['any', 'deleteWebhook'])
    expect(allows('deletewebhook')).toBe(true)
    expect(allows('setWebhook')).toBe(false)
  })

  it('a list allows only its methods', () => {
    const allows = compileMethodFilter(['sendMessage'])
    expect(allows('sendMessage')).toBe(true)
    expect(allows('sendPhoto')).toBe(false)
  })
})
