import {
  createHash,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto'
import { createLocalJWKSet, decodeProtectedHeader, errors, type JWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import type { JwsAlg, SignConfig } from '../config/keys.js'
import { createSigner } from './sign.js'

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0) // a frozen clock: 1748779200 s
const BODY = Buffer.from(
  '{"update_id":77,"message":{"message_id":1,"date":1,"chat":{"id":5,"type":"private"}}}',
)
const REQUEST_ID = '0b7c1f5e-3a4d-4f8e-9b2a-6c1d2e3f4a5b'

function keyPair(alg: JwsAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
}

function config(alg: JwsAlg, key: KeyObject, overrides: Partial<SignConfig> = {}): SignConfig {
  return {
    alg,
    kid: 'k1',
    key,
    header: 'authorization',
    bearer: true,
    ttlS: 60,
    issuer: 'botgate',
    audience: 'shop',
    published: [],
    ...overrides,
  }
}

function tokenOf(pair: readonly string[]): string {
  const value = pair[1] as string
  return value.startsWith('Bearer ') ? value.slice(7) : value
}

/** The upstream's check as docs/upstream-verification.md describes it: JWT, then the body hash. */
async function verifyForward(
  token: string,
  body: Buffer,
  key: Parameters<typeof jwtVerify>[1],
  options: { audience?: string; at?: number; algorithms?: string[] } = {},
) {
  const { payload } = await jwtVerify(token, key as never, {
    issuer: 'botgate',
    audience: options.audience ?? 'shop',
    algorithms: options.algorithms ?? ['EdDSA', 'ES256', 'HS256'],
    requiredClaims: ['iat', 'exp', 'jti', 'update_id', 'body_sha256'],
    currentDate: new Date(options.at ?? NOW),
  })
  if (payload.body_sha256 !== createHash('sha256').update(body).digest('base64url'))
    throw new Error('body_sha256 does not match the body')
  return payload
}

describe('createSigner: the token', () => {
  it('EdDSA: a standard JWT with the documented header and claims, verified by jose via the JWKS', async () => {
    const { privateKey, publicKey } = keyPair('EdDSA')
    const sign = createSigner(config('EdDSA', privateKey), () => NOW)
    const pair = sign(BODY, 77, REQUEST_ID)
    expect(pair[0]).toBe('authorization')
    expect(pair[1]?.startsWith('Bearer ')).toBe(true)
    const token = tokenOf(pair)
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'k1' })
    const jwk: JWK = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'EdDSA', use: 'sig' }
    const payload = await verifyForward(token, BODY, createLocalJWKSet({ keys: [jwk] }))
    expect(payload).toEqual({
      iss: 'botgate',
      aud: 'shop',
      iat: NOW / 1000,
      exp: NOW / 1000 + 60,
      jti: REQUEST_ID,
      update_id: 77,
      // base64url of the SHA-256 of the exact bytes, unpadded (RFC 4648 section 5)
      body_sha256: createHash('sha256').update(BODY).digest('base64url'),
    })
    expect(payload.body_sha256).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('ES256: the signature is R || S (RFC 7518 section 3.4), which jose verifies', async () => {
    const { privateKey, publicKey } = keyPair('ES256')
    const token = tokenOf(createSigner(config('ES256', privateKey), () => NOW)(BODY, 77, REQUEST_ID))
    expect(Buffer.from(token.split('.')[2] as string, 'base64url').length).toBe(64)
    await expect(verifyForward(token, BODY, publicKey)).resolves.toMatchObject({ update_id: 77 })
  })

  it('HS256 in a header of the operator choosing: the bare token, verified with the shared key', async () => {
    const secret = 'a-shared-hs256-key-of-at-least-32-bytes!'
    const sign = createSigner(
      config('HS256', createSecretKey(Buffer.from(secret)), { header: 'x-botgate-token', bearer: false }),
      () => NOW,
    )
    const pair = sign(BODY, 77, REQUEST_ID)
    expect(pair[0]).toBe('x-botgate-token')
    expect(pair[1]?.split('.')).toHaveLength(3)
    await expect(
      verifyForward(pair[1] as string, BODY, new TextEncoder().encode(secret)),
    ).resolves.toMatchObject({ aud: 'shop' })
  })

  it('follows the clock: iat and exp move with each second', () => {
    let now = NOW
    const { privateKey } = keyPair('EdDSA')
    const sign = createSigner(config('EdDSA', privateKey, { ttlS: 5 }), () => now)
    const claims = () =>
      JSON.parse(
        Buffer.from(tokenOf(sign(BODY, 1, REQUEST_ID)).split('.')[1] as string, 'base64url').toString(),
      )
    expect([claims().iat, claims().exp]).toEqual([NOW / 1000, NOW / 1000 + 5])
    now += 1999
    expect([claims().iat, claims().exp]).toEqual([NOW / 1000 + 1, NOW / 1000 + 6])
  })
})

describe('createSigner: what a verifier refuses', () => {
  const { privateKey, publicKey } = keyPair('EdDSA')
  const sign = createSigner(config('EdDSA', privateKey), () => NOW)
  const token = tokenOf(sign(BODY, 77, REQUEST_ID))

  it('a token checked with another key', async () => {
    await expect(verifyForward(token, BODY, keyPair('EdDSA').publicKey)).rejects.toBeInstanceOf(
      errors.JWSSignatureVerificationFailed,
    )
  })

  it('an expired token (past exp, beyond any leeway)', async () => {
    await expect(verifyForward(token, BODY, publicKey, { at: NOW + 61_000 })).rejects.toBeInstanceOf(
      errors.JWTExpired,
    )
  })

  it('a token presented with another body: the body hash differs', async () => {
    const swapped = Buffer.from(BODY.toString().replace('"id":5', '"id":6'))
    await expect(verifyForward(token, swapped, publicKey)).rejects.toThrow(
      'body_sha256 does not match the body',
    )
  })

  it('a token meant for another bot (aud)', async () => {
    await expect(verifyForward(token, BODY, publicKey, { audience: 'news' })).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'aud',
    })
  })

  it('claims edited after signing', async () => {
    const [header, claims, signature] = token.split('.') as [string, string, string]
    const edited = Buffer.from(
      Buffer.from(claims, 'base64url').toString().replace('"update_id":77', '"update_id":78'),
    ).toString('base64url')
    await expect(verifyForward(`${header}.${edited}.${signature}`, BODY, publicKey)).rejects.toBeInstanceOf(
      errors.JWSSignatureVerificationFailed,
    )
  })

  it('an algorithm the verifier does not allow', async () => {
    await expect(verifyForward(token, BODY, publicKey, { algorithms: ['ES256'] })).rejects.toBeInstanceOf(
      errors.JOSEAlgNotAllowed,
    )
  })
})

describe('createSigner: keys', () => {
  it('signs with the private key whose public half the JWKS publishes', async () => {
    const { privateKey } = keyPair('EdDSA')
    const token = tokenOf(createSigner(config('EdDSA', privateKey), () => NOW)(BODY, 1, REQUEST_ID))
    await expect(verifyForward(token, BODY, createPublicKey(privateKey))).resolves.toBeDefined()
  })
})
