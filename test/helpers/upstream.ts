/**
 * A real HTTP upstream for integration tests: records every request it receives (headers and
 * exact body bytes) and answers as the test tells it to.
 */

import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
  /** The gateway's side of the connection: equal ports mean a reused connection. */
  readonly remotePort: number | undefined
}

export type Responder = (request: Received, response: http.ServerResponse) => unknown

/** Answers 200 with a sendMessage webhook reply, like a typical bot. */
export const replyOk: Responder = (_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' })
  response.end(JSON.stringify({ method: 'sendMessage', chat_id: 1, text: 'ok' }))
}

export class TestUpstream {
  readonly received: Received[] = []
  respond: Responder = replyOk
  readonly #server: http.Server
  readonly #sockets = new Set<import('node:net').Socket>()

  private constructor() {
    this.#server = http.createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const received: Received = {
          method: request.method ?? '',
          url: request.url ?? '',
          headers: request.headers,
          rawHeaders: request.rawHeaders,
          body: Buffer.concat(chunks),
          remotePort: request.socket.remotePort,
        }
        this.received.push(received)
        void this.respond(received, response)
      })
    })
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start(): Promise<TestUpstream> {
    const upstream = new TestUpstream()
    await new Promise<void>((resolve) => upstream.#server.listen(0, '127.0.0.1', () => resolve()))
    return upstream
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/webhook`
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
