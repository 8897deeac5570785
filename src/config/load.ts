/**
 * @module
 * The config loader: YAML -> `${ENV}` substitution -> schema (types, defaults, unknown keys) ->
 * the rules a schema cannot state (secrets present, strong and readable; names and paths unique;
 * URLs, networks and listeners well-formed) -> a {@link GatewayConfig} whose values are ready to
 * use: durations in milliseconds, networks parsed, secrets read, policies loaded.
 *
 * Every problem is collected, not just the first, and reported as `file:line:col path: message`.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { JWK } from 'jose'
import { SECRET_CHARSET } from '../checks/secret/index.js'
import {
  checkPolicy,
  DEFAULT_POLICY_FILE,
  loadPolicyFile,
  type PolicyOrigin,
  policyPath,
} from '../policy/load.js'
import type { Policy } from '../policy/schema.js'
import { type Cidr, CidrSet, parseCidr } from '../request/ip.js'
import type { Endpoint, RedisTopology, StoreConfig } from '../store/config.js'
import { ConfigError, type ConfigIssue } from './errors.js'
import { type AdminApiConfig, collectJwks, resolveAdminApi, resolveSign, type SignConfig } from './keys.js'
import { configSchema, type RawAlerts, type RawBot, type RawConfig, type RawTls } from './schema.js'
import { displayName, type Segment, YamlSource } from './source.js'
import { parseDuration } from './units.js'
import { validate } from './validate.js'

export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface UpstreamConfig {
  readonly url: URL
  readonly timeoutMs: number
  readonly secretToken: string | undefined
  /** `upstream.sign`: a JWT on every forward. */
  readonly sign: SignConfig | undefined
}

export interface BotConfig {
  readonly name: string
  readonly username: string | undefined
  readonly path: string
  readonly secretToken: string
  readonly maxInflight: number
  readonly upstream: UpstreamConfig
  readonly policy: Policy
  readonly policyOrigin: PolicyOrigin
  /** The bot's own Bot API token: only the Bot API commands (set-webhook ...) read it. */
  readonly token: string | undefined
}

/** TLS on the webhook listener: the files as read at load time, checked to belong together. */
export interface TlsConfig {
  /** Absolute paths. */
  readonly certFile: string
  readonly keyFile: string
  /** PEM text. */
  readonly cert: string
  readonly key: string
  /** Issued by itself: Telegram then needs it uploaded with setWebhook (`--certificate`). */
  readonly selfSigned: boolean
  readonly subject: string
  readonly validTo: Date
}

/** Thresholds per interval; undefined turns that alert off. */
export interface AlertThresholds {
  readonly badSecret: number | undefined
  readonly ipNotAllowed: number | undefined
  readonly upstreamFailures: number | undefined
}

export interface AlertsConfig {
  readonly token: string
  readonly chatId: number | string
  readonly messageThreadId: number | undefined
  readonly apiBase: string
  readonly intervalMs: number
  readonly thresholds: AlertThresholds
  readonly storeOutage: boolean
  readonly reloadRefused: boolean
}

export interface GatewayConfig {
  /** The config file, absolute. */
  readonly file: string
  /** Every file this config was built from (config, policies, secret files): the reload watch list. */
  readonly files: readonly string[]
  readonly listen: HostPort
  readonly adminListen: HostPort
  /** `admin.api`: the JWT-authenticated admin API; undefined: its routes do not exist. */
  readonly adminApi: AdminApiConfig | undefined
  /** The public keys of every bot's `upstream.sign`, served at the admin listener's /.well-known/jwks.json. */
  readonly jwks: readonly JWK[]
  readonly trustedProxies: CidrSet
  readonly timeouts: { readonly headerMs: number; readonly bodyMs: number; readonly keepAliveMs: number }
  readonly shutdownGraceMs: number
  readonly store: StoreConfig
  readonly log: RawConfig['log']
  readonly bots: readonly BotConfig[]
  readonly tls: TlsConfig | undefined
  readonly alerts: AlertsConfig | undefined
  /** Legal but risky choices (fail-open settings, weak-looking values): logged at every load. */
  readonly warnings: readonly string[]
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv
  /** Adjusts the loaded config before use (the demo binds to loopback and allows it as a source). */
  readonly adjust?: (config: GatewayConfig) => GatewayConfig
}

