import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { multipartHead, readHead, UploadGuard } from './upload.js'

const part = (name: string, value: string, filename?: string) =>
  `--b0\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`

/** Streams `text` through a guard in chunks of `size` bytes; what came out, or why it stopped. */
async function guarded(text: string, size: number, guard: UploadGuard): Promise<string> {
  const bytes = Buffer.from(text)
  const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
    bytes.subarray(i * size, (i + 1) * size),
  )
  let out = ''
  try {
    await pipeline(Readable.from(chunks), guard, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out += chunk.toString()
    })
  } catch {
    return `stopped: ${guard.stopped}`
  }
  return out
}

const watch = (checked: number) => ({ boundary: 'b0', names: new Set(['chat_id']), checked })

describe('multipartHead', () => {
  it('reads the fields before the first file, complete once the file or the end shows', () => {
    const head = multipartHead(Buffer.from(`${part('chat_id', '5')}${part('doc', 'x', 'a')}`), 'b0')
    expect(head).toEqual({ fields: [{ name: 'chat_id', value: '5' }], complete: true })
    // The last field may go on: not yet a field, not complete.
    expect(
      multipartHead(
        Buffer.from(
          `${part('chat_id', '5')}--b0\r\nContent-Disposition: form-data; name="caption"\r\n\r\nlong`,
        ),
        'b0',
      ),
    ).toEqual({ fields: [{ name: 'chat_id', value: '5' }], complete: false })
    expect(multipartHead(Buffer.from(`${part('chat_id', '5')}--b0--\r\n`), 'b0').complete).toBe(true)
  })
})

describe('readHead', () => {
  it('puts what it read back, so the stream still yields all of it', async () => {
    const stream = Readable.from([Buffer.from('abc'), Buffer.from('def'), Buffer.from('ghi')], {
      objectMode: false,
    })
    const { head, ended } = await readHead(stream, 1024, (bytes) => bytes.includes('e'))
    expect(head.toString()).toBe('abcdef')
    expect(ended).toBe(false)
    const rest: Buffer[] = []
    for await (const chunk of stream) rest.push(chunk as Buffer)
    expect(Buffer.concat(rest).toString()).toBe('abcdefghi')
  })

  it('says when the body ended within the head', async () => {
    const { head, ended } = await readHead(Readable.from([Buffer.from('abc')]), 1024, () => false)
    expect([head.toString(), ended]).toEqual(['abc', true])
  })
})

describe('UploadGuard', () => {
  const body = `${part('chat_id', '5')}${part('doc', 'y'.repeat(300), 'a')}${part('chat_id', '6')}--b0--\r\n`

  it('stops the body at a chat part after the checked ones, wherever the chunks split it', async () => {
    for (const size of [1, 7, 50, 64, 1000]) {
      expect(await guarded(body, size, new UploadGuard({ maxBytes: 1e6, watch: watch(1) })), `${size}`).toBe(
        'stopped: chat_unreadable',
      )
      expect(await guarded(body, size, new UploadGuard({ maxBytes: 1e6, watch: watch(2) }))).toBe(body)
    }
  })

  it('never passes on the bytes after such a part header', async () => {
    /** Records what the guard pushes, before any reader could miss it. */
    class Recording extends UploadGuard {
      pushed = ''
      override push(chunk: unknown): boolean {
        if (chunk instanceof Buffer) this.pushed += chunk.toString()
        return super.push(chunk)
      }
    }
    for (const size of [1, 3, 7, 64]) {
      const guard = new Recording({ maxBytes: 1e6, watch: watch(1) })
      expect(await guarded(body, size, guard)).toBe('stopped: chat_unreadable')
      expect(guard.pushed).toContain('y'.repeat(300))
      expect(guard.pushed, `${size}`).not.toContain('name="chat_id"\r\n\r\n6')
    }
  })

  it('stops a body past its cap, and passes one at it', async () => {
    expect(await guarded('x'.repeat(100), 10, new UploadGuard({ maxBytes: 99 }))).toBe(
      'stopped: upload_too_large',
    )
    expect(await guarded('x'.repeat(100), 10, new UploadGuard({ maxBytes: 100 }))).toBe('x'.repeat(100))
  })
})
