import { createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import { beforeEach, describe, expect, it } from 'vitest'
import { Blocks } from '../blocks/index.js'
import type { AdminApiConfig, AdminKey } from '../config/keys.js'
import { buildAdminApp } from '../observe/admin.js'
import { createLogger } from '../observe/logger.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { MemoryStore } from '../store/memory.js'
import { createAuthenticator } from './auth.js'
import { type AdminState, mountAdminApi } from './index.js'

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0)
const SECONDS = NOW / 1000
const HS_SECRET = Buffer.from('an-admin-hs256-key-of-at-least-32-bytes')
const ed = generateKeyPairSync('ed25519')
const other = generateKeyPairSync('ed25519')

const KEYS: AdminKey[] = [
  { kid: 'ops', alg: 'HS256', key: createSecretKey(HS_SECRET) },
  { kid: 'ci', alg: 'EdDSA', key: ed.publicKey },
]
const API: AdminApiConfig = {
  keys: new Map(KEYS.map((key) => [key.kid, key])),
  audience: 'botgate-admin',
  issuer: 'ops-tool',
  maxTokenAgeS: 900,
}
const JWKS = '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"shop-1","alg":"EdDSA","use":"sig"}]}'

interface Mint {
  readonly alg?: string
  readonly kid?: string | undefined
  readonly key?: Uint8Array | KeyObject
  readonly claims?: Record<string, unknown>
  readonly iat?: number
  readonly exp?: number | undefined
}

/** A token as an operator's tool would mint it; every part can be changed to make it wrong. */
function mint(options: Mint = {}): Promise<string> {
  const header: { alg: string; kid?: string } = { alg: options.alg ?? 'HS256' }
  const kid = 'kid' in options ? options.kid : 'ops'
  if (kid !== undefined) header.kid = kid
  const exp = 'exp' in options ? options.exp : SECONDS + 300
  const claims: Record<string, unknown> = {
    iss: 'ops-tool',
    aud: 'botgate-admin',
    sub: 'alice',
    jti: 't-1',
    iat: options.iat ?? SECONDS - 10,
    scope: 'blocks:read blocks:write',
    ...(exp === undefined ? {} : { exp }),
    ...options.claims,
  }
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
  return new SignJWT(claims).setProtectedHeader(header).sign(options.key ?? HS_SECRET)
}

let lines: Record<string, unknown>[]
let raw: string[]
let blocks: Blocks
let state: AdminState

function app() {
  const logger = createLogger('info', {
    write(line: string) {
      raw.push(line)
      lines.push(JSON.parse(line))
    },
  })
  return buildAdminApp({
    metrics: new GatewayMetrics('test'),
    readiness: () => ({ ready: true, checks: {} }),
    extend: (hono) => mountAdminApi(hono, { state: () => state, blocks, logger }),
  })
}

async function call(method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await app().request(path, {
    method,
    headers,
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
  })
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as Record<string, unknown>,
  }
}

beforeEach(() => {
  lines = []
  raw = []
  blocks = new Blocks(new MemoryStore({ clock: () => NOW }), { clock: () => NOW })
  state = { auth: createAuthenticator(API, () => NOW), jwks: JWKS, bots: new Set(['shop']) }
})

describe('the JWKS', () => {
  it('is public, a JWK Set, with a cache lifetime', async () => {
    const response = await app().request('/.well-known/jwks.json')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/jwk-set+json')
    expect(response.headers.get('cache-control')).toBe('public, max-age=300')
    expect(await response.text()).toBe(JWKS)
  })
})

describe('the admin API without admin.api: it does not exist', () => {
  it.each([
    ['GET', '/api/v1/blocks'],
    ['PUT', '/api/v1/blocks/shop/chat/1'],
    ['DELETE', '/api/v1/blocks/shop/chat/1'],
  ])('%s %s answers 404 unknown_route, token or not', async (method, path) => {
    state = { ...state, auth: undefined }
    const token = await mint()
    for (const given of [undefined, token]) {
      const reply = await call(method, path, given, method === 'PUT' ? { duration: '1h' } : undefined)
      expect([reply.status, reply.json]).toEqual([404, { ok: false, error: 'unknown_route' }])
    }
  })
})