/** Telegram allows 1-256 characters; we ask for at least 32 so a secret cannot be guessed (SPEC section 2). */
export const MIN_SECRET_LENGTH = 32
const MAX_SECRET_LENGTH = 256

/** Telegram gives up on a webhook answer after 60 s (SPEC section 1). */
const TELEGRAM_TIMEOUT_MS = 60_000

/** A token from @BotFather: the bot's numeric id, a colon, then the secret part ("Authorizing your bot"). */
const BOT_TOKEN = /^[0-9]+:[A-Za-z0-9_-]+$/
const BOT_TOKEN_MESSAGE =
  'must be a bot token from @BotFather: digits, a colon, then letters, digits, _ and -'

/** Shorter alert intervals risk Telegram's flood limits for messages to one chat. */
const MIN_ALERT_INTERVAL_MS = 10_000

function parseHostPort(text: string): HostPort | undefined {
  const colon = text.lastIndexOf(':')
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(text.slice(colon + 1))
  return Number.isInteger(port) && port >= 0 && port <= 65535 ? { host, port } : undefined
}

const REDIS_URL = 'must be a redis:// or rediss:// URL'

interface RedisUrl {
  readonly endpoint: Endpoint
  readonly tls: boolean
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number | undefined
}

/**
 * `redis[s]://[user[:password]@]host[:port][/db]`, the form redis-cli and most clients take.
 * Messages never repeat the URL: it may hold a password.
 */
function parseRedisUrl(text: string): RedisUrl | string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return REDIS_URL
  }
  const scheme = url.protocol.toLowerCase()
  if ((scheme !== 'redis:' && scheme !== 'rediss:') || url.hostname === '') return REDIS_URL
  if (url.search !== '' || url.hash !== '')
    return 'must not carry query parameters: use the store keys (db, tls, username, password)'
  const path = url.pathname
  if (path !== '' && path !== '/' && !/^\/[0-9]{1,5}$/.test(path))
    return 'must end in the database number, like redis://host:6379/0, or in nothing'
  const decode = (part: string) => (part === '' ? undefined : decodeURIComponent(part))
  return {
    endpoint: {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 6379 : Number(url.port),
    },
    tls: scheme === 'rediss:',
    username: decode(url.username),
    password: decode(url.password),
    db: path.length > 1 ? Number(path.slice(1)) : undefined,
  }
}

/** Store keys that only mean something with `type: redis`. */
const REDIS_ONLY_KEYS = [
  'url',
  'cluster',
  'sentinel',
  'username',
  'password',
  'password_file',
  'db',
  'tls',
] as const

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message
}

/** Trims one trailing newline, as `echo secret > file` and Kubernetes secrets leave one. */
function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
}

class Resolver {
  readonly source: YamlSource
  readonly env: NodeJS.ProcessEnv
  readonly files = new Set<string>()
  readonly warnings: string[] = []
  readonly policySources: YamlSource[] = []

  constructor(source: YamlSource, env: NodeJS.ProcessEnv) {
    this.source = source
    this.env = env
    this.files.add(source.file)
  }

  /** `key` or `key_file`: exactly one of them, or neither when optional. */
  secret(
    raw: Record<string, unknown>,
    at: readonly Segment[],
    key: string,
    required: string | undefined,
  ): string | undefined {
    const direct = raw[key] as string | undefined
    const file = raw[`${key}_file`] as string | undefined
    if (direct !== undefined && file !== undefined) {
      this.source.issue([...at, `${key}_file`], `give either ${key} or ${key}_file, not both`, 'key')
      return undefined
    }
    if (file !== undefined) {
      const absolute = path.resolve(path.dirname(this.source.file), file)
      this.files.add(absolute)
      try {
        return readSecretFile(absolute)
      } catch (error) {
        this.source.issue([...at, `${key}_file`], `cannot read ${file}: ${errorCode(error)}`)
        return undefined
      }
    }
    if (direct === undefined || direct === '') {
      if (required !== undefined)
        this.source.issue([...at, key], `${direct === undefined ? 'is required' : 'is empty'} ${required}`)
      return undefined
    }
    return direct
  }

