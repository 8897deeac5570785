/**
 * The fuzzer (fuzz/run.mjs, `npm run fuzz`), short: 20,000 mutated requests of a fixed seed through
 * a real `botgate serve`, each judged by the fuzzer's own oracle (fuzz/oracle.mjs). The full
 * campaign of a million cases and its figures are in docs/fuzzing.md.
 */

import { describe, expect, it } from 'vitest'
// @ts-expect-error: the fuzzer is a plain JavaScript module, like bench/
import { describeCase, runFuzz } from '../fuzz/run.mjs'

interface Violation {
  readonly seed: number
  readonly index: number | undefined
  readonly message: string
  readonly request?: unknown
}

interface FuzzResult {
  readonly cases: number
  readonly timedOut: boolean
  readonly counts: { readonly status: Record<string, number>; readonly forwarded: number }
  readonly violationCount: number
  readonly violations: readonly Violation[]
}

describe('fuzz', () => {
  it('sends 20,000 mutated updates (seed 7) through botgate serve without a violation', async () => {
    const result = (await runFuzz({ seed: 7, cases: 20_000, seconds: 150, concurrency: 16 })) as FuzzResult
    const report = result.violations
      .slice(0, 5)
      .map((v) => `${v.message}\n${v.request === undefined ? '' : describeCase(v.seed, v.request)}`)
    expect(report).toEqual([])
    expect(result.violationCount).toBe(0)
    expect(result.timedOut).toBe(false)
    expect(result.cases).toBe(20_000)
    // The mix reaches every part of the pipeline: forwards, drops and every refusal.
    expect(result.counts.forwarded).toBeGreaterThan(1000)
    for (const status of ['200', '400', '401', '404', '405', '413', '415'])
      expect(result.counts.status[status] ?? 0, status).toBeGreaterThan(100)
  }, 180_000)
})
