/**
 * @module
 * The demo's bot: a tiny webhook upstream that checks the gateway's upstream secret and answers
 * each message with a `sendMessage` webhook reply echoing it, as a real bot behind botgate would.
 */

import { timingSafeEqual } from 'node:crypto'
import http from 'node:http'

export interface DemoBot {
  readonly server: http.Server
  close(): Promise<void>
}

function sameSecret(expected: string, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string') return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Starts the echo bot on host:port; `secret` is the X-Telegram-Bot-Api-Secret-Token it requires. */
export function startDemoBot(host: string, port: number, secret: string | undefined): Promise<DemoBot> {
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      if (secret !== undefined && !sameSecret(secret, request.headers['x-telegram-bot-api-secret-token'])) {
        response.writeHead(401).end()
        return
      }
      let update: { message?: { chat?: { id?: number }; text?: string } }
      try {
        update = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        response.writeHead(400).end()
        return
      }
      const message = update.message
      if (message?.chat?.id === undefined) {
        response.writeHead(200).end()
        return
      }
      const reply = {
        method: 'sendMessage',
        chat_id: message.chat.id,
        text: `echo: ${message.text ?? '(no text)'}`,
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply))
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      resolve({ server, close: () => new Promise((done) => server.close(() => done())) })
    })
  })
}
