import { describe, expect, it } from 'vitest'
import { scrubText, TokenScrubber } from './scrub.js'

const TOKEN = '4242:AAH-real-token'
const CREDENTIAL = '4242:credential-xyz0'

function scrubStream(parts: readonly Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const scrubber = new TokenScrubber(TOKEN, CREDENTIAL)
    const out: Buffer[] = []
    scrubber.on('data', (chunk: Buffer) => out.push(chunk))
    scrubber.on('end', () => resolve(Buffer.concat(out).toString()))
    scrubber.on('error', reject)
    for (const part of parts) scrubber.write(part)
    scrubber.end()
  })
}

describe('TokenScrubber', () => {
  const text = `{"file_path":"https://x/file/bot${TOKEN}/a","again":"${TOKEN}${TOKEN}","tail":"${TOKEN.slice(0, 5)}"}`
  const expected = text.split(TOKEN).join(CREDENTIAL)

  it('replaces the token wherever a chunk boundary falls', async () => {
    const bytes = Buffer.from(text)
    for (let cut = 0; cut <= bytes.length; cut++)
      expect(await scrubStream([bytes.subarray(0, cut), bytes.subarray(cut)])).toBe(expected)
  })

  it('replaces the token split over many one-byte chunks', async () => {
    const bytes = Buffer.from(text)
    const parts = [...bytes].map((byte) => Buffer.from([byte]))
    expect(await scrubStream(parts)).toBe(expected)
  })

  it('keeps a prefix of the token at the very end', async () => {
    expect(await scrubStream([Buffer.from(`x${TOKEN.slice(0, -1)}`)])).toBe(`x${TOKEN.slice(0, -1)}`)
  })
})

describe('scrubText', () => {
  it('replaces every occurrence and leaves other text alone', () => {
    expect(scrubText(`a${TOKEN}b${TOKEN}`, TOKEN, CREDENTIAL)).toBe(`a${CREDENTIAL}b${CREDENTIAL}`)
    expect(scrubText('nothing here', TOKEN, CREDENTIAL)).toBe('nothing here')
  })
})
