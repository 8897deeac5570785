import { describe, expect, it } from 'vitest'
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js'

describe('units', () => {
  it.each([
    ['500ms', 500],
    ['25s', 25_000],
    ['5m', 300_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['0s', 0],
  ])('duration %s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
    if (ms > 0) expect(parseDuration(formatDuration(ms))).toBe(ms)
  })

  it.each([
    ['256KiB', 262_144],
    ['64KB', 64_000],
    ['1MiB', 1_048_576],
    ['2MB', 2_000_000],
    ['512B', 512],
    ['100', 100],
  ])('size %s = %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
    expect(parseSize(formatSize(bytes))).toBe(bytes)
  })

  it.each(['25', '1.5s', '1h30m', '-1s', '25 s', '10sec'])('rejects duration %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError)
  })

  it.each(['1.5MiB', '10 KiB', '1GiB', 'KiB', '-1'])('rejects size %j', (text) => {
    expect(() => parseSize(text)).toThrow(RangeError)
  })
})
