/**
 * @module
 * Keys in the config: those that sign forwards (`bots[].upstream.sign`, RFC 7519 JWTs) and those
 * that admin tokens are verified with (`admin.api.keys`). Each key is read and parsed once per
 * load, and everything that can be checked is: the key type and curve against the algorithm, the
 * HS256 key length, unique kids, a header the gateway does not already set.
 *
 * Keys are parsed with node:crypto's synchronous `createPrivateKey` / `createPublicKey` /
 * `createSecretKey` rather than jose's `importPKCS8` / `importSPKI`, which return promises: the
 * loader is synchronous so that a reload builds the whole config before it swaps. The result is a
 * `KeyObject`, which node:crypto signs with directly and jose accepts as key input (jose docs,
 * "KeyInput": CryptoKey | KeyObject | JWK | Uint8Array). Key material never appears in a message.
 */

import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import type { RawAdminApi, RawSign } from './schema.js'
import type { Segment, YamlSource } from './source.js'
import { parseDuration } from './units.js'

export type JwsAlg = 'HS256' | 'EdDSA' | 'ES256'

/** What the key checks need of the loader: where to report, and how to read `<key>` / `<key>_file`. */
export interface KeyReader {
  readonly source: YamlSource
  secret(
    raw: Record<string, unknown>,
    at: readonly Segment[],
    key: string,
    required: string | undefined,
  ): string | undefined
}

/** `upstream.sign`, resolved: everything the signer precomputes from. */
export interface SignConfig {
  readonly alg: JwsAlg
  /** The signing key's kid, sent in every token's header. */
  readonly kid: string
  /** HS256: the shared secret; EdDSA / ES256: the private key. */
  readonly key: KeyObject
  /** Lower-case header name. */
  readonly header: string
  /** `Authorization: Bearer <token>` (RFC 6750 section 2.1) rather than the bare token. */
  readonly bearer: boolean
  readonly ttlS: number
  readonly issuer: string
  readonly audience: string
  /** Public keys to serve in the JWKS (EdDSA / ES256), the signing key first; empty for HS256. */
  readonly published: readonly PublishedKey[]
}

export interface PublishedKey {
  readonly jwk: JWK
  /** Where the key is configured, for messages about kid clashes across bots. */
  readonly at: readonly Segment[]
}

export interface AdminKey {
  readonly kid: string
  readonly alg: JwsAlg
  /** HS256: the shared secret; EdDSA / ES256: the issuer's public key. */
  readonly key: KeyObject
}

/** `admin.api`, resolved. */
export interface AdminApiConfig {
  readonly keys: ReadonlyMap<string, AdminKey>
  readonly audience: string
  readonly issuer: string | undefined
  readonly maxTokenAgeS: number
}

/** RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output, 256 bits. */
export const MIN_HMAC_KEY_BYTES = 32

const MAX_SIGN_TTL_MS = 3_600_000

/** Headers the gateway sets on every forward, or that frame the request: a token cannot take them. */
const GATEWAY_HEADERS = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-request-id',
  'x-telegram-bot-api-secret-token',
])

/** The path of `<key>_file` when that is how the value came, else of `<key>`. */
function where(raw: Record<string, unknown>, at: readonly Segment[], key: string): Segment[] {
  return [...at, raw[`${key}_file`] === undefined ? key : `${key}_file`]
}

function has(raw: Record<string, unknown>, key: string): boolean {
  return raw[key] !== undefined || raw[`${key}_file`] !== undefined
}

function describeKey(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return `an EC ${key.asymmetricKeyDetails?.namedCurve} key`
    case 'ed25519':
      return 'an Ed25519 key'
    case 'ed448':
      return 'an Ed448 key'
    case 'rsa':
    case 'rsa-pss':
      return 'an RSA key'
    default:
      return `a ${key.asymmetricKeyType} key`
  }
}

