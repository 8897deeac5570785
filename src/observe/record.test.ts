import { describe, expect, it } from 'vitest'
import { msText } from './record.js'

describe('msText: milliseconds in the request log line', () => {
  it('writes milliseconds to the microsecond, three decimals always', () => {
    expect(msText(0)).toBe('0.000')
    expect(msText(0.063)).toBe('0.063')
    expect(msText(17.12)).toBe('17.120')
    expect(msText(5)).toBe('5.000')
    expect(msText(60_000)).toBe('60000.000')
  })

  it('rounds to the nearest microsecond, carrying into the milliseconds', () => {
    expect(msText(0.0004)).toBe('0.000')
    expect(msText(0.0636)).toBe('0.064')
    expect(msText(1999.9996)).toBe('2000.000')
  })

  it('is JSON for the same number as rounding the double', () => {
    for (let i = 0; i < 2000; i++) {
      const value = (i * 7.919) % 250
      expect(JSON.parse(msText(value))).toBe(Math.round(value * 1000) / 1000)
    }
  })

  it('never writes a negative time', () => {
    expect(msText(-0.2)).toBe('0.000')
  })
})
