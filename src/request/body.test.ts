import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { BODY_TIMED_OUT, interruptBody, readBody, unreadableBody } from './body.js'

/** A request as Node's server builds it, with `content-length` declared and no body yet. */
function request(): IncomingMessage {
  const incoming = new IncomingMessage(new Socket())
  incoming.headers['content-length'] = '10'
  return incoming
}

describe('readBody', () => {
  it('reads the body to its end', async () => {
    const incoming = request()
    const read = readBody(incoming, 100)
    incoming.push(Buffer.from('{"a":'))
    incoming.push(Buffer.from('1}'))
    incoming.push(null)
    expect((await read).toString()).toBe('{"a":1}')
  })

  it('ends at once for a request whose connection is already gone (it will never send end or close)', async () => {
    const incoming = request()
    incoming.destroy()
    await new Promise((resolve) => setImmediate(resolve))
    expect(await readBody(incoming, 100)).toEqual({
      reject: expect.objectContaining({ status: 400, reason: 'malformed_json' }),
      detail: 'client aborted the body',
    })
  })

  it('ends with the failure a client error reported, during the read or before it began', async () => {
    const during = request()
    const read = readBody(during, 100)
    during.push(Buffer.from('{"a":'))
    interruptBody(during, BODY_TIMED_OUT)
    expect(await read).toBe(BODY_TIMED_OUT)

    const before = request()
    interruptBody(before, unreadableBody('HPE_INVALID_CHUNK_SIZE'))
    interruptBody(before, BODY_TIMED_OUT) // the first failure stands
    expect(await readBody(before, 100)).toEqual({
      reject: expect.objectContaining({ status: 400, reason: 'bad_request' }),
      detail: 'HPE_INVALID_CHUNK_SIZE',
    })
  })
})
