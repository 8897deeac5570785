import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { createSecretCheck, secretMatches } from './index.js'

const SECRET = 'abcdefghijklmnopqrstuvwxyz012345_-ABCDEF'

describe('secretMatches', () => {
  it.each([
    [SECRET, true],
    [SECRET.slice(0, -1), false],
    [`${SECRET}x`, false],
    [SECRET.toUpperCase(), false],
    ['', false],
    [`${SECRET.slice(0, -1)}G`, false],
  ])('%j: %s', (given, expected) => {
    expect(secretMatches(Buffer.from(SECRET, 'latin1'), given)).toBe(expected)
  })
})

describe('the secret check', () => {
  const check = createSecretCheck(SECRET)
  const run = (headers: Record<string, string | string[]>) => {
    const exchange = new Exchange({ headers } as never, 'id', 0)
    return { verdict: check.run(exchange), detail: exchange.detail }
  }

  it('passes exactly one matching header', () => {
    expect(run({ 'x-telegram-bot-api-secret-token': SECRET }).verdict).toBeUndefined()
  })

  it.each([
    [{}, 'secret header missing'],
    [{ 'x-telegram-bot-api-secret-token': 'nope' }, 'secret header wrong'],
    [{ 'x-telegram-bot-api-secret-token': `${SECRET}, ${SECRET}` }, 'secret header repeated'],
    [{ 'x-telegram-bot-api-secret-token': [SECRET, SECRET] }, 'secret header repeated'],
  ])('rejects %j with 401 (%s)', (headers, detail) => {
    const result = run(headers)
    expect(result.verdict).toMatchObject({ kind: 'reject', status: 401, reason: 'bad_secret' })
    expect(result.detail).toBe(detail)
  })

  it('is never shadowed', () => {
    expect(check.shadow).toBe(false)
  })
})