  /** Telegram's secret charset and our minimum length; `minimum` 1 for secrets that only the bot checks. */
  secretRules(value: string, at: readonly Segment[], minimum: number): boolean {
    if (!SECRET_CHARSET.test(value)) {
      this.source.issue(at, "must use only A-Z, a-z, 0-9, _ and - (Telegram's secret_token charset)")
      return false
    }
    if (value.length < minimum) {
      this.source.issue(
        at,
        `is too weak: ${value.length} characters, at least ${minimum} required (botgate secret prints one)`,
      )
      return false
    }
    if (value.length > MAX_SECRET_LENGTH) {
      this.source.issue(at, `is too long: Telegram accepts at most ${MAX_SECRET_LENGTH} characters`)
      return false
    }
    return true
  }

  networks(entries: readonly string[], at: readonly Segment[]): CidrSet {
    const cidrs: Cidr[] = []
    for (const [index, entry] of entries.entries()) {
      const cidr = parseCidr(entry)
      if (typeof cidr === 'string') this.source.issue([...at, index], cidr)
      else cidrs.push(cidr)
    }
    return new CidrSet(cidrs)
  }

  /** The `store` section: which Redis, with which credentials, and what to do when it fails. */
  store(raw: RawConfig['store']): StoreConfig | undefined {
    const at: Segment[] = ['store']
    if (raw.type === 'memory') {
      for (const key of REDIS_ONLY_KEYS) {
        if (raw[key] !== undefined) this.source.issue([...at, key], 'applies only to type: redis', 'key')
      }
      return { type: 'memory', maxEntries: raw.max_entries }
    }
    const forms = (['url', 'cluster', 'sentinel'] as const).filter((key) => raw[key] !== undefined)
    if (forms.length === 0) {
      this.source.issue([...at, 'type'], 'redis needs one of url, cluster or sentinel')
      return undefined
    }
    if (forms.length > 1) {
      this.source.issue(
        [...at, forms[1] as string],
        `give one of url, cluster or sentinel, not ${forms.join(' and ')}`,
        'key',
      )
      return undefined
    }
    const urls: RedisUrl[] = []
    const parse = (text: string, where: readonly Segment[]) => {
      const parsed = parseRedisUrl(text)
      if (typeof parsed === 'string') this.source.issue(where, parsed)
      else urls.push(parsed)
    }
    let topology: RedisTopology | undefined
    if (raw.url !== undefined) {
      parse(raw.url, [...at, 'url'])
      const first = urls[0]
      if (first !== undefined) topology = { mode: 'standalone', endpoint: first.endpoint }
    } else if (raw.cluster !== undefined) {
      for (const [index, text] of raw.cluster.entries()) parse(text, [...at, 'cluster', index])
      if (urls.length === raw.cluster.length)
        topology = { mode: 'cluster', nodes: urls.map((url) => url.endpoint) }
    } else if (raw.sentinel !== undefined) {
      const sentinel = raw.sentinel
      const sentinels: Endpoint[] = []
      sentinel.nodes.forEach((text, index) => {
        const endpoint = parseHostPort(text)
        if (endpoint === undefined || endpoint.port === 0)
          this.source.issue([...at, 'sentinel', 'nodes', index], 'must be host:port with a port of 1-65535')
        else sentinels.push(endpoint)
      })
      const sentinelPassword = this.secret(
        sentinel as Record<string, unknown>,
        [...at, 'sentinel'],
        'password',
        undefined,
      )
      if (sentinels.length === sentinel.nodes.length) {
        topology = {
          mode: 'sentinel',
          master: sentinel.master,
          sentinels,
          sentinelPassword,
          sentinelTls: sentinel.tls,
        }
      }
    }
    const fromUrl = <K extends 'username' | 'password' | 'db'>(key: K) =>
      urls.find((url) => url[key] !== undefined)?.[key]
    const urlKey = forms[0] === 'url' ? 'url' : 'cluster'
    const password = this.secret(raw as Record<string, unknown>, at, 'password', undefined)
    const urlPassword = fromUrl('password')
    if (password !== undefined && urlPassword !== undefined)
      this.source.issue(
        [...at, raw.password_file === undefined ? 'password' : 'password_file'],
        `give the password in ${urlKey} or here, not both`,
      )
    const urlUsername = fromUrl('username')
    if (raw.username !== undefined && urlUsername !== undefined)
      this.source.issue([...at, 'username'], `give the username in ${urlKey} or here, not both`)
    const urlDb = fromUrl('db')
    if (raw.db !== undefined && urlDb !== undefined)
      this.source.issue([...at, 'db'], `give the database in ${urlKey} or here, not both`)
    const db = raw.db ?? urlDb ?? 0
    if (topology?.mode === 'cluster' && db !== 0)
      this.source.issue([...at, raw.db === undefined ? 'cluster' : 'db'], 'Redis Cluster has only database 0')
    const timeoutMs = parseDuration(raw.timeout)
    if (timeoutMs === 0) this.source.issue([...at, 'timeout'], 'must be more than 0')
    const connectTimeoutMs = parseDuration(raw.connect_timeout)
    if (connectTimeoutMs === 0) this.source.issue([...at, 'connect_timeout'], 'must be more than 0')
    if (raw.on_error === 'local') {
      this.warnings.push(
        'store.on_error is local: while Redis is unavailable each replica applies rate limits and dedupe on its own (n replicas allow up to n times each limit, and a duplicate may reach the bot once per replica)',
      )
    } else if (raw.on_error === 'open') {
      this.warnings.push(
        'store.on_error is open: while Redis is unavailable rate limits and dedupe are off and every update is forwarded',
      )
    }
    if (topology === undefined) return undefined
    return {
      type: 'redis',
      topology,
      username: raw.username ?? urlUsername,
      password: password ?? urlPassword,
      db,
      tls: raw.tls ?? urls.some((url) => url.tls),
      prefix: raw.prefix,
      timeoutMs,
      connectTimeoutMs,
      onError: raw.on_error,
      maxEntries: raw.max_entries,
    }
  }

