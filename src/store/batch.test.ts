import { describe, expect, it } from 'vitest'
import { IterationBatch, IterationFlush, MAX_BATCH, SharedReads } from './batch.js'

const nextIteration = () => new Promise((resolve) => setImmediate(resolve))

describe('IterationBatch', () => {
  it('sends what one iteration asked for with one call, and answers each in order', async () => {
    const sent: number[][] = []
    const batch = new IterationBatch<number, string>(async (items) => {
      sent.push([...items])
      return items.map((item) => `r${item}`)
    })
    const first = await Promise.all([batch.add(1), batch.add(2), batch.add(3)])
    const second = await batch.add(4)
    expect(first).toEqual(['r1', 'r2', 'r3'])
    expect(second).toBe('r4')
    expect(sent).toEqual([[1, 2, 3], [4]])
  })

  it('waits for the check phase: nothing is sent while the iteration runs', async () => {
    let calls = 0
    const batch = new IterationBatch<number, number>(async (items) => {
      calls++
      return items
    })
    const answer = batch.add(1)
    await Promise.resolve()
    expect(calls).toBe(0)
    await nextIteration()
    expect(calls).toBe(1)
    expect(await answer).toBe(1)
  })

  it(`sends at most ${MAX_BATCH} operations per call`, async () => {
    const sizes: number[] = []
    const batch = new IterationBatch<number, number>(async (items) => {
      sizes.push(items.length)
      return items
    })
    const answers = await Promise.all(Array.from({ length: MAX_BATCH * 2 + 1 }, (_, i) => batch.add(i)))
    expect(answers).toEqual(Array.from({ length: MAX_BATCH * 2 + 1 }, (_, i) => i))
    expect(sizes).toEqual([MAX_BATCH, MAX_BATCH, 1])
  })

  it('fails every operation of a batch whose command fails, thrown or rejected', async () => {
    const rejecting = new IterationBatch<number, number>(() => Promise.reject(new Error('down')))
    const throwing = new IterationBatch<number, number>(() => {
      throw new Error('broken')
    })
    const outcomes = await Promise.allSettled([rejecting.add(1), rejecting.add(2), throwing.add(3)])
    expect(outcomes.map((outcome) => (outcome as PromiseRejectedResult).reason.message)).toEqual([
      'down',
      'down',
      'broken',
    ])
  })
})

describe('SharedReads', () => {
  it('reads each key once per iteration, whoever asks', async () => {
    const sent: string[] = []
    const reads = new SharedReads<string>(async (key) => {
      sent.push(key)
      return `${key}=${sent.length}`
    })
    const first = await Promise.all([reads.read('a'), reads.read('a'), reads.read('b')])
    const later = await reads.read('a')
    expect(first).toEqual(['a=1', 'a=1', 'b=2'])
    expect(later).toBe('a=3')
    expect(sent).toEqual(['a', 'b', 'a'])
  })

  it('fails the readers of a key whose read fails, and only them', async () => {
    const reads = new SharedReads<string>(async (key) => {
      if (key === 'bad') throw new Error('down')
      return key
    })
    const outcomes = await Promise.allSettled([reads.read('bad'), reads.read('bad'), reads.read('ok')])
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'fulfilled'])
  })
})

describe('IterationFlush', () => {
  it('flushes every batch and read of one iteration inside one call of around, once', async () => {
    const log: string[] = []
    const flusher = new IterationFlush((flushAll) => {
      log.push('cork')
      flushAll()
      log.push('uncork')
    })
    const send = (name: string) => async (items: readonly number[]) => {
      log.push(`${name} ${items.join(',')}`)
      return items
    }
    const claims = new IterationBatch(send('claims'), flusher)
    const limits = new IterationBatch(send('limits'), flusher)
    const reads = new SharedReads(async (key) => {
      log.push(`get ${key}`)
      return key
    }, flusher)
    const answers = await Promise.all([claims.add(1), limits.add(2), reads.read('g'), claims.add(3)])
    expect(answers).toEqual([1, 2, 'g', 3])
    expect(log).toEqual(['cork', 'claims 1,3', 'limits 2', 'get g', 'uncork'])
    log.length = 0
    await limits.add(4)
    expect(log).toEqual(['cork', 'limits 4', 'uncork'])
  })
})
