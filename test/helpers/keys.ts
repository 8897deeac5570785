/**
 * Keys and tokens for tests of signed forwards and the admin API: fresh key pairs as PEM files,
 * and admin tokens minted with jose the way an operator's tool would.
 */

import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'

export interface PemPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** PKCS#8 PEM, for `private_key_file`. */
  readonly privatePem: string
  /** SPKI PEM, for `public_key_file`. */
  readonly publicPem: string
}

export function ed25519(): PemPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  }
}

/**
 * A forward token as botgate signs one for bot `shop` (kid `shop-1`), minted here with jose for
 * `body`: HS256 with a string key, EdDSA with a private key; `claims` change or add claims.
 */
export function forwardToken(
  body: string,
  key: string | KeyObject,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    iss: 'botgate',
    aud: 'shop',
    iat: now,
    exp: now + 60,
    jti: `test-${Math.random()}`,
    update_id: (JSON.parse(body) as { update_id: number }).update_id,
    body_sha256: createHash('sha256').update(body).digest('base64url'),
    ...claims,
  })
    .setProtectedHeader({ alg: typeof key === 'string' ? 'HS256' : 'EdDSA', typ: 'JWT', kid: 'shop-1' })
    .sign(typeof key === 'string' ? new TextEncoder().encode(key) : key)
}

/** An admin token: HS256 under kid `ops` for audience `botgate-admin` by default; claims override. */
export function adminToken(
  key: string | KeyObject,
  claims: Record<string, unknown> = {},
  header: { alg?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: Record<string, unknown> = {
    aud: 'botgate-admin',
    sub: 'test-operator',
    iat: now,
    exp: now + 300,
    scope: 'blocks:read blocks:write',
    ...claims,
  }
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name]
  return new SignJWT(payload)
    .setProtectedHeader({ alg: header.alg ?? 'HS256', kid: header.kid ?? 'ops' })
    .sign(typeof key === 'string' ? new TextEncoder().encode(key) : key)
}