  policy(bot: RawBot, at: readonly Segment[]): { policy: Policy; origin: PolicyOrigin } | undefined {
    if (typeof bot.policy === 'object') {
      checkPolicy(bot.policy, this.source, [...at, 'policy'])
      return { policy: bot.policy, origin: { file: undefined, label: 'inline' } }
    }
    const file = bot.policy === undefined ? DEFAULT_POLICY_FILE : policyPath(this.source.file, bot.policy)
    const label = bot.policy === undefined ? 'the shipped default (policies/default.yaml)' : undefined
    this.files.add(file)
    let loaded: ReturnType<typeof loadPolicyFile>
    try {
      loaded = loadPolicyFile(file, this.env)
    } catch (error) {
      this.source.issue(
        [...at, 'policy'],
        `cannot read policy file ${displayName(file)}: ${errorCode(error)}`,
      )
      return undefined
    }
    this.policySources.push(loaded.source)
    if (loaded.policy === undefined) return undefined
    return { policy: loaded.policy, origin: label === undefined ? loaded.origin : { file, label } }
  }

  upstream(bot: RawBot, at: readonly Segment[]): UpstreamConfig | undefined {
    let url: URL | undefined
    try {
      url = new URL(bot.upstream.url)
    } catch {
      this.source.issue([...at, 'upstream', 'url'], 'must be an http(s) URL')
    }
    if (url && (!['http:', 'https:'].includes(url.protocol) || url.hostname === '')) {
      this.source.issue([...at, 'upstream', 'url'], 'must be an http(s) URL')
      url = undefined
    }
    const timeoutMs = parseDuration(bot.upstream.timeout)
    if (timeoutMs === 0) this.source.issue([...at, 'upstream', 'timeout'], 'must be more than 0')
    if (timeoutMs >= TELEGRAM_TIMEOUT_MS) {
      this.warnings.push(
        `bot ${bot.name}: upstream.timeout ${bot.upstream.timeout} is not under Telegram's 60 s: Telegram will resend before the gateway answers`,
      )
    }
    const secretAt = [...at, 'upstream', 'secret_token']
    const secretToken = this.secret(
      bot.upstream as Record<string, unknown>,
      [...at, 'upstream'],
      'secret_token',
      undefined,
    )
    if (secretToken !== undefined) this.secretRules(secretToken, secretAt, 1)
    const sign =
      bot.upstream.sign === undefined
        ? undefined
        : resolveSign(this, bot.upstream.sign, [...at, 'upstream', 'sign'], {
            name: bot.name,
            urlHasCredentials: url !== undefined && url.username !== '',
          })
    return url === undefined ? undefined : { url, timeoutMs, secretToken, sign }
  }

