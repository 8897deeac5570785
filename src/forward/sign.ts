/**
 * @module
 * Signed forwards (`upstream.sign`): every forward carries a short-lived JWT (RFC 7519) that
 * proves it came through the gateway, for this bot, with exactly this body:
 *
 *   header  {"alg":"EdDSA"|"ES256"|"HS256","typ":"JWT","kid":"<kid>"}
 *   claims  iss, aud, iat, exp (RFC 7519 section 4.1), jti = the request id,
 *           update_id, body_sha256 = base64url(SHA-256(exact body bytes)), unpadded
 *
 * The token is a standard compact JWS (RFC 7515 section 7.1), verified by any JWT library; the
 * body hash is what stops a token from being replayed with another body (docs/upstream-verification.md).
 *
 * Signing runs on the request path, so everything that can be is prepared once per config: the
 * base64url protected header, the JSON of the fixed claims, the imported key. Per request it is
 * one SHA-256 of the body, one string for the claims, one base64url and one signature with
 * node:crypto on the KeyObject: no jose SignJWT (a claims object, its validation and a WebCrypto
 * promise per token; bench/sign.mjs measures the difference). ES256 signatures are encoded as
 * R || S (RFC 7518 section 3.4), not DER, as JWS requires.
 */

import { createHash, createHmac, type KeyObject, sign } from 'node:crypto'
import type { SignConfig } from '../config/keys.js'
import type { Clock } from '../store/index.js'
import { systemClock } from '../store/index.js'

/** Header name and value pairs to add to one forward (see ForwardHeaders.extra). */
export type Signer = (body: Buffer, updateId: number, requestId: string) => readonly string[]

type SignatureFn = (input: Buffer) => string

function signatureFn(config: SignConfig): SignatureFn {
  const key: KeyObject = config.key
  switch (config.alg) {
    case 'HS256':
      return (input) => createHmac('sha256', key).update(input).digest('base64url')
    case 'EdDSA':
      // RFC 8037 section 3.1: Ed25519 signs the message itself, no pre-hash: algorithm null.
      return (input) => sign(null, input, key).toString('base64url')
    case 'ES256':
      return (input) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url')
}

export function createSigner(config: SignConfig, clock: Clock = systemClock): Signer {
  const header = base64url(JSON.stringify({ alg: config.alg, typ: 'JWT', kid: config.kid }))
  const fixed = `"iss":${JSON.stringify(config.issuer)},"aud":${JSON.stringify(config.audience)}`
  const signature = signatureFn(config)
  const name = config.header
  const scheme = config.bearer ? 'Bearer ' : ''
  const ttl = config.ttlS
  // iat and exp change once a second: their JSON is rebuilt then, not per token.
  let second = -1
  let timed = ''
  return (body, updateId, requestId) => {
    const now = Math.floor(clock() / 1000)
    if (now !== second) {
      second = now
      timed = `{${fixed},"iat":${now},"exp":${now + ttl},"jti":`
    }
    const digest = createHash('sha256').update(body).digest('base64url')
    const claims = `${timed}${JSON.stringify(requestId)},"update_id":${updateId},"body_sha256":"${digest}"}`
    const input = `${header}.${base64url(claims)}`
    return [name, `${scheme}${input}.${signature(Buffer.from(input, 'latin1'))}`]
  }
}
