/**
 * examples/verify-jwt-node as the upstream of the real CLI: a forward signed with EdDSA is
 * verified by the example through the gateway's JWKS (signature, claims, body hash) and answered
 * with its webhook reply; the same example refuses what a verifier must refuse: no token, another
 * body, a replayed token, another bot's token, an expired one, one signed with another key.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { ROOT, RunningGateway, secret } from './helpers/gateway.js'
import { ed25519, forwardToken } from './helpers/keys.js'
import { freePort } from './helpers/upstream.js'

const SECRET = secret()
const KEY = ed25519()
let gateway: RunningGateway
let example: ChildProcess
let exampleUrl: string
let exampleErr = ''

/** Starts the example on `port` and resolves once it listens. */
function startExample(port: number, jwksUrl: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples/verify-jwt-node/server.mjs')], {
    env: { ...process.env, PORT: String(port), BOTGATE_JWKS_URL: jwksUrl, BOTGATE_AUDIENCE: 'shop' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    exampleErr += chunk
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start: ${exampleErr}`)), 10_000)
    child.stdout?.once('data', () => {
      clearTimeout(timer)
      resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`example exited with ${code}: ${exampleErr}`)))
  })
}

beforeAll(async () => {
  // The gateway needs the example's address and the example the gateway's JWKS: fix both ports.
  const [examplePort, adminPort] = [await freePort(), await freePort()]
  exampleUrl = `http://127.0.0.1:${examplePort}/webhook`
  gateway = await RunningGateway.start({
    config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:${adminPort} }
bots:
  - name: shop
    path: /tg/shop-0123456789abcdef
    secret_token: ${SECRET}
    upstream:
      url: ${exampleUrl}
      sign: { alg: EdDSA, keys: [{ kid: shop-1, private_key_file: shop.pem }] }
    policy: { sources: { allow: [any] } }
`,
    files: { 'shop.pem': KEY.privatePem },
  })
  example = await startExample(examplePort, `http://127.0.0.1:${adminPort}/.well-known/jwks.json`)
})

afterAll(async () => {
  example.kill('SIGTERM')
  expect(await gateway.stop()).toBe(0)
})

/** A token like the gateway's, with changes. */
function token(body: string, claims: Record<string, unknown> = {}, key = KEY.privateKey): Promise<string> {
  return forwardToken(body, key, claims)
}

const direct = (body: string, jwt?: string) =>
  post(exampleUrl, body, [
    'content-type',
    'application/json',
    ...(jwt ? ['authorization', `Bearer ${jwt}`] : []),
  ])

describe('the example upstream behind the real CLI', () => {
  it('verifies a signed forward and answers with its webhook reply, passed back by the gateway', async () => {
    const update = messageUpdate({ chat: { id: 777, type: 'private' } })
    const reply = await post(
      `${gateway.webhook}/tg/shop-0123456789abcdef`,
      JSON.stringify(update),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    expect(reply.json()).toEqual({
      method: 'sendMessage',
      chat_id: 777,
      text: `verified update ${update.update_id}`,
    })
    expect(await gateway.requestLine(reply.headers['x-request-id'] as string)).toMatchObject({
      reason: 'forwarded',
      upstream_status: 200,
    })
  })

  it('accepts a standard token minted elsewhere with the same key (interoperability)', async () => {
    const body = JSON.stringify(messageUpdate())
    expect((await direct(body, await token(body))).status).toBe(200)
  })

  it.each([
    ['no token', async (body: string) => direct(body), 'no token'],
    [
      'another body under a valid token',
      async (body: string) => direct(body.replace('hello', 'HELLO'), await token(body)),
      'body_sha256 does not match the body',
    ],
    [
      'a valid token replayed',
      async (body: string) => {
        const jwt = await token(body)
        expect((await direct(body, jwt)).status).toBe(200)
        return direct(body, jwt)
      },
      'token already used',
    ],
    [
      "another bot's token",
      async (body: string) => direct(body, await token(body, { aud: 'news' })),
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
    ],
    [
      'an expired token',
      async (body: string) => {
        const past = Math.floor(Date.now() / 1000) - 600
        return direct(body, await token(body, { iat: past, exp: past + 60 }))
      },
      'ERR_JWT_EXPIRED',
    ],
    [
      'a token signed with another key',
      async (body: string) => direct(body, await token(body, {}, ed25519().privateKey)),
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    ],
  ])('refuses %s with 401', async (_name, send, why) => {
    const body = JSON.stringify(messageUpdate())
    const before = exampleErr.length
    const reply = await send(body)
    expect(reply.status).toBe(401)
    for (let i = 0; i < 50 && !exampleErr.slice(before).includes(why); i++)
      await new Promise((resolve) => setTimeout(resolve, 20))
    expect(exampleErr.slice(before)).toContain(why)
  })
})