  bot(bot: RawBot, index: number): BotConfig | undefined {
    const at: Segment[] = ['bots', index]
    const secretToken = this.secret(
      bot as Record<string, unknown>,
      at,
      'secret_token',
      '(or give secret_token_file): without it anyone who finds the path could post updates',
    )
    const secretOk =
      secretToken !== undefined &&
      this.secretRules(
        secretToken,
        [...at, bot.secret_token_file ? 'secret_token_file' : 'secret_token'],
        MIN_SECRET_LENGTH,
      )
    const upstream = this.upstream(bot, at)
    const policy = this.policy(bot, at)
    const token = this.botToken(bot as Record<string, unknown>, at, undefined)
    if (!secretOk || !upstream || !policy || secretToken === undefined) return undefined
    const segment = bot.path.split('/').pop() ?? ''
    if (segment.length < 16) {
      this.warnings.push(
        `bot ${bot.name}: path ${bot.path} has no long random segment: put one in it (botgate secret prints one)`,
      )
    }
    return {
      name: bot.name,
      username: bot.username,
      path: bot.path,
      secretToken,
      maxInflight: bot.max_inflight,
      upstream,
      policy: policy.policy,
      policyOrigin: policy.origin,
      token,
    }
  }

  /** A Bot API token (`token` or `token_file`), checked for its shape, never quoted in messages. */
  botToken(
    raw: Record<string, unknown>,
    at: readonly Segment[],
    required: string | undefined,
  ): string | undefined {
    const token = this.secret(raw, at, 'token', required)
    if (token === undefined) return undefined
    if (!BOT_TOKEN.test(token)) {
      this.source.issue([...at, raw.token_file === undefined ? 'token' : 'token_file'], BOT_TOKEN_MESSAGE)
      return undefined
    }
    return token
  }

