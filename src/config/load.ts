/**
 * @module
 * The config loader, in the order a file is read: YAML with positions (./source.ts) ->
 * `${ENV}` references (./env.ts) -> schema: types, defaults, unknown keys (./validate.ts) -> the
 * rules a schema cannot state, section by section: secrets present, strong and readable
 * (./secrets.ts); bots, their upstreams and policies, unique names and paths (./bots.ts); the
 * store (./store.ts); TLS (./tls.ts); alerts (./alerts.ts); keys (./keys.ts) -> a
 * {@link GatewayConfig} whose values are ready to use: durations in milliseconds, networks
 * parsed, secrets read, policies loaded.
 *
 * Every problem is collected, not just the first, and reported as `file:line:col path: message`
 * (./errors.ts). This file only orchestrates; each section's rules live in its own file.
 */

import path from 'node:path'
import type { JWK } from 'jose'
import type { PacingConfig } from '../egress/pacing/config.js'
import { compilePacing } from '../egress/pacing/schema.js'
import { type Cidr, CidrSet, parseCidr } from '../request/ip.js'
import type { StoreConfig } from '../store/config.js'
import { DEFAULT_API_BASE } from '../telegram/bot-api.js'
import { type HostPort, parseHostPort } from './address.js'
import { type AlertsConfig, isLoopback, resolveAlerts } from './alerts.js'
import { type BotConfig, BotResolver, shadowWarnings, uniqueBots } from './bots.js'
import { ConfigError, type ConfigIssue, errorCode } from './errors.js'
import { type AdminApiConfig, collectJwks, resolveAdminApi } from './keys.js'
import { configSchema, EGRESS_MAX_UPLOAD, EGRESS_TIMEOUT, type RawConfig } from './schema.js'
import { SecretReader } from './secrets.js'
import type { Segment } from './source.js'
import { YamlSource } from './source.js'
import { resolveStore } from './store.js'
import { resolveTls, type TlsConfig } from './tls.js'
import { parseDuration, parseSize } from './units.js'
import { validate } from './validate.js'

export type { HostPort } from './address.js'
export type { AlertsConfig, AlertThresholds } from './alerts.js'
export type { BotConfig, UpstreamConfig } from './bots.js'
export { MIN_SECRET_LENGTH } from './secrets.js'
export type { TlsConfig } from './tls.js'

export interface EgressConfig {
  readonly listen: HostPort
  readonly apiBase: URL
  /** `egress.pacing`: Telegram's flood limits, kept for the bots (docs/egress-pacing.md). */
  readonly pacing: PacingConfig
  /** `egress.max_upload`: most bytes of a streamed call body. */
  readonly maxUploadBytes: number
  /** `egress.timeout`: for the Bot API's answer headers, and between parts of its body. */
  readonly timeoutMs: number
}

/** The egress's settings without an `egress` section (the reply executor still calls the Bot API). */
export function egressDefaults(): Omit<EgressConfig, 'listen'> {
  return {
    apiBase: new URL(DEFAULT_API_BASE),
    pacing: compilePacing(undefined),
    maxUploadBytes: parseSize(EGRESS_MAX_UPLOAD),
    timeoutMs: parseDuration(EGRESS_TIMEOUT),
  }
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
  /** `egress`: the Bot API egress listener; undefined: none (docs/egress.md). */
  readonly egress: EgressConfig | undefined
  /** Legal but risky choices (fail-open settings, weak-looking values): logged at every load. */
  readonly warnings: readonly string[]
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv
  /** Adjusts the loaded config before use (the demo binds to loopback and allows it as a source). */
  readonly adjust?: (config: GatewayConfig) => GatewayConfig
}

function networks(source: YamlSource, entries: readonly string[], at: readonly Segment[]): CidrSet {
  const cidrs: Cidr[] = []
  for (const [index, entry] of entries.entries()) {
    const cidr = parseCidr(entry)
    if (typeof cidr === 'string') source.issue([...at, index], cidr)
    else cidrs.push(cidr)
  }
  return new CidrSet(cidrs)
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

  const files = new Set([source.file])
  const warnings: string[] = []
  const reader = new SecretReader(source, files)
  const resolver = new BotResolver(reader, env, warnings)
  uniqueBots(raw, source)
  const trustedProxies = networks(source, raw.trusted_proxies, ['trusted_proxies'])
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
    raw.admin.api === undefined ? undefined : resolveAdminApi(reader, raw.admin.api, ['admin', 'api'])
  const store = resolveStore(reader, raw.store, warnings)
  const bots = raw.bots.map((bot, index) => resolver.bot(bot, index))
  const tls = resolveTls(reader, raw.tls, warnings)
  const alerts = resolveAlerts(reader, raw.alerts, warnings)
  const egress = resolveEgress(source, raw.egress, warnings)
  queuedDelivery(source, raw, bots, warnings)
  const jwks = collectJwks(
    reader,
    bots.map((bot) => bot?.upstream.sign),
  )
  if (source.issues.length > 0 || resolver.policySources.some((s) => s.issues.length > 0))
    fail(resolver.policySources)

  const resolved = bots as BotConfig[]
  shadowWarnings(resolved, warnings)
  const config: GatewayConfig = {
    file: absolute,
    files: [...files],
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
    egress,
    store: store as StoreConfig,
    log: raw.log,
    bots: resolved,
    tls,
    alerts,
    warnings,
  }
  return options.adjust === undefined ? config : options.adjust(config)
}

/**
 * `upstream.delivery: queued` keeps updates in Redis Streams: it needs `store: redis`. The bot's
 * webhook answers are then executed by botgate with the bot's token: without one they are lost.
 */
function queuedDelivery(
  source: YamlSource,
  raw: RawConfig,
  bots: readonly (BotConfig | undefined)[],
  warnings: string[],
): void {
  for (const [index, bot] of bots.entries()) {
    if (bot?.upstream.queue === undefined) continue
    if (raw.store.type !== 'redis')
      source.issue(
        ['bots', index, 'upstream', 'delivery'],
        'queued needs store: redis (the queue is a Redis Stream every replica delivers from)',
      )
    if (bot.token === undefined)
      warnings.push(
        `bot ${bot.name}: delivery: queued without token or token_file: the bot's webhook answers cannot be executed and are dropped (give the token, or call the Bot API yourself)`,
      )
  }
}

/** `egress`: its listener and Bot API base; plain http to another host is legal but warned about. */
function resolveEgress(
  source: YamlSource,
  raw: RawConfig['egress'],
  warnings: string[],
): EgressConfig | undefined {
  if (raw === undefined) return undefined
  const listen = parseHostPort(raw.listen)
  if (!listen) source.issue(['egress', 'listen'], 'must be host:port with a port of 0-65535')
  let apiBase: URL | undefined
  try {
    apiBase = new URL(raw.api_base)
  } catch {
    source.issue(['egress', 'api_base'], 'must be an http(s) URL')
  }
  if (!listen || !apiBase) return undefined
  if (apiBase.protocol === 'http:' && !isLoopback(apiBase.hostname))
    warnings.push('egress: api_base is plain http to another host: bot tokens cross the network unencrypted')
  if (!isLoopback(listen.host))
    warnings.push(`egress: listen ${raw.listen} is not loopback: keep the egress on a private network`)
  return {
    listen,
    apiBase,
    pacing: compilePacing(raw.pacing),
    maxUploadBytes: parseSize(raw.max_upload),
    timeoutMs: parseDuration(raw.timeout),
  }
}
