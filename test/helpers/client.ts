/**
 * HTTP clients for tests: `post` for ordinary requests (with exact control over headers,
 * duplicates included), `raw` for bytes no well-behaved client would send.
 */

import http from 'node:http'
import net from 'node:net'

export interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  json<T = unknown>(): T
}

/** Reads a whole response into a {@link Reply}. */
export function readReply(response: http.IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: text,
        json: () => JSON.parse(text),
      })
    })
    response.on('error', reject)
  })
}

/** Posts `body`; `headers` is a flat list of name, value pairs so a header can repeat. */
export function post(
  url: string,
  body: string | Buffer | null,
  headers: readonly string[] = [],
  method = 'POST',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // With headers as a list Node adds no Host header of its own; HTTP/1.1 requires one.
    const has = (header: string) => headers.some((name, i) => i % 2 === 0 && name.toLowerCase() === header)
    const implicit = has('host') ? [] : ['host', new URL(url).host]
    if (body !== null && !has('content-length') && !has('transfer-encoding'))
      implicit.push('content-length', String(Buffer.byteLength(body)))
    const request = http.request(
      url,
      { method, headers: [...implicit, ...headers], agent: false },
      (response) => readReply(response).then(resolve, reject),
    )
    request.on('error', reject)
    request.end(body ?? undefined)
  })
}

/** The headers of a genuine delivery: JSON content type and the secret. */
export function telegramHeaders(secret: string, ...more: string[]): string[] {
  return ['content-type', 'application/json', 'x-telegram-bot-api-secret-token', secret, ...more]
}

let nextUpdateId = 1000

/** A genuine-looking message update; `message` fields override the defaults. */
export function messageUpdate(
  message: Record<string, unknown> = {},
  updateId = nextUpdateId++,
): Record<string, unknown> {
  return {
    update_id: updateId,
    message: {
      message_id: 7,
      date: 1763712000,
      chat: { id: 4242, type: 'private', first_name: 'Ann' },
      from: { id: 4242, is_bot: false, first_name: 'Ann' },
      text: 'hello',
      ...message,
    },
  }
}

export interface RawReply {
  /** Everything the server sent before closing (or before the timeout). */
  readonly text: string
  /** Whether the server closed the connection. */
  readonly closed: boolean
  /** Whether writing our bytes failed because the server stopped reading and closed. */
  readonly writeFailed: boolean
  /** Bytes we managed to hand to the socket. */
  readonly written: number
}

/**
 * Writes `head`, then each piece of `chunks` (produced lazily), on a raw socket and collects the
 * answer until the server closes or `timeoutMs` passes.
 */
export function raw(
  url: string,
  head: string,
  chunks: Iterable<string | Buffer> = [],
  timeoutMs = 5000,
): Promise<RawReply> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname)
    let text = ''
    let closed = false
    let writeFailed = false
    let written = 0
    const timer = setTimeout(() => finish(), timeoutMs)
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ text, closed, writeFailed, written })
    }
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
    })
    socket.on('error', () => {
      writeFailed = true
    })
    socket.on('close', () => {
      closed = true
      finish()
    })
    socket.on('connect', async () => {
      socket.write(head)
      for (const chunk of chunks) {
        if (socket.destroyed) break
        written += chunk.length
        if (!socket.write(chunk))
          await new Promise((resolve) => {
            const done = () => {
              clearTimeout(wait)
              resolve(undefined)
            }
            const wait = setTimeout(done, 200)
            socket.once('drain', done)
          })
      }
    })
  })
}
