import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { compileMethodFilter, GUARDED_METHODS, METHOD_SETS, outboundFilter } from './index.js'

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

describe('method sets', () => {
  it('name only methods of the vendored Bot API spec', () => {
    const spec = JSON.parse(
      readFileSync(new URL('../../../vendor/telegram-bot-api/api.json', import.meta.url), 'utf8'),
    ) as { methods: Record<string, unknown> }
    const known = new Set(Object.keys(spec.methods))
    for (const [set, methods] of Object.entries(METHOD_SETS))
      for (const method of methods) expect(known.has(method), `${set}: ${method}`).toBe(true)
  })

  it('allow their methods, and never a guarded one through a set', () => {
    const allows = compileMethodFilter(['messaging', 'payments'])
    expect(allows('sendMessage')).toBe(true)
    expect(allows('answerPreCheckoutQuery')).toBe(true)
    expect(allows('banChatMember')).toBe(false)
    expect(allows('deleteWebhook')).toBe(false)
    expect(compileMethodFilter(['moderation'])('banChatMember')).toBe(true)
  })

  it('a policy without outbound allows all but the guarded methods', () => {
    expect(outboundFilter(undefined)('sendPhoto')).toBe(true)
    expect(outboundFilter(undefined)('logOut')).toBe(false)
    expect(outboundFilter({ allow_methods: ['sendMessage'] })('sendPhoto')).toBe(false)
  })
})
