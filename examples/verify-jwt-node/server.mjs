// A bot's webhook endpoint behind botgate that accepts only forwards botgate signed
// (upstream.sign), for this bot, with exactly the body it received. See README.md next to this
// file and docs/upstream-verification.md.
//
//   BOTGATE_JWKS_URL=http://127.0.0.1:9090/.well-known/jwks.json BOTGATE_AUDIENCE=shop node server.mjs
//   BOTGATE_HS256_KEY=... BOTGATE_AUDIENCE=shop node server.mjs
import { createHash } from 'node:crypto'
import http from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'

const env = process.env
const port = Number(env.PORT ?? 8081)
const host = env.HOST ?? '127.0.0.1'
const audience = env.BOTGATE_AUDIENCE // the bot's name in botgate's config (or its sign.audience)
const issuer = env.BOTGATE_ISSUER ?? 'botgate'
const header = (env.BOTGATE_TOKEN_HEADER ?? 'authorization').toLowerCase()
if (!audience) throw new Error('set BOTGATE_AUDIENCE to the bot name')

// EdDSA / ES256: botgate's public keys, fetched from its admin listener and cached by jose; an
// unknown kid (a rotated key) triggers a refetch. HS256: the key shared with botgate.
const [key, algorithms] = env.BOTGATE_JWKS_URL
  ? [createRemoteJWKSet(new URL(env.BOTGATE_JWKS_URL)), ['EdDSA', 'ES256']]
  : [new TextEncoder().encode(env.BOTGATE_HS256_KEY ?? ''), ['HS256']]
if (!env.BOTGATE_JWKS_URL && !env.BOTGATE_HS256_KEY)
  throw new Error('set BOTGATE_JWKS_URL (EdDSA, ES256) or BOTGATE_HS256_KEY (HS256)')

// jti (the request id) of tokens already used, until they expire: a token is good for one request.
const seen = new Map()
function firstUse(jti, exp) {
  const now = Date.now() / 1000
  for (const [id, until] of seen) if (until < now) seen.delete(id)
  if (seen.has(jti)) return false
  seen.set(jti, exp)
  return true
}

/** Verifies the token and the body; returns the update, or throws saying why. */
async function verify(request, body) {
  const value = request.headers[header]
  const token = header === 'authorization' ? /^Bearer (\S+)$/.exec(value ?? '')?.[1] : value
  if (!token) throw new Error('no token')
  const { payload } = await jwtVerify(token, key, {
    issuer,
    audience,
    algorithms,
    requiredClaims: ['iat', 'exp', 'jti', 'update_id', 'body_sha256'],
    clockTolerance: 5, // seconds of clock skew between botgate and this host
  })
  // The signature covers the claims, the claims cover the body: hash the exact bytes received.
  const digest = createHash('sha256').update(body).digest('base64url')
  if (payload.body_sha256 !== digest) throw new Error('body_sha256 does not match the body')
  const update = JSON.parse(body.toString('utf8'))
  if (update.update_id !== payload.update_id) throw new Error('update_id does not match the body')
  if (!firstUse(payload.jti, payload.exp)) throw new Error('token already used')
  return update
}

const server = http.createServer((request, response) => {
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', async () => {
    let update
    try {
      update = await verify(request, Buffer.concat(chunks))
    } catch (error) {
      console.error(`refused: ${error.code ?? ''} ${error.message}`.trim())
      response.writeHead(401, { 'content-type': 'application/json' })
      response.end('{"ok":false}')
      return
    }
    // The bot's own work goes here. This one answers with a webhook reply (a Bot API call).
    const chat = update.message?.chat?.id
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(
      chat === undefined
        ? ''
        : JSON.stringify({
            method: 'sendMessage',
            chat_id: chat,
            text: `verified update ${update.update_id}`,
          }),
    )
  })
})

server.listen(port, host, () => console.log(`listening on ${host}:${server.address().port}`))
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)))
