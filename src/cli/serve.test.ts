import { describe, expect, it } from 'vitest'
import { boundHeapGrowth } from './serve.js'

describe('boundHeapGrowth', () => {
  it('leaves an operator-chosen --heap-growing-percent alone, in either spelling', () => {
    expect(boundHeapGrowth(['--heap-growing-percent=20'])).toBe(false)
    expect(boundHeapGrowth(['--trace-gc', '--heap_growing_percent=20'])).toBe(false)
    expect(boundHeapGrowth(['--heap-growing-percent', '20'])).toBe(false)
  })

  it('sets its own otherwise', () => {
    expect(boundHeapGrowth([])).toBe(true)
    expect(boundHeapGrowth(['--max-semi-space-size=8', '--heap-growing-percent-x=1'])).toBe(true)
  })
})