  /** A file named by the config, relative to it; joins the reload watch list. */
  #readFile(file: string, at: readonly Segment[]): { absolute: string; text: string } | undefined {
    const absolute = path.resolve(path.dirname(this.source.file), file)
    this.files.add(absolute)
    try {
      return { absolute, text: readFileSync(absolute, 'utf8') }
    } catch (error) {
      this.source.issue(at, `cannot read ${file}: ${errorCode(error)}`)
      return undefined
    }
  }

  tls(raw: RawTls | undefined): TlsConfig | undefined {
    if (raw === undefined) return undefined
    const certAt = ['tls', 'cert_file']
    const keyAt = ['tls', 'key_file']
    const cert = this.#readFile(raw.cert_file, certAt)
    const key = this.#readFile(raw.key_file, keyAt)
    if (cert === undefined || key === undefined) return undefined
    let certificate: X509Certificate
    let privateKey: KeyObject
    try {
      certificate = new X509Certificate(cert.text)
    } catch {
      this.source.issue(certAt, `${raw.cert_file} does not hold a PEM certificate`)
      return undefined
    }
    try {
      privateKey = createPrivateKey(key.text)
    } catch {
      this.source.issue(keyAt, `${raw.key_file} does not hold an unencrypted PEM private key`)
      return undefined
    }
    if (!certificate.checkPrivateKey(privateKey)) {
      this.source.issue(
        keyAt,
        `${raw.key_file} is not the private key of the certificate in ${raw.cert_file}`,
      )
      return undefined
    }
    const validTo = new Date(certificate.validTo)
    if (validTo.getTime() < Date.now()) {
      this.warnings.push(
        `tls: the certificate in ${raw.cert_file} expired on ${validTo.toISOString()}: Telegram refuses to deliver to it`,
      )
    }
    return {
      certFile: cert.absolute,
      keyFile: key.absolute,
      cert: cert.text,
      key: key.text,
      selfSigned: certificate.subject === certificate.issuer && certificate.checkIssued(certificate),
      subject: certificate.subject.replace(/\n/g, ', '),
      validTo,
    }
  }

  alerts(raw: RawAlerts | undefined): AlertsConfig | undefined {
    if (raw === undefined) return undefined
    const at = ['alerts']
    const token = this.botToken(
      raw as Record<string, unknown>,
      at,
      '(or give token_file): alerts are sent by a bot, with its token',
    )
    let apiBase: URL | undefined
    try {
      apiBase = new URL(raw.api_base)
    } catch {
      this.source.issue([...at, 'api_base'], 'must be an http(s) URL')
    }
    if (apiBase !== undefined && apiBase.protocol === 'http:' && !isLoopback(apiBase.hostname)) {
      this.warnings.push(
        'alerts: api_base is plain http to another host: the alert bot token crosses the network unencrypted',
      )
    }
    const intervalMs = parseDuration(raw.interval)
    if (intervalMs === 0) this.source.issue([...at, 'interval'], 'must be more than 0')
    else if (intervalMs < MIN_ALERT_INTERVAL_MS) {
      this.warnings.push(
        `alerts: interval ${raw.interval} is under 10s: alerts may run into Telegram's flood limits`,
      )
    }
    if (token === undefined || apiBase === undefined || intervalMs === 0) return undefined
    const count = (value: number | false) => (value === false ? undefined : value)
    return {
      token,
      chatId: raw.chat_id,
      messageThreadId: raw.message_thread_id,
      apiBase: raw.api_base,
      intervalMs,
      thresholds: {
        badSecret: count(raw.bad_secret),
        ipNotAllowed: count(raw.ip_not_allowed),
        upstreamFailures: count(raw.upstream_failures),
      },
      storeOutage: raw.store_outage,
      reloadRefused: raw.reload_refused,
    }
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname.startsWith('127.')
}

function unique(raw: RawConfig, source: YamlSource): void {
  for (const key of ['name', 'path'] as const) {
    const seen = new Map<string, number>()
    raw.bots.forEach((bot, index) => {
      const first = seen.get(bot[key])
      if (first === undefined) seen.set(bot[key], index)
      else
        source.issue(['bots', index, key], `duplicates bots[${first}].${key}: each bot needs its own ${key}`)
    })
  }
}

function shadowWarnings(bots: readonly BotConfig[], warnings: string[]): void {
  for (const bot of bots) {
    const { mode, ...sections } = bot.policy
    if (mode === 'shadow')
      warnings.push(`bot ${bot.name}: policy mode is shadow: policy verdicts are logged, not enforced`)
    for (const [name, section] of Object.entries(sections)) {
      if ((section as { mode?: string } | undefined)?.mode === 'shadow') {
        warnings.push(
          `bot ${bot.name}: section ${name} is in shadow mode: its verdicts are logged, not enforced`,
        )
      }
    }
    const telegramSources = (bot.policy.sources?.allow ?? ['telegram']).includes('telegram')
    for (const rule of bot.policy.limits ?? []) {
      if (rule.mode === 'shadow' && mode !== 'shadow')
        warnings.push(
          `bot ${bot.name}: limit ${rule.name} is in shadow mode: its verdicts are logged, not enforced`,
        )
      if (rule.key === 'ip' && telegramSources) {
        warnings.push(
          `bot ${bot.name}: limit ${rule.name} keys on ip and sources allow Telegram, which delivers every update from a few addresses: size it for all of the bot's traffic, or Telegram itself is answered 429`,
        )
      }
    }
    if (bot.policy.sources?.allow.includes('any')) {
      warnings.push(
        `bot ${bot.name}: sources.allow includes any: every address may deliver updates (the secret still applies)`,
      )
    }
  }
}

