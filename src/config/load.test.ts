import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from './errors.js'
import { loadConfig } from './load.js'

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/config')
const ENV = { SECRET: 'AAAAAAAAAAAAAAAAAAAA_-0123456789abcdefghijklmnopqrstuvwxyz', MAX_INFLIGHT: '50' }

let cwd: string
beforeAll(() => {
  cwd = process.cwd()
  process.chdir(FIXTURES) // messages name files relative to the working directory
})
afterAll(() => process.chdir(cwd))

function problems(file: string): string[] {
  try {
    loadConfig(file, { env: ENV })
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split('\n')
    throw error
  }
  throw new Error(`${file} loaded without errors`)
}

describe('loadConfig: a valid config', () => {
  it('substitutes, reads secret files, loads policy files and resolves units', () => {
    const config = loadConfig('valid.yaml', { env: ENV })
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(config.adminListen).toEqual({ host: '127.0.0.1', port: 9090 })
    expect(config.trustedProxies.size).toBe(2)
    expect(config.timeouts).toEqual({ headerMs: 10_000, bodyMs: 30_000, keepAliveMs: 30_000 })
    expect(config.shutdownGraceMs).toBe(20_000)
    const [bot] = config.bots
    expect(bot?.path).toBe('/tg/abcdefghijklmnopqrstuvwxyz012345')
    expect(bot?.secretToken).toBe('sEcReT_0123456789-abcdefghijklmnopqrstuvwxyzABCDEFG') // one newline trimmed
    expect(bot?.maxInflight).toBe(50) // "50" from the environment, read as the integer the schema wants
    expect(bot?.upstream.url.href).toBe('http://127.0.0.1:8081/webhook?bot=shop')
    expect(bot?.upstream.timeoutMs).toBe(5000)
    expect(bot?.upstream.secretToken).toBeUndefined() // ${UPSTREAM_SECRET:-} is empty: not set
    expect(bot?.policy.sources?.allow).toEqual(['telegram', '203.0.113.0/24'])
    expect(bot?.policy.updates?.max_body).toBe('64KiB')
    expect(bot?.policyOrigin.label).toBe('policies/ok.yaml')
    expect(config.files.map((file) => path.relative(FIXTURES, file)).sort()).toEqual([
      'policies/ok.yaml',
      'secrets/shop_secret',
      'valid.yaml',
    ])
  })

  it('takes ${NAME:-default} defaults and environment overrides', () => {
    const config = loadConfig('valid.yaml', {
      env: { ...ENV, LISTEN: '0.0.0.0:9999', SHOP_PATH: 'x'.repeat(20) },
    })
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9999 })
    expect(config.bots[0]?.path).toBe(`/tg/${'x'.repeat(20)}`)
  })

  it('reads the operations keys: tls files, alerts and a bot token, and watches their files', () => {
    const config = loadConfig('valid-ops.yaml', { env: ENV })
    expect(config.tls).toMatchObject({ subject: 'CN=botgate-test', selfSigned: true })
    expect(config.tls?.cert).toContain('BEGIN CERTIFICATE')
    expect(config.tls?.key).toContain('PRIVATE KEY')
    expect(config.bots[0]?.token).toBe('123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw')
    expect(config.alerts).toEqual({
      token: '987654321:AAAlertBotTokenForTestsOnly_0123456',
      chatId: -1001234567890, // ${ALERT_CHAT:--1001234567890}: a string from substitution, read as the integer
      messageThreadId: undefined,
      apiBase: 'https://api.telegram.org',
      intervalMs: 300_000,
      thresholds: {
        badSecret: 20,
        ipNotAllowed: undefined,
        upstreamFailures: 3,
        bans: 1,
        deadLetters: 1,
        egressTokenRejected: 1,
        egressFlood: 10,
      },
      storeOutage: true,
      reloadRefused: false,
    })
    expect(config.files.map((file) => path.relative(FIXTURES, file)).sort()).toEqual([
      '../../../policies/default.yaml',
      'secrets/alert_token',
      'secrets/shop_token',
      'tls/cert.pem',
      'tls/key.pem',
      'valid-ops.yaml',
    ])
    expect(config.warnings).toEqual([])
  })

  it('accepts a channel @username as the alert chat, and warns about short intervals and plain http', () => {
    const config = loadConfig('valid-ops.yaml', {
      env: { ...ENV, ALERT_CHAT: '@botgate_alerts', ALERT_INTERVAL: '2s', ALERT_API: 'http://10.0.0.5:8081' },
    })
    expect(config.alerts?.chatId).toBe('@botgate_alerts')
    expect(config.warnings).toEqual([
      'alerts: api_base is plain http to another host: the alert bot token crosses the network unencrypted',
      "alerts: interval 2s is under 10s: alerts may run into Telegram's flood limits",
    ])
    const local = loadConfig('valid-ops.yaml', { env: { ...ENV, ALERT_API: 'http://127.0.0.1:8081' } })
    expect(local.warnings).toEqual([])
  })

  it("accepts the example's commented-out tls, alerts and token keys once uncommented", () => {
    const example = readFileSync(path.resolve(FIXTURES, '../../../gateway.example.yaml'), 'utf8')
    const lines = example.split('\n')
    let block = false
    const uncommented = lines.map((line) => {
      if (/^# (tls|alerts):/.test(line) || /^ {4}# token_file:/.test(line)) {
        block = !line.startsWith('    ')
        return line.replace('# ', '')
      }
      if (block && line.startsWith('#   ')) return line.slice(2)
      block = false
      return line
    })
    const text = uncommented
      .join('\n')
      .replaceAll('tls/', `${FIXTURES}/tls/`)
      .replace('/run/secrets/alert_bot_token', `${FIXTURES}/secrets/alert_token`)
      .replace('/run/secrets/shop_bot_token', `${FIXTURES}/secrets/shop_token`)
      .replace(
        'policy: policies/default.yaml',
        `policy: ${path.resolve(FIXTURES, '../../../policies/default.yaml')}`,
      )
    expect(text).not.toBe(example)
    const file = path.join(tmpdir(), `botgate-example-${process.pid}.yaml`)
    writeFileSync(file, text)
    const config = loadConfig(file, {
      env: { SHOP_PATH: 'x'.repeat(32), SHOP_SECRET: ENV.SECRET, SHOP_UPSTREAM_SECRET: ENV.SECRET },
    })
    expect(config.tls?.subject).toBe('CN=botgate-test')
    expect(config.alerts).toMatchObject({ chatId: -1001234567890, messageThreadId: 42, intervalMs: 60_000 })
    expect(config.bots[0]?.token).toBe('123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw')
  })

  it('resolves signed forwards, the JWKS of every bot and the admin API keys', () => {
    const config = loadConfig('sign-valid.yaml', { env: ENV })
    const [shop, news] = config.bots
    expect(shop?.upstream.sign).toMatchObject({
      alg: 'EdDSA',
      kid: 'shop-2',
      header: 'x-botgate-token',
      bearer: false,
      ttlS: 30,
      issuer: 'botgate',
      audience: 'shop',
    })
    expect(shop?.upstream.sign?.key.type).toBe('private')
    expect(news?.upstream.sign).toMatchObject({ header: 'authorization', bearer: true, ttlS: 60 })
    expect(news?.upstream.sign?.audience).toBe('news-upstream')
    // news signs with the key shop still publishes as shop-1: one key, one kid, published once.
    expect(config.jwks.map((jwk) => [jwk.kid, jwk.kty, jwk.crv, jwk.alg, jwk.use])).toEqual([
      ['shop-2', 'OKP', 'Ed25519', 'EdDSA', 'sig'],
      ['shop-1', 'OKP', 'Ed25519', 'EdDSA', 'sig'],
    ])
    expect(config.jwks.every((jwk) => jwk.d === undefined)).toBe(true) // never a private member
    expect(config.adminApi?.audience).toBe('ops')
    expect(config.adminApi?.maxTokenAgeS).toBe(900)
    expect(
      [...(config.adminApi?.keys.values() ?? [])].map((key) => [key.kid, key.alg, key.key.type]),
    ).toEqual([
      ['ops-hs', 'HS256', 'secret'],
      ['ops-es', 'ES256', 'public'],
    ])
    // Key files are watched: a rotated key reloads with the config.
    expect(config.files.map((file) => path.relative(FIXTURES, file)).sort()).toEqual([
      path.join('..', '..', '..', 'policies', 'default.yaml'),
      'keys/ed25519-a.pem',
      'keys/ed25519-a.pub.pem',
      'keys/ed25519-b.pem',
      'keys/hs256.key',
      'keys/p256.pub.pem',
      'sign-valid.yaml',
    ])
  })

  it('gives a bot without policy the shipped default policy', () => {
    const config = loadConfig('missing-policy-default.yaml', { env: ENV })
    expect(config.bots[0]?.policy.sources?.allow).toEqual(['telegram'])
    expect(config.bots[0]?.policyOrigin.file?.endsWith(path.join('policies', 'default.yaml'))).toBe(true)
  })
})

