import { describe, expect, it } from 'vitest'
import { boundHeapGrowth } from './serve.js'

/** The V8 flags boundHeapGrowth sets for a process started with `execArgv`. */
function flagsSet(execArgv: readonly string[]): string[] {
  const set: string[] = []
  boundHeapGrowth(execArgv, (flags) => set.push(flags))
  return set
}

describe('boundHeapGrowth', () => {
  it('sets --heap-growing-percent=50 when the process was started without one', () => {
    expect(flagsSet([])).toEqual(['--heap-growing-percent=50'])
    expect(flagsSet(['--max-semi-space-size=8', '--heap-growing-percent-x=1'])).toEqual([
      '--heap-growing-percent=50',
    ])
  })

  it("leaves an operator's own --heap-growing-percent alone, in either spelling", () => {
    expect(flagsSet(['--heap-growing-percent=20'])).toEqual([])
    expect(flagsSet(['--trace-gc', '--heap_growing_percent=20'])).toEqual([])
    expect(flagsSet(['--heap-growing-percent', '20'])).toEqual([])
  })
})