/** RFC 8037 section 3.1 (EdDSA with Ed25519) and RFC 7518 section 3.4 (ES256 is ECDSA on P-256). */
function typeProblem(key: KeyObject, alg: JwsAlg): string | undefined {
  if (alg === 'EdDSA' && key.asymmetricKeyType !== 'ed25519')
    return `is ${describeKey(key)}; EdDSA needs an Ed25519 key`
  if (
    alg === 'ES256' &&
    (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
  )
    return `is ${describeKey(key)}; ES256 needs a P-256 (prime256v1) EC key`
  return undefined
}

function parseAsymmetric(pem: string, alg: JwsAlg, kind: 'private' | 'public'): KeyObject | string {
  // createPublicKey also accepts a private key (and derives the public one): refuse it here, a
  // private key has no business in a verifier's config.
  if (kind === 'public' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem))
    return 'is a private key: give only the public key here (openssl pkey -pubout)'
  let key: KeyObject
  try {
    key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem)
  } catch {
    return kind === 'private'
      ? 'is not a PEM private key (PKCS#8, e.g. from openssl genpkey -algorithm ed25519)'
      : 'is not a PEM public key (SPKI, e.g. from openssl pkey -pubout)'
  }
  return typeProblem(key, alg) ?? key
}

function parseSecret(value: string): KeyObject | string {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length < MIN_HMAC_KEY_BYTES)
    return `is too short for HS256: ${bytes.length} bytes, at least ${MIN_HMAC_KEY_BYTES} required (RFC 7518 section 3.2)`
  return createSecretKey(bytes)
}