describe('loadConfig: the store', () => {
  it('defaults to the bounded memory store', () => {
    expect(loadConfig('valid.yaml', { env: ENV }).store).toEqual({ type: 'memory', maxEntries: 100_000 })
  })

  it('reads a redis URL: host, port, credentials (decoded), database and TLS, with the defaults', () => {
    const config = loadConfig('redis-store.yaml', {
      env: { ...ENV, REDIS_URL: 'rediss://botgate:p%40ss%3Aword@redis.internal:6380/4' },
    })
    expect(config.store).toEqual({
      type: 'redis',
      topology: { mode: 'standalone', endpoint: { host: 'redis.internal', port: 6380 } },
      username: 'botgate',
      password: 'p@ss:word',
      db: 4,
      tls: true,
      prefix: 'botgate:',
      timeoutMs: 50,
      connectTimeoutMs: 5000,
      onError: 'local',
      maxEntries: 100_000,
    })
    const plain = loadConfig('redis-store.yaml', { env: { ...ENV, REDIS_URL: 'redis://[::1]' } }).store
    expect(plain).toMatchObject({
      topology: { mode: 'standalone', endpoint: { host: '::1', port: 6379 } },
      username: undefined,
      password: undefined,
      db: 0,
      tls: false,
    })
  })

  it('reads a Cluster node list with credentials from a file', () => {
    expect(loadConfig('redis-cluster.yaml', { env: ENV }).store).toEqual({
      type: 'redis',
      topology: {
        mode: 'cluster',
        nodes: [
          { host: 'node-1', port: 6380 },
          { host: 'fd00::2', port: 6380 },
        ],
      },
      username: 'botgate',
      password: 'redis-secret',
      db: 0,
      tls: true,
      prefix: 'shop-gw:',
      timeoutMs: 100,
      connectTimeoutMs: 5000,
      onError: 'closed',
      maxEntries: 100_000,
    })
  })

  it('reads Sentinels, their own password, and the master’s', () => {
    const config = loadConfig('redis-sentinel.yaml', { env: { ...ENV, REDIS_PASSWORD: 'master-secret' } })
    expect(config.store).toMatchObject({
      topology: {
        mode: 'sentinel',
        master: 'mymaster',
        sentinels: [
          { host: 'sentinel-1', port: 26379 },
          { host: 'fd00::3', port: 26379 },
        ],
        sentinelPassword: 'sentinel-secret',
        sentinelTls: false,
      },
      password: 'master-secret',
      db: 3,
      onError: 'open',
    })
    expect(config.files.map((file) => path.relative(FIXTURES, file))).toContain('secrets/sentinel_password')
  })

  it('warns about every fail-open choice, and not about closed', () => {
    const warnings = (onError: string) =>
      loadConfig('redis-store.yaml', { env: { ...ENV, REDIS_URL: 'redis://redis', ON_ERROR: onError } })
        .warnings
    expect(warnings('local')).toEqual([
      'store.on_error is local: while Redis is unavailable each replica applies rate limits and dedupe on its own (n replicas allow up to n times each limit, and a duplicate may reach the bot once per replica)',
    ])
    expect(warnings('open')).toEqual([
      'store.on_error is open: while Redis is unavailable rate limits and dedupe are off and every update is forwarded',
    ])
    expect(warnings('closed')).toEqual([])
  })

  it('warns about shadow limits, and about ip limits in front of Telegram', () => {
    expect(loadConfig('limits-warnings.yaml', { env: ENV }).warnings).toEqual([
      'bot shop: limit trial is in shadow mode: its verdicts are logged, not enforced',
      "bot shop: limit per-ip keys on ip and sources allow Telegram, which delivers every update from a few addresses: size it for all of the bot's traffic, or Telegram itself is answered 429",
    ])
  })

  it('never repeats a URL (it may hold a password) in a message', () => {
    expect(problems('store-bad-db-path.yaml').join('\n')).not.toContain('hunter2')
    expect(problems('store-password-twice.yaml').join('\n')).not.toContain('hunter2')
  })
})

