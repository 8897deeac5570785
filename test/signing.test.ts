/**
 * Signed forwards through the real CLI: what the upstream receives (a JWT per forward, verified
 * here with jose against the gateway's own JWKS), both algorithms families, and key rotation by
 * reload: the JWKS changes with the config, and verifiers that cached it keep working.
 */

import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, type JWK, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { RunningGateway, secret } from './helpers/gateway.js'
import { ed25519 } from './helpers/keys.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const HS_KEY = randomBytes(32).toString('base64url')
const KEY_A = ed25519()
const KEY_B = ed25519()
let upstream: TestUpstream
let gateway: RunningGateway

function config(shopKeys: string): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
bots:
  - name: shop
    path: /tg/shop-0123456789abcdef
    secret_token: ${SECRET}
    upstream:
      url: ${upstream.url}?bot=shop
      sign:
        alg: EdDSA
        keys: ${shopKeys}
    policy: { sources: { allow: [any] } }
  - name: news
    path: /tg/news-0123456789abcdef
    secret_token: ${SECRET}
    upstream:
      url: ${upstream.url}?bot=news
      sign: { alg: HS256, header: X-Botgate-Token, ttl: 30s, keys: [{ kid: news-1, key_file: news.key }] }
    policy: { sources: { allow: [any] } }
`
}

const BOTH = '[{ kid: key-a, private_key_file: a.pem }, { kid: key-b, private_key_file: b.pem }]'

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: config(BOTH),
    files: { 'a.pem': KEY_A.privatePem, 'b.pem': KEY_B.privatePem, 'news.key': `${HS_KEY}\n` },
  })
})

afterAll(async () => {
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
})

async function forward(bot: 'shop' | 'news', update = messageUpdate()) {
  const body = JSON.stringify(update)
  const reply = await post(`${gateway.webhook}/tg/${bot}-0123456789abcdef`, body, telegramHeaders(SECRET))
  expect(reply.status).toBe(200)
  const received = upstream.received.at(-1)
  expect(received?.url).toBe(`/webhook?bot=${bot}`)
  return { reply, received: received as NonNullable<typeof received>, update }
}

async function reload(shopKeys: string, files: Record<string, string> = {}) {
  const before = gateway.lines.filter((line) => line.msg === 'config reloaded').length
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(gateway.dir, name), content)
  writeFileSync(path.join(gateway.dir, 'gateway.yaml'), config(shopKeys))
  gateway.child.kill('SIGHUP')
  // The file's change starts a reload of its own too (the folder is watched): wait for the one
  // that read this change, not a late no-change reload of the previous call.
  const reloads = () => gateway.lines.filter((line) => line.msg === 'config reloaded')
  await gateway.waitFor((line) => {
    const bots = line.bots as { changed: number; added: number; removed: number } | undefined
    return (
      line.msg === 'config reloaded' &&
      reloads().indexOf(line) >= before &&
      bots !== undefined &&
      bots.changed + bots.added + bots.removed > 0
    )
  })
}

async function jwks() {
  const response = await fetch(`${gateway.admin}/.well-known/jwks.json`)
  expect(response.headers.get('content-type')).toBe('application/jwk-set+json')
  return ((await response.json()) as { keys: Record<string, unknown>[] }).keys
}

describe('a signed forward', () => {
  it('EdDSA: Authorization: Bearer <JWT>, verified by jose through the gateway JWKS', async () => {
    const { reply, received, update } = await forward('shop')
    const authorization = received.headers.authorization as string
    expect(authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/)
    const token = authorization.slice('Bearer '.length)
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'key-a' })
    const keys = createRemoteJWKSet(new URL(`${gateway.admin}/.well-known/jwks.json`))
    const { payload } = await jwtVerify(token, keys, {
      issuer: 'botgate',
      audience: 'shop',
      algorithms: ['EdDSA'],
    })
    expect(payload).toEqual({
      iss: 'botgate',
      aud: 'shop',
      iat: expect.any(Number),
      exp: (payload.iat as number) + 60,
      jti: reply.headers['x-request-id'],
      update_id: update.update_id,
      body_sha256: createHash('sha256').update(received.body).digest('base64url'),
    })
  })

  it('HS256 in the header the operator named: the bare token, no Authorization', async () => {
    const { received } = await forward('news')
    expect(received.headers.authorization).toBeUndefined()
    const token = received.headers['x-botgate-token'] as string
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(HS_KEY), {
      audience: 'news',
      algorithms: ['HS256'],
    })
    expect(protectedHeader.kid).toBe('news-1')
    expect((payload.exp as number) - (payload.iat as number)).toBe(30)
    expect(payload.body_sha256).toBe(createHash('sha256').update(received.body).digest('base64url'))
  })

  it('the token names this bot: another bot’s upstream refuses it (aud)', async () => {
    const { received } = await forward('shop')
    const token = (received.headers.authorization as string).slice(7)
    const keys = createRemoteJWKSet(new URL(`${gateway.admin}/.well-known/jwks.json`))
    await expect(jwtVerify(token, keys, { audience: 'news' })).rejects.toMatchObject({ claim: 'aud' })
  })

  it('the JWKS publishes every public key, never a private member; the admin API is off (404)', async () => {
    const keys = await jwks()
    expect(keys.map((key) => [key.kid, key.kty, key.crv, key.alg, key.use])).toEqual([
      ['key-a', 'OKP', 'Ed25519', 'EdDSA', 'sig'],
      ['key-b', 'OKP', 'Ed25519', 'EdDSA', 'sig'],
    ])
    expect(keys.some((key) => 'd' in key)).toBe(false)
    const api = await fetch(`${gateway.admin}/api/v1/blocks`)
    expect([api.status, await api.json()]).toEqual([404, { ok: false, error: 'unknown_route' }])
  })
})

describe('key rotation by reload', () => {
  it('publish b, sign with b, retire a: a verifier holding the JWKS of before follows, no refetch', async () => {
    // The JWKS as fetched once before the rotation, never refreshed.
    const keys = createLocalJWKSet({ keys: (await jwks()) as JWK[] })
    const verify = async () => {
      const token = ((await forward('shop')).received.headers.authorization as string).slice(7)
      await jwtVerify(token, keys, { audience: 'shop' })
      return decodeProtectedHeader(token).kid
    }
    expect(await verify()).toBe('key-a') // caches a and b
    await reload('[{ kid: key-b, private_key_file: b.pem }, { kid: key-a, private_key_file: a.pem }]')
    expect(await verify()).toBe('key-b')
    await reload('[{ kid: key-b, private_key_file: b.pem }]')
    expect(await verify()).toBe('key-b')
    expect((await jwks()).map((key) => key.kid)).toEqual(['key-b'])
  })

  it('a new key in the same file takes effect with the reload', async () => {
    const fresh = ed25519()
    await reload('[{ kid: key-c, private_key_file: b.pem }]', { 'b.pem': fresh.privatePem })
    const token = ((await forward('shop')).received.headers.authorization as string).slice(7)
    await expect(jwtVerify(token, fresh.publicKey, { audience: 'shop' })).resolves.toBeDefined()
    await expect(jwtVerify(token, KEY_B.publicKey, { audience: 'shop' })).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    })
  })
})