/** The public JWK of an asymmetric key (RFC 7517 section 4; RFC 8037 section 2 for OKP). */
function publicJwk(key: KeyObject, kid: string, alg: JwsAlg): JWK {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  // A public KeyObject exports only its public members: kty, crv, x (and y for EC).
  return { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' }
}

function uniqueKids(
  reader: KeyReader,
  keys: readonly { kid: string }[],
  at: readonly Segment[],
): Set<number> {
  const seen = new Map<string, number>()
  const duplicates = new Set<number>()
  keys.forEach((key, index) => {
    const first = seen.get(key.kid)
    if (first === undefined) seen.set(key.kid, index)
    else {
      reader.source.issue([...at, index, 'kid'], `duplicates keys[${first}].kid: each key needs its own kid`)
      duplicates.add(index)
    }
  })
  return duplicates
}

/**
 * Reads one key of a set. HS256 takes `key`; EdDSA and ES256 take `private_key` (which signs) or
 * `public_key` (verify or publish only), as `allowed` says.
 */
function readKey(
  reader: KeyReader,
  raw: Record<string, unknown>,
  at: readonly Segment[],
  alg: JwsAlg,
  allowed: readonly ('private_key' | 'public_key')[],
): KeyObject | undefined {
  const issue = (key: string, message: string) => reader.source.issue(where(raw, at, key), message)
  const asymmetric = ['private_key', 'public_key'] as const
  if (alg === 'HS256') {
    const wrong = asymmetric.filter((key) => has(raw, key))
    for (const key of wrong) issue(key, 'is for EdDSA and ES256; HS256 uses key (or key_file)')
    if (wrong.length > 0) return undefined
    const value = reader.secret(raw, at, 'key', 'for HS256 (or give key_file)')
    if (value === undefined) return undefined
    const parsed = parseSecret(value)
    if (typeof parsed === 'string') issue('key', parsed)
    return typeof parsed === 'string' ? undefined : parsed
  }
  const uses = allowed.map((key) => `${key} (or ${key}_file)`).join(' or ')
  const given = allowed.filter((key) => has(raw, key))
  if (has(raw, 'key')) {
    issue('key', `is for HS256; ${alg} uses ${uses}`)
    if (given.length === 0) return undefined
  }
  if (given.length > 1) {
    issue(given[1] as string, `give either ${given.join(' or ')}, not both`)
    return undefined
  }
  const kind = given[0] ?? (allowed[0] as 'private_key' | 'public_key')
  const pem = reader.secret(raw, at, kind, `for ${alg}: ${uses}`)
  if (pem === undefined) return undefined
  const parsed = parseAsymmetric(pem, alg, kind === 'private_key' ? 'private' : 'public')
  if (typeof parsed === 'string') issue(kind, parsed)
  return typeof parsed === 'string' ? undefined : parsed
}

/** `bots[i].upstream.sign`; undefined when absent or wrong (problems are recorded on the source). */
export function resolveSign(
  reader: KeyReader,
  raw: RawSign,
  at: readonly Segment[],
  bot: { readonly name: string; readonly urlHasCredentials: boolean },
): SignConfig | undefined {
  const issues = reader.source.issues.length
  const ttlMs = parseDuration(raw.ttl)
  if (ttlMs < 1000 || ttlMs > MAX_SIGN_TTL_MS)
    reader.source.issue(
      [...at, 'ttl'],
      'must be between 1s and 1h: forward tokens are meant to be short-lived',
    )
  const header = raw.header.toLowerCase()
  if (GATEWAY_HEADERS.has(header))
    reader.source.issue(
      [...at, 'header'],
      'is a header the gateway sets itself: name another one, e.g. x-botgate-token',
    )
  if (header === 'authorization' && bot.urlHasCredentials)
    reader.source.issue(
      [...at, 'header'],
      'authorization already carries the credentials of upstream.url (Basic): name another header, e.g. x-botgate-token',
    )
  const keysAt = [...at, 'keys']
  if (raw.alg === 'HS256' && raw.keys.length > 1)
    reader.source.issue(
      [...keysAt, 1],
      'HS256 keys are never published: list only the signing key (while rotating, the upstream accepts both kids)',
    )
  const duplicates = uniqueKids(reader, raw.keys, keysAt)
  const published: PublishedKey[] = []
  let signing: KeyObject | undefined
  raw.keys.forEach((entry, index) => {
    const keyAt = [...keysAt, index]
    const rawKey = entry as Record<string, unknown>
    if (index === 0 && raw.alg !== 'HS256' && has(rawKey, 'public_key') && !has(rawKey, 'private_key')) {
      reader.source.issue(
        where(rawKey, keyAt, 'public_key'),
        'the first key signs: give its private_key (public_key is for older keys still published)',
      )
      return
    }
    const allowed = index === 0 ? (['private_key'] as const) : (['private_key', 'public_key'] as const)
    const key = readKey(reader, rawKey, keyAt, raw.alg, allowed)
    if (key === undefined) return
    if (index === 0) signing = key
    if (raw.alg !== 'HS256' && !duplicates.has(index))
      published.push({ jwk: publicJwk(key, entry.kid, raw.alg), at: keyAt })
  })
  const first = raw.keys[0]
  if (signing === undefined || first === undefined || reader.source.issues.length > issues) return undefined
  return {
    alg: raw.alg,
    kid: first.kid,
    key: signing,
    header,
    bearer: header === 'authorization',
    ttlS: Math.floor(ttlMs / 1000),
    issuer: raw.issuer,
    audience: raw.audience ?? bot.name,
    published,
  }
}

/**
 * The gateway's JWKS (RFC 7517 section 5): every bot's published keys. A kid names one key across
 * the whole set, so two bots may share a key under one kid but not give one kid two keys.
 */
export function collectJwks(reader: KeyReader, signs: readonly (SignConfig | undefined)[]): JWK[] {
  const byKid = new Map<string, PublishedKey>()
  const keys: JWK[] = []
  for (const sign of signs) {
    for (const published of sign?.published ?? []) {
      const kid = published.jwk.kid as string
      const first = byKid.get(kid)
      if (first === undefined) {
        byKid.set(kid, published)
        keys.push(published.jwk)
      } else if (first.jwk.x !== published.jwk.x || first.jwk.y !== published.jwk.y) {
        const bot = first.at.slice(0, 2)
        reader.source.issue(
          [...published.at, 'kid'],
          `kid ${kid} is already published by ${bot[0]}[${bot[1]}] for another key: a kid names one key in the JWKS`,
        )
      }
    }
  }
  return keys
}

/** `admin.api`; undefined when absent or wrong (problems are recorded on the source). */
export function resolveAdminApi(
  reader: KeyReader,
  raw: RawAdminApi,
  at: readonly Segment[],
): AdminApiConfig | undefined {
  const issues = reader.source.issues.length
  const keysAt = [...at, 'keys']
  const duplicates = uniqueKids(reader, raw.keys, keysAt)
  const keys = new Map<string, AdminKey>()
  raw.keys.forEach((entry, index) => {
    const key = readKey(reader, entry as Record<string, unknown>, [...keysAt, index], entry.alg, [
      'public_key',
    ])
    if (key !== undefined && !duplicates.has(index))
      keys.set(entry.kid, { kid: entry.kid, alg: entry.alg, key })
  })
  const maxTokenAgeMs = parseDuration(raw.max_token_age)
  if (maxTokenAgeMs < 1000) reader.source.issue([...at, 'max_token_age'], 'must be at least 1s')
  if (reader.source.issues.length > issues) return undefined
  return {
    keys,
    audience: raw.audience,
    issuer: raw.issuer,
    maxTokenAgeS: Math.floor(maxTokenAgeMs / 1000),
  }
}
