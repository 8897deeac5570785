// An echo bot written with grammY (https://grammy.dev), behind botgate. See README.md next to this
// file.
//
// botgate checks Telegram's requests and forwards the good ones here. grammY's webhook handler
// checks botgate's upstream secret header (in constant time). Optionally, this server also checks
// botgate's signed forward (a JWT bound to the exact body) before grammY sees the update. The bot
// answers in one of two ways:
//
// - through botgate's egress (BOT_CREDENTIAL and BOT_API_ROOT): grammY calls the Bot API on
//   botgate's egress listener with a local credential in place of the token; botgate calls
//   Telegram with the token, which only botgate holds (docs/egress.md);
// - with webhook replies (BOT_TOKEN and BOT_USERNAME): the Bot API call travels back in the HTTP
//   response and Telegram executes it; grammY never sends the token anywhere.
//
//   BOT_CREDENTIAL=1:... BOT_API_ROOT=http://127.0.0.1:8082 BOTGATE_UPSTREAM_SECRET=... node bot.mjs
//   BOT_TOKEN=123:abc BOT_USERNAME=my_bot BOTGATE_UPSTREAM_SECRET=... PORT=8081 node bot.mjs
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { Bot, webhookCallback } from 'grammy'
import { createRemoteJWKSet, jwtVerify } from 'jose'

/** NAME from the environment, or the content of the file NAME_FILE names (Docker and Kubernetes secrets). */
function setting(name, fallback) {
  const file = process.env[`${name}_FILE`]
  if (file) return readFileSync(file, 'utf8').replace(/\n$/, '')
  return process.env[name] || fallback
}

const host = setting('HOST', '127.0.0.1') // behind botgate in the same pod or host: loopback only
const port = Number(setting('PORT', '8081'))
const webhookPath = setting('WEBHOOK_PATH', '/webhook')
const credential = setting('BOT_CREDENTIAL') // bots[].egress.credential in botgate's config
const apiRoot = setting('BOT_API_ROOT') // botgate's egress.listen, with the credential
const token = setting('BOT_TOKEN')
const username = setting('BOT_USERNAME')
const upstreamSecret = setting('BOTGATE_UPSTREAM_SECRET') // botgate's upstream.secret_token
const jwksUrl = setting('BOTGATE_JWKS_URL') // upstream.sign with EdDSA or ES256
const hs256Key = setting('BOTGATE_HS256_KEY') // upstream.sign with HS256
const audience = setting('BOTGATE_AUDIENCE') // the bot's name in botgate's config
const MAX_BODY = 1 << 20 // updates are a few KiB; botgate's own limit is lower still
if (credential && token) throw new Error('set BOT_CREDENTIAL or BOT_TOKEN, not both')
if (credential && !apiRoot)
  throw new Error("set BOT_API_ROOT to botgate's egress: the credential works only there")
if (!credential && (!token || !username))
  throw new Error('set BOT_CREDENTIAL and BOT_API_ROOT (the egress), or BOT_TOKEN and BOT_USERNAME')
if (!upstreamSecret && !jwksUrl && !hs256Key)
  throw new Error('set BOTGATE_UPSTREAM_SECRET and/or BOTGATE_JWKS_URL or BOTGATE_HS256_KEY')
if ((jwksUrl || hs256Key) && !audience) throw new Error('set BOTGATE_AUDIENCE to the bot name in botgate')

/** Webhook replies: who the bot is, given here, so grammY does not call getMe at startup. */
function webhookReplyBot() {
  return new Bot(token, {
    // id is the token's first part.
    botInfo: {
      id: Number(token.split(':')[0]),
      is_bot: true,
      first_name: username,
      username,
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
      can_connect_to_business: false,
      has_main_web_app: false,
    },
    client: {
      // Answer with a webhook reply instead of a call to the Bot API: grammY puts the first such
      // call of an update into the HTTP response, and botgate passes it back to Telegram.
      canUseWebhookReply: (method) => method === 'sendMessage' || method === 'answerCallbackQuery',
      ...(apiRoot ? { apiRoot } : {}),
    },
  })
}

