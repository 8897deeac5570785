/**
 * An answer given before its body was read closes the connection (src/server/linger.ts). Found by
 * the fuzzer (fuzz/): such answers did not say `Connection: close`, so a keep-alive client sent its
 * next update down the closing connection, and botgate forwarded that update to the bot while its
 * answer could no longer reach the client (who then saw a socket error and would resend it).
 */

import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({ upstream: upstream.url, secret: SECRET, policy: 'sources: { allow: [any] }' }),
  })
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

function request(secretToken: string, body: string): string {
  return (
    `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `X-Telegram-Bot-Api-Secret-Token: ${secretToken}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}

describe('an answer that closes the connection', () => {
  it('says Connection: close, and a request sent after it on that connection is not forwarded', async () => {
    const socket = net.connect(Number(new URL(gateway.webhook).port), '127.0.0.1')
    let received = ''
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.on('error', () => {})
    // Refused at check 4, before its body is read: answered 401, then the connection closes.
    socket.write(request('wrong', JSON.stringify(messageUpdate())))
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1')
        if (/\r\n\r\n\{"ok":false,"error":"bad_secret"\}$/.test(received)) resolve()
      })
    })
    expect(received).toMatch(/^HTTP\/1\.1 401 /)
    expect(received.toLowerCase()).toContain('\r\nconnection: close\r\n')
    // A client that reuses the connection anyway: a genuine update, which must not be forwarded
    // now that its answer cannot be delivered.
    socket.write(request(SECRET, JSON.stringify(messageUpdate({}, 77))))
    await closed
    // A genuine update on a new connection is forwarded; the one before it never was.
    const reply = await post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(messageUpdate({}, 78)),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    expect(upstream.received.map((r) => JSON.parse(r.body.toString()).update_id)).toEqual([78])
  })
})