describe('loadConfig: one fixture per failure mode, exact messages', () => {
  it.each([
    [
      'missing-secret.yaml',
      'missing-secret.yaml:3:5 bots[0].secret_token: is required (or give secret_token_file): without it anyone who finds the path could post updates',
    ],
    [
      'weak-secret.yaml',
      'weak-secret.yaml:5:19 bots[0].secret_token: is too weak: 12 characters, at least 32 required (botgate secret prints one)',
    ],
    [
      'ill-formed-secret.yaml',
      "ill-formed-secret.yaml:5:19 bots[0].secret_token: must use only A-Z, a-z, 0-9, _ and - (Telegram's secret_token charset)",
    ],
    [
      'both-secrets.yaml',
      'both-secrets.yaml:6:5 bots[0].secret_token_file: give either secret_token or secret_token_file, not both',
    ],
    [
      'missing-secret-file.yaml',
      'missing-secret-file.yaml:5:24 bots[0].secret_token_file: cannot read secrets/nope: ENOENT',
    ],
    ['bad-upstream-url.yaml', 'bad-upstream-url.yaml:7:12 bots[0].upstream.url: must be an http(s) URL'],
    [
      'unparseable-upstream-url.yaml',
      'unparseable-upstream-url.yaml:7:12 bots[0].upstream.url: must be an http(s) URL',
    ],
    [
      'empty-sources-inline.yaml',
      'empty-sources-inline.yaml:10:16 bots[0].policy.sources.allow: must not be empty (write [any] to allow every address explicitly)',
    ],
    [
      'empty-sources-file.yaml',
      'policies/empty-sources.yaml:3:10 sources.allow: must not be empty (write [any] to allow every address explicitly)',
    ],
    [
      'unknown-policy-key.yaml',
      'policies/unknown-section.yaml:3:1 sourcse: unknown key "sourcse" (did you mean "sources"?)',
    ],
    [
      'missing-policy-file.yaml',
      'missing-policy-file.yaml:8:13 bots[0].policy: cannot read policy file policies/missing.yaml: ENOENT',
    ],
    [
      'unset-variable.yaml',
      'unset-variable.yaml:5:19 bots[0].secret_token: environment variable UNSET_SECRET is not set (write ${UNSET_SECRET:-default} for a default)',
    ],
    [
      'bad-size.yaml',
      'bad-size.yaml:10:19 bots[0].policy.updates.max_body: must be a size like 256KiB, 64KB or 1MiB',
    ],
    [
      'bad-trusted-proxy.yaml',
      'bad-trusted-proxy.yaml:1:19 trusted_proxies[0]: "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?',
    ],
    [
      'body-timeout-under-header.yaml',
      'body-timeout-under-header.yaml:1:32 timeouts.body: must be at least timeouts.header: it bounds the whole request, headers included',
    ],
    [
      'admin-on-webhook-port.yaml',
      'admin-on-webhook-port.yaml:1:18 admin.listen: must differ from listen: the admin endpoints never share the webhook listener',
    ],
    ['no-bots.yaml', 'no-bots.yaml:2:7 bots: must list at least one bot'],
    ['duplicate-key.yaml', 'duplicate-key.yaml:2:1 YAML: Map keys must be unique'],
    [
      'yaml-syntax.yaml',
      'yaml-syntax.yaml:2:1 YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
    [
      'bad-bot-token.yaml',
      'bad-bot-token.yaml:5:12 bots[0].token: must be a bot token from @BotFather: digits, a colon, then letters, digits, _ and -',
    ],
    [
      'alerts-no-token.yaml',
      'alerts-no-token.yaml:2:3 alerts.token: is required (or give token_file): alerts are sent by a bot, with its token',
    ],
    [
      'tls-missing-file.yaml',
      'tls-missing-file.yaml:2:14 tls.cert_file: cannot read tls/missing.pem: ENOENT',
    ],
    [
      'tls-wrong-key.yaml',
      'tls-wrong-key.yaml:1:43 tls.key_file: tls/other-key.pem is not the private key of the certificate in tls/cert.pem',
    ],
    [
      'tls-not-pem.yaml',
      'tls-not-pem.yaml:1:19 tls.cert_file: secrets/shop_secret does not hold a PEM certificate',
    ],
    ['empty.yaml', 'empty.yaml:1:1 the file is empty: it needs at least a bots list'],
    ['nonexistent.yaml', 'nonexistent.yaml:1:1 cannot read the config file: ENOENT'],
    [
      'sign-short-key.yaml',
      'sign-short-key.yaml:12:18 bots[0].upstream.sign.keys[0].key: is too short for HS256: 9 bytes, at least 32 required (RFC 7518 section 3.2)',
    ],
    [
      'sign-bad-pem.yaml',
      'sign-bad-pem.yaml:12:31 bots[0].upstream.sign.keys[0].private_key_file: is not a PEM private key (PKCS#8, e.g. from openssl genpkey -algorithm ed25519)',
    ],
    [
      'sign-wrong-curve.yaml',
      'sign-wrong-curve.yaml:12:31 bots[0].upstream.sign.keys[0].private_key_file: is an Ed25519 key; ES256 needs a P-256 (prime256v1) EC key',
    ],
    [
      'sign-first-key-public.yaml',
      'sign-first-key-public.yaml:12:30 bots[0].upstream.sign.keys[0].public_key_file: the first key signs: give its private_key (public_key is for older keys still published)',
    ],
    [
      'sign-hs256-two-keys.yaml',
      'sign-hs256-two-keys.yaml:13:13 bots[0].upstream.sign.keys[1]: HS256 keys are never published: list only the signing key (while rotating, the upstream accepts both kids)',
    ],
    [
      'sign-duplicate-kid.yaml',
      'sign-duplicate-kid.yaml:13:18 bots[0].upstream.sign.keys[1].kid: duplicates keys[0].kid: each key needs its own kid',
    ],
    [
      'sign-kid-clash.yaml',
      'sign-kid-clash.yaml:14:41 bots[1].upstream.sign.keys[0].kid: kid shared is already published by bots[0] for another key: a kid names one key in the JWKS',
    ],
    [
      'sign-gateway-header.yaml',
      'sign-gateway-header.yaml:10:17 bots[0].upstream.sign.header: is a header the gateway sets itself: name another one, e.g. x-botgate-token',
    ],
    [
      'sign-auth-credentials.yaml',
      'sign-auth-credentials.yaml:9:9 bots[0].upstream.sign.header: authorization already carries the credentials of upstream.url (Basic): name another header, e.g. x-botgate-token',
    ],
    [
      'sign-key-for-wrong-alg.yaml',
      'sign-key-for-wrong-alg.yaml:12:31 bots[0].upstream.sign.keys[0].private_key_file: is for EdDSA and ES256; HS256 uses key (or key_file)',
    ],
    [
      'sign-long-ttl.yaml',
      'sign-long-ttl.yaml:10:14 bots[0].upstream.sign.ttl: must be between 1s and 1h: forward tokens are meant to be short-lived',
    ],
    [
      'sign-unknown-alg.yaml',
      'sign-unknown-alg.yaml:9:14 bots[0].upstream.sign.alg: must be HS256, EdDSA or ES256',
    ],
    [
      'admin-api-private-key.yaml',
      'admin-api-private-key.yaml:7:26 admin.api.keys[0].public_key_file: is a private key: give only the public key here (openssl pkey -pubout)',
    ],
    [
      'admin-api-missing-key.yaml',
      'admin-api-missing-key.yaml:5:9 admin.api.keys[0].public_key: is required for ES256: public_key (or public_key_file)',
    ],
    [
      'store-redis-without-url.yaml',
      'store-redis-without-url.yaml:2:9 store.type: redis needs one of url, cluster or sentinel',
    ],
    [
      'store-two-forms.yaml',
      'store-two-forms.yaml:4:3 store.cluster: give one of url, cluster or sentinel, not url and cluster',
    ],
    ['store-bad-url.yaml', 'store-bad-url.yaml:3:8 store.url: must be a redis:// or rediss:// URL'],
    [
      'store-bad-db-path.yaml',
      'store-bad-db-path.yaml:3:8 store.url: must end in the database number, like redis://host:6379/0, or in nothing',
    ],
    [
      'store-redis-key-with-memory.yaml',
      'store-redis-key-with-memory.yaml:2:3 store.url: applies only to type: redis',
    ],
    ['store-cluster-db.yaml', 'store-cluster-db.yaml:3:12 store.cluster: Redis Cluster has only database 0'],
    [
      'store-prefix-braces.yaml',
      'store-prefix-braces.yaml:4:11 store.prefix: must be at most 64 characters without spaces, { or } (botgate puts a hash tag after it)',
    ],
    [
      'store-password-twice.yaml',
      'store-password-twice.yaml:4:13 store.password: give the password in url or here, not both',
    ],
    ['store-bad-on-error.yaml', 'store-bad-on-error.yaml:4:13 store.on_error: must be local, open or closed'],
    [
      'store-bad-sentinel-node.yaml',
      'store-bad-sentinel-node.yaml:5:13 store.sentinel.nodes[0]: must be host:port, e.g. sentinel-1:26379',
    ],
    ['store-zero-timeout.yaml', 'store-zero-timeout.yaml:4:12 store.timeout: must be more than 0'],
    [
      'limits-bad-rate.yaml',
      'limits-bad-rate.yaml:9:46 bots[0].policy.limits[0].rate: must be a rate like 20/min: N/s, N/min, N/h or N/day',
    ],
    [
      'limits-bad-key.yaml',
      'limits-bad-key.yaml:9:34 bots[0].policy.limits[0].key: must be ip, chat, user or bot',
    ],
    [
      'limits-duplicate-name.yaml',
      'limits-duplicate-name.yaml:10:19 bots[0].policy.limits[1].name: duplicates limits[0].name: each limit needs its own name',
    ],
    [
      'limits-ip-with-commands.yaml',
      'limits-ip-with-commands.yaml:9:58 bots[0].policy.limits[0].commands: an ip limit runs before the update is read, so it cannot filter by commands',
    ],
    [
      'limits-ip-with-reply.yaml',
      'limits-ip-with-reply.yaml:9:55 bots[0].policy.limits[0].reply: an ip limit answers 429 before the update is read; it cannot reply',
    ],
    [
      'limits-command-slash.yaml',
      'limits-command-slash.yaml:9:61 bots[0].policy.limits[0].commands[0]: must be a command name without the leading / (up to 32 letters, digits and _)',
    ],
    [
      'limits-unknown-update-type.yaml',
      'limits-unknown-update-type.yaml:9:65 bots[0].policy.limits[0].update_types[0]: "callback_querry" is not an update type (did you mean "callback_query"?)',
    ],
    [
      'limits-too-fast.yaml',
      'limits-too-fast.yaml:9:42 bots[0].policy.limits[0].rate: is more than one request per microsecond; the most is 1000000/s',
    ],
    [
      'limits-burst-too-long.yaml',
      'limits-burst-too-long.yaml:9:58 bots[0].policy.limits[0].burst: lasts longer than a year at this rate (burst x period / N); lower it',
    ],
    [
      'outbound-chats-bad-entry.yaml',
      'outbound-chats-bad-entry.yaml:9:38 bots[0].policy.outbound.chats.allow[1]: must be heard_from, any, a chat id (an integer) or an @username',
    ],
    [
      'outbound-chats-unknown-method.yaml',
      'outbound-chats-unknown-method.yaml:10:34 bots[0].policy.outbound.chats.methods.sendMesage: "sendMesage" is not a Bot API method of Bot API 10.1 (did you mean "sendMessage"?)',
    ],
    [
      'outbound-chats-no-chat.yaml',
      'outbound-chats-no-chat.yaml:10:43 bots[0].policy.outbound.chats.methods.answerCallbackQuery: answerCallbackQuery names no chat (it has no chat_id or from_chat_id): nothing to limit',
    ],
    [
      'outbound-chats-any-with-others.yaml',
      'outbound-chats-any-with-others.yaml:9:25 bots[0].policy.outbound.chats.allow: any allows every chat: list nothing else with it',
    ],
    [
      'outbound-chats-empty.yaml',
      'outbound-chats-empty.yaml:9:16 bots[0].policy.outbound.chats: needs allow or methods (or remove chats to limit no chat)',
    ],
    [
      'limits-unknown-key.yaml',
      'limits-unknown-key.yaml:9:54 bots[0].policy.limits[0].brust: unknown key "brust" (did you mean "burst"?)',
    ],
  ])('%s', (file, message) => {
    expect(problems(file)).toEqual([message])
  })

  it('reports every problem of a file, in file order', () => {
    // Once each: an unset variable, not also what its value became without it.
    expect(problems('unset-variable-in-list.yaml')).toEqual([
      'unset-variable-in-list.yaml:10:27 bots[0].policy.sources.allow[1]: environment variable UNSET_SOURCE is not set (write ${UNSET_SOURCE:-default} for a default)',
      'unset-variable-in-list.yaml:12:19 bots[0].policy.updates.max_body: environment variable UNSET_SIZE is not set (write ${UNSET_SIZE:-default} for a default)',
    ])
    expect(problems('duplicate-bots.yaml')).toEqual([
      'duplicate-bots.yaml:8:11 bots[1].name: duplicates bots[0].name: each bot needs its own name',
      'duplicate-bots.yaml:9:11 bots[1].path: duplicates bots[0].path: each bot needs its own path',
    ])
    expect(problems('bad-source.yaml')).toEqual([
      'bad-source.yaml:10:27 bots[0].policy.sources.allow[1]: "149.154.167.99/20" has host bits set; did you mean 149.154.160.0/20?',
      'bad-source.yaml:10:46 bots[0].policy.sources.allow[2]: "localhost" is not an address, a CIDR network, telegram or any',
    ])
    expect(problems('wrong-types.yaml')).toEqual([
      'wrong-types.yaml:6:19 bots[0].max_inflight: must be an integer',
      'wrong-types.yaml:9:16 bots[0].upstream.timeout: must be a duration like 500ms, 25s, 5m, 24h or 7d',
    ])
    expect(problems('bad-names.yaml')).toEqual([
      'bad-names.yaml:1:9 listen: must be host:port, e.g. 0.0.0.0:8080 or [::]:8080',
      'bad-names.yaml:3:11 bots[0].name: must be 1-64 characters of a-z, 0-9, _ and -',
      'bad-names.yaml:4:11 bots[0].path: must be a URL path starting with / made of letters, digits and . _ ~ / -',
    ])
  })

  it('checks the policy sections\u2019 own rules', () => {
    expect(problems('unknown-update-type.yaml')).toEqual([
      'unknown-update-type.yaml:9:26 bots[0].policy.updates.allow[1]: "mesage" is not an update type of Bot API 10.1 (did you mean "message"?); newer types are governed by updates.unknown',
    ])
    expect(problems('command-mistakes.yaml')).toEqual([
      'command-mistakes.yaml:9:17 bots[0].policy.commands.allow[0]: write "start", without the slash',
      'command-mistakes.yaml:10:23 bots[0].policy.commands.roles.ban: "ban" is not in commands.allow, so no one can use it; add it there',
      'command-mistakes.yaml:10:24 bots[0].policy.commands.roles.ban[0]: role "admins" is not defined in roles (known: mods)',
    ])
    expect(problems('bad-dedupe.yaml')).toEqual([
      'bad-dedupe.yaml:8:15 bots[0].policy.dedupe: must be a mapping like { ttl: 24h }, or false',
      'bad-dedupe.yaml:10:18 bots[0].policy.updates.unknown: must be forward or drop',
    ])
  })

  it('reports every bad alerts value', () => {
    expect(problems('alerts-bad-values.yaml')).toEqual([
      'alerts-bad-values.yaml:3:12 alerts.chat_id: must be a chat id (an integer such as -1001234567890) or a channel @username',
      'alerts-bad-values.yaml:4:15 alerts.bad_secret: must be a count of at least 1, or false to turn this alert off',
      'alerts-bad-values.yaml:5:13 alerts.api_base: must be an http(s) URL',
    ])
  })

  it('points at an unknown key and suggests the likely one, next to what it left missing', () => {
    expect(problems('typo-key.yaml')).toEqual([
      'typo-key.yaml:3:5 bots[0].upstream: is required',
      'typo-key.yaml:6:5 bots[0].upstrem: unknown key "upstrem" (did you mean "upstream"?)',
    ])
  })
})