describe('admin API authentication', () => {
  const refused = async (token: string | undefined, status = 401) => {
    const reply = await call('GET', '/api/v1/blocks', token)
    expect([reply.status, reply.json]).toEqual([
      status,
      { ok: false, error: status === 401 ? 'unauthorized' : 'forbidden' },
    ])
    return reply.headers.get('www-authenticate')
  }

  it('without a token: 401 and the bare challenge (RFC 6750 section 3.1)', async () => {
    expect(await refused(undefined)).toBe('Bearer realm="botgate"')
    expect(lines.at(-1)).toMatchObject({ msg: 'admin request refused', problem: 'no token' })
  })

  it('another scheme than Bearer: 401 invalid_token', async () => {
    const reply = await app().request('/api/v1/blocks', { headers: { authorization: 'Basic YTpi' } })
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="botgate", error="invalid_token"')
  })

  it('a forged token: the right kid, signed with another key', async () => {
    const forged = await mint({ key: Buffer.from('not-the-admin-key-but-long-enough-anyway') })
    expect(await refused(forged)).toBe('Bearer realm="botgate", error="invalid_token"')
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })
  })

  it('a forged EdDSA token, and one naming an unknown kid or none', async () => {
    await refused(await mint({ alg: 'EdDSA', kid: 'ci', key: other.privateKey }))
    await refused(await mint({ kid: 'nobody' }))
    await refused(await mint({ kid: undefined }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWKS_NO_MATCHING_KEY' })
  })

  it('a token whose alg is not its key’s (no algorithm confusion)', async () => {
    // HS256 under the kid of the EdDSA key, keyed with the public key's bytes.
    const publicBytes = ed.publicKey.export({ format: 'der', type: 'spki' })
    await refused(await mint({ kid: 'ci', key: publicBytes }))
    await refused(
      `${Buffer.from('{"alg":"none","kid":"ops"}').toString('base64url')}.${Buffer.from(
        JSON.stringify({
          aud: 'botgate-admin',
          iss: 'ops-tool',
          exp: SECONDS + 60,
          iat: SECONDS,
          scope: 'blocks:read',
        }),
      ).toString('base64url')}.`,
    )
  })

  it('an expired token', async () => {
    await refused(await mint({ exp: SECONDS - 60 }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWT_EXPIRED (exp)' })
  })

  it('a token issued longer ago than max_token_age, however far its exp', async () => {
    await refused(await mint({ iat: SECONDS - 3600, exp: SECONDS + 86_400 }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWT_EXPIRED (iat)' })
  })

  it('tokens without the right claims: no exp, another audience, another issuer', async () => {
    await refused(await mint({ exp: undefined }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWT_CLAIM_VALIDATION_FAILED (exp)' })
    await refused(await mint({ claims: { aud: 'someone-else' } }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWT_CLAIM_VALIDATION_FAILED (aud)' })
    await refused(await mint({ claims: { iss: 'intruder' } }))
    expect(lines.at(-1)).toMatchObject({ problem: 'ERR_JWT_CLAIM_VALIDATION_FAILED (iss)' })
  })

  it('a valid token without the scope of the route: 403 insufficient_scope', async () => {
    expect(await refused(await mint({ claims: { scope: 'blocks:write' } }), 403)).toBe(
      'Bearer realm="botgate", error="insufficient_scope", scope="blocks:read"',
    )
    await refused(await mint({ claims: { scope: undefined } }), 403)
    const reply = await call(
      'PUT',
      '/api/v1/blocks/shop/chat/1',
      await mint({ claims: { scope: 'blocks:read' } }),
      { duration: '1h' },
    )
    expect(reply.status).toBe(403)
    expect(await blocks.list()).toEqual([])
  })

  it('never logs the token', async () => {
    const token = await mint({ exp: SECONDS - 60 })
    await refused(token)
    const signature = token.split('.')[2] as string
    expect(raw.join('').includes(signature)).toBe(false)
  })
})

describe('admin API blocks', () => {
  it('block, list, unblock: shapes, the audit lines, and the blocks themselves', async () => {
    const token = await mint()
    const put = await call('PUT', '/api/v1/blocks/shop/chat/-100123', token, {
      duration: '2h',
      note: 'spam wave',
    })
    const block = {
      bot: 'shop',
      kind: 'chat',
      id: -100123,
      until: new Date(NOW + 7_200_000).toISOString(),
      expires_in: 7200,
      note: 'spam wave',
      by: 'alice',
    }
    expect([put.status, put.json]).toEqual([200, { ok: true, block }])
    expect(put.headers.get('cache-control')).toBe('no-store')
    expect(lines.at(-1)).toMatchObject({
      msg: 'block set',
      admin: 'block',
      bot: 'shop',
      kind: 'chat',
      id: -100123,
      sub: 'alice',
      jti: 't-1',
    })
    expect(blocks.forBot('shop').match(-100123, undefined)).toBe('chat')

    const ciToken = await mint({ alg: 'EdDSA', kid: 'ci', key: ed.privateKey })
    await call('PUT', '/api/v1/blocks/shop/user/42', ciToken, { duration: '30m' })
    const list = await call('GET', '/api/v1/blocks', token)
    expect(list.json).toEqual({
      ok: true,
      blocks: [
        block,
        {
          bot: 'shop',
          kind: 'user',
          id: 42,
          until: new Date(NOW + 1_800_000).toISOString(),
          expires_in: 1800,
          by: 'alice',
        },
      ],
    })
    expect((await call('GET', '/api/v1/blocks?bot=news', token)).json).toEqual({ ok: true, blocks: [] })

    const removed = await call('DELETE', '/api/v1/blocks/shop/chat/-100123', token)
    expect([removed.status, removed.json]).toEqual([200, { ok: true, removed: true }])
    expect(lines.at(-1)).toMatchObject({ msg: 'block lifted', admin: 'unblock', id: -100123, removed: true })
    expect(blocks.forBot('shop').match(-100123, undefined)).toBeUndefined()
    expect((await call('DELETE', '/api/v1/blocks/shop/chat/-100123', token)).json).toEqual({
      ok: true,
      removed: false,
    })
  })

  it.each([
    ['/api/v1/blocks/shop/group/1', { duration: '1h' }, 'kind must be chat or user'],
    ['/api/v1/blocks/shop/chat/1.5', { duration: '1h' }, 'id must be an integer chat or user id'],
    [
      '/api/v1/blocks/shop/chat/99999999999999999',
      { duration: '1h' },
      'id must be an integer chat or user id',
    ],
    [
      '/api/v1/blocks/shop/chat/1',
      { duration: '1 hour' },
      'duration must be a duration like 30m, 12h or 7d, from 1s to 365d',
    ],
    [
      '/api/v1/blocks/shop/chat/1',
      { duration: '366d' },
      'duration must be a duration like 30m, 12h or 7d, from 1s to 365d',
    ],
    ['/api/v1/blocks/shop/chat/1', {}, 'duration must be a duration like 30m, 12h or 7d, from 1s to 365d'],
    [
      '/api/v1/blocks/shop/chat/1',
      { duration: '1h', reason: 'x' },
      'unknown field "reason"; known: duration, note',
    ],
    [
      '/api/v1/blocks/shop/chat/1',
      { duration: '1h', note: 'x'.repeat(201) },
      'note must be a string of at most 200 characters',
    ],
    ['/api/v1/blocks/shop/chat/1', '[1]', 'the body must be a JSON object: {"duration":"2h","note":"..."}'],
    ['/api/v1/blocks/shop/chat/1', 'nope', 'the body must be a JSON object: {"duration":"2h","note":"..."}'],
  ])('PUT %s %j: 400 %s', async (path, body, detail) => {
    const reply = await call('PUT', path, await mint(), body)
    expect([reply.status, reply.json]).toEqual([400, { ok: false, error: 'invalid_request', detail }])
  })

  it('a bot that is not configured: 404 unknown_bot; lifting its blocks still works', async () => {
    const token = await mint()
    const reply = await call('PUT', '/api/v1/blocks/ghost/chat/1', token, { duration: '1h' })
    expect([reply.status, reply.json]).toEqual([404, { ok: false, error: 'unknown_bot' }])
    await blocks.block('ghost', 'chat', 1, 60_000)
    expect((await call('DELETE', '/api/v1/blocks/ghost/chat/1', token)).json).toEqual({
      ok: true,
      removed: true,
    })
  })

  it('a body over 4 KiB: 413', async () => {
    const reply = await call('PUT', '/api/v1/blocks/shop/chat/1', await mint(), {
      duration: '1h',
      note: 'x'.repeat(5000),
    })
    expect(reply.status).toBe(413)
  })

  it('past the most blocks per bot: 409 too_many_blocks', async () => {
    blocks = new Blocks(new MemoryStore({ clock: () => NOW }), { clock: () => NOW, maxPerBot: 1 })
    const token = await mint()
    expect((await call('PUT', '/api/v1/blocks/shop/chat/1', token, { duration: '1h' })).status).toBe(200)
    const reply = await call('PUT', '/api/v1/blocks/shop/chat/2', token, { duration: '1h' })
    expect([reply.status, reply.json]).toEqual([409, { ok: false, error: 'too_many_blocks' }])
  })
})