/** Loads and checks a config file; throws {@link ConfigError} with every problem found. */
export function loadConfig(file: string, options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env
  const absolute = path.resolve(file)
  let source: YamlSource
  try {
    source = YamlSource.read(absolute)
  } catch (error) {
    throw new ConfigError([
      { file: file, line: 1, col: 1, path: '', message: `cannot read the config file: ${errorCode(error)}` },
    ])
  }
  const fail = (extra: readonly YamlSource[] = []): never => {
    const issues: ConfigIssue[] = [...source.issues, ...extra.flatMap((s) => s.issues)]
    throw new ConfigError(issues)
  }
  if (source.issues.length > 0) fail()
  source.substitute(env)
  const value = source.value()
  if (value === undefined || value === null) {
    source.issue([], 'the file is empty: it needs at least a bots list')
    fail()
  }
  const raw = validate(configSchema, value, source)
  if (source.issues.length > 0 || raw === undefined) return fail()

  const resolver = new Resolver(source, env)
  unique(raw, source)
  const trustedProxies = resolver.networks(raw.trusted_proxies, ['trusted_proxies'])
  const listen = parseHostPort(raw.listen)
  if (!listen) source.issue(['listen'], 'must be host:port with a port of 0-65535')
  const adminListen = parseHostPort(raw.admin.listen)
  if (!adminListen) source.issue(['admin', 'listen'], 'must be host:port with a port of 0-65535')
  if (
    listen &&
    adminListen &&
    listen.port !== 0 &&
    listen.port === adminListen.port &&
    listen.host === adminListen.host
  ) {
    source.issue(
      ['admin', 'listen'],
      'must differ from listen: the admin endpoints never share the webhook listener',
    )
  }
  if (parseDuration(raw.timeouts.body) < parseDuration(raw.timeouts.header)) {
    source.issue(
      ['timeouts', 'body'],
      'must be at least timeouts.header: it bounds the whole request, headers included',
    )
  }
  const adminApi =
    raw.admin.api === undefined ? undefined : resolveAdminApi(resolver, raw.admin.api, ['admin', 'api'])
  const store = resolver.store(raw.store)
  const bots = raw.bots.map((bot, index) => resolver.bot(bot, index))
  const tls = resolver.tls(raw.tls)
  const alerts = resolver.alerts(raw.alerts)
  const jwks = collectJwks(
    resolver,
    bots.map((bot) => bot?.upstream.sign),
  )
  if (source.issues.length > 0 || resolver.policySources.some((s) => s.issues.length > 0))
    fail(resolver.policySources)

  const resolved = bots as BotConfig[]
  shadowWarnings(resolved, resolver.warnings)
  const config: GatewayConfig = {
    file: absolute,
    files: [...resolver.files],
    listen: listen as HostPort,
    adminListen: adminListen as HostPort,
    adminApi,
    jwks,
    trustedProxies,
    timeouts: {
      headerMs: parseDuration(raw.timeouts.header),
      bodyMs: parseDuration(raw.timeouts.body),
      keepAliveMs: parseDuration(raw.timeouts.keep_alive),
    },
    shutdownGraceMs: parseDuration(raw.shutdown_grace),
    store: store as StoreConfig,
    log: raw.log,
    bots: resolved,
    tls,
    alerts,
    warnings: resolver.warnings,
  }
  return options.adjust === undefined ? config : options.adjust(config)
}