// Through the egress, grammY learns who the bot is with getMe (through botgate, before the first
// update), and every call is a Bot API call to botgate with the credential.
const bot = credential ? new Bot(credential, { client: { apiRoot } }) : webhookReplyBot()

bot.command('start', (ctx) => ctx.reply('Hello! Send me anything and I will send it back.'))
bot.on('message:text', (ctx) => ctx.reply(ctx.message.text))
bot.on('callback_query', (ctx) => ctx.answerCallbackQuery({ text: 'Got it' }))
bot.catch((error) => console.error(`bot error: ${error.message}`))

// grammY's 'callback' adapter: this server reads the body itself, because the signed forward's
// body_sha256 must be checked against the exact bytes. grammY compares the secret header with
// secretToken in constant time and answers 401 to a wrong one. Through the egress, a reply may
// wait for its turn under botgate's pacing (up to egress.pacing.max_wait): past 20 s the update is
// answered 200 and the reply still goes out, well before botgate's upstream timeout (25 s) would
// make Telegram deliver the update again.
const handleUpdate = webhookCallback(bot, 'callback', {
  secretToken: upstreamSecret,
  onTimeout: 'return',
  timeoutMilliseconds: 20_000,
})

const key = jwksUrl ? createRemoteJWKSet(new URL(jwksUrl)) : new TextEncoder().encode(hs256Key ?? '')
const algorithms = jwksUrl ? ['EdDSA', 'ES256'] : ['HS256'] // pinned, never taken from the token

// jti (the request id) of tokens already used, until they expire: a token is good for one request.
const seen = new Map()
function firstUse(jti, exp) {
  const now = Date.now() / 1000
  for (const [id, until] of seen) if (until + 5 < now) seen.delete(id)
  if (seen.has(jti)) return false
  seen.set(jti, exp)
  return true
}

/** Checks botgate's signed forward, if configured: signature, claims, and the body's hash. */
async function checkToken(request, body) {
  if (!jwksUrl && !hs256Key) return
  const jwt = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
  if (!jwt) throw new Error('no token')
  const { payload } = await jwtVerify(jwt, key, {
    issuer: setting('BOTGATE_ISSUER', 'botgate'),
    audience,
    algorithms,
    requiredClaims: ['iat', 'exp', 'jti', 'update_id', 'body_sha256'],
    clockTolerance: 5,
  })
  if (payload.body_sha256 !== createHash('sha256').update(body).digest('base64url'))
    throw new Error('body_sha256 does not match the body')
  if (!firstUse(payload.jti, payload.exp)) throw new Error('token already used')
  return payload
}

function refuse(response, why) {
  console.error(`refused: ${why}`)
  response.writeHead(401, { 'content-type': 'application/json' }).end('{"ok":false}')
}

const server = http.createServer(async (request, response) => {
  if (request.method !== 'POST' || request.url !== webhookPath) return response.writeHead(404).end()
  const chunks = []
  let size = 0
  for await (const chunk of request) {
    size += chunk.length
    if (size > MAX_BODY) return response.writeHead(413).end()
    chunks.push(chunk)
  }
  const body = Buffer.concat(chunks)
  let update
  try {
    const claims = await checkToken(request, body)
    update = JSON.parse(body.toString('utf8'))
    if (claims && claims.update_id !== update.update_id) throw new Error('update_id does not match')
  } catch (error) {
    return refuse(response, error.code ?? error.message)
  }
  const reply = (json) => response.writeHead(200, { 'content-type': 'application/json' }).end(json)
  let refused = false
  try {
    await handleUpdate(update, reply, request.headers['x-telegram-bot-api-secret-token'], () => {
      refused = true
      refuse(response, 'bad secret token')
    })
  } catch (error) {
    console.error(`update ${update.update_id} failed: ${error.message}`)
    if (!response.headersSent) response.writeHead(500).end()
    return
  }
  if (refused) return
  console.log(`update ${update.update_id} accepted`)
  if (!response.writableEnded) response.writeHead(200).end() // handled without a webhook reply
})

const mode = credential ? "calls through botgate's egress" : 'webhook replies'
server.listen(port, host, () => console.log(`listening on ${host}:${server.address().port} (${mode})`))
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)))
