/**
 * @module
 * `botgate check`: validates a config and its policies (or standalone policy files) without
 * starting anything, and prints what would run, secrets masked. Exit 1 on any problem.
 */

import { DEFAULT_HEARD_FROM_TTL, usesHeardFrom } from '../checks/outbound/chats.js'
import { GUARDED_METHODS, type OutboundPolicy, outboundFilter } from '../checks/outbound/index.js'
import { ConfigError } from '../config/errors.js'
import { type BotConfig, type GatewayConfig, loadConfig } from '../config/load.js'
import { formatDuration, formatSize } from '../config/units.js'
import type { Rate } from '../egress/pacing/config.js'
import { loadPolicyFile } from '../policy/load.js'
import type { Policy } from '../policy/schema.js'
import { describeStore } from '../store/config.js'
import { displayApiBase } from '../telegram/bot-api.js'
import { CONFIG_OPTION, defaultConfigFile, parse, UsageError } from './args.js'

export const summary = 'validate the config and policies, print a summary (secrets masked)'

export const help = `Usage: botgate check [--config FILE]
       botgate check --policy FILE [FILE ...]

Loads the config exactly as serve would (environment, secret files, policy files), reports every
problem as file:line:col path: message, and prints a summary with secrets masked. With --policy,
checks standalone policy files instead. Exits 1 if anything is wrong.

  -c, --config FILE   the config file (default: $BOTGATE_CONFIG, else ./gateway.yaml)
  -p, --policy FILE   policy files to check (repeat the option or list the files after it)
`

/** `****… (64 chars)`: shows that a secret is set and how long it is, nothing of its content. */
export function maskSecret(secret: string): string {
  return `**** (${secret.length} chars)`
}

/** Keeps the path's shape but hides its random segment, which is as good as a password. */
export function maskPath(path: string): string {
  const slash = path.lastIndexOf('/')
  const segment = path.slice(slash + 1)
  if (segment.length < 8) return path
  return `${path.slice(0, slash + 1)}${segment.slice(0, 2)}**** (${segment.length} chars)`
}

function maskUrl(url: URL): string {
  if (url.password === '') return url.href
  const copy = new URL(url.href)
  copy.password = '****'
  return copy.href
}

export function describePolicy(policy: Policy): string[] {
  const lines = [`mode ${policy.mode ?? 'enforce'}`, `access ${describeAccess(policy)}`]
  for (const [name, section] of Object.entries(policy)) {
    if (name === 'mode' || section === undefined) continue
    lines.push(`${name} ${JSON.stringify(section)}`)
  }
  return lines
}

function count(items: readonly unknown[] | undefined, noun: string): string | undefined {
  return items === undefined || items.length === 0 ? undefined : `${items.length} ${noun}`
}

/** `only 5 ids + roles team, ops`, or `any`. */
function allowed(list: readonly (number | string)[] | undefined): string {
  if (list === undefined) return 'any'
  const ids = list.filter((item) => typeof item === 'number').length
  const roles = list.filter((item) => typeof item === 'string')
  const parts = [
    ids > 0 ? `${ids} ids` : undefined,
    roles.length > 0 ? `roles ${roles.join(', ')}` : undefined,
  ]
  return `only ${parts.filter(Boolean).join(' + ') || 'nobody'}`
}

/**
 * Who may talk to the bot and what they may say, in one line: the chats, users, commands,
 * content and bans sections at a glance (`botgate check`; the full sections follow it).
 */
export function describeAccess(policy: Policy): string {
  const parts: string[] = []
  const { chats, users, commands, content, bans } = policy
  const shadow = (mode: string | undefined) => (mode === 'shadow' ? ' (shadow)' : '')
  parts.push(
    chats === undefined
      ? 'chats any'
      : `chats ${[chats.types?.join('+') ?? 'any type', count(chats.allow, 'allowed'), count(chats.deny, 'denied')].filter(Boolean).join(', ')}${shadow(chats.mode)}`,
  )
  parts.push(
    users === undefined
      ? 'users any'
      : `users ${[allowed(users.allow), count(users.deny, 'denied'), users.bots === 'drop' ? 'no bots' : undefined, users.anonymous === 'drop' ? 'no anonymous' : undefined].filter(Boolean).join(', ')}${shadow(users.mode)}`,
  )
  parts.push(
    commands === undefined
      ? 'commands any'
      : `commands ${commands.allow.length} allowed${shadow(commands.mode)}`,
  )
  if (content !== undefined) {
    const media = content.media?.allow
    const rules = [
      content.max_text === undefined ? undefined : `max_text ${content.max_text}`,
      content.args === undefined ? undefined : `${Object.keys(content.args).length} arg rules`,
      count(content.deny, 'deny patterns'),
      content.links === undefined ? undefined : `links <= ${content.links}`,
      media === undefined ? undefined : media.length === 0 ? 'no media' : `media ${media.join('+')}`,
      content.media?.max_size === undefined ? undefined : 'media sizes',
      content.media?.mime_types === undefined && content.media?.deny_extensions === undefined
        ? undefined
        : 'document types',
      content.forwarded === 'drop' ? 'no forwards' : undefined,
      content.via_bot === 'drop' ? 'no via_bot' : undefined,
    ].filter(Boolean)
    parts.push(`content ${rules.length === 0 ? 'any' : rules.join(', ')}${shadow(content.mode)}`)
  }
  if (bans !== undefined) {
    const rules = [
      bans.ips === undefined
        ? undefined
        : `ip > ${bans.ips.failures} failures/${bans.ips.within} for ${bans.ips.ban}`,
      bans.users === undefined
        ? undefined
        : `user > ${bans.users.drops} drops/${bans.users.within} for ${bans.users.ban}`,
    ].filter(Boolean)
    parts.push(`bans ${rules.join(', ')}${shadow(bans.mode)}`)
  }
  return parts.join('; ')
}

/** `1234... (45 chars)`: enough of the egress credential to tell which one is set, no more. */
export function maskCredential(credential: string): string {
  return `${credential.slice(0, 4)}... (${credential.length} chars)`
}

function rate(value: Rate): string {
  return `${value.count}/${formatDuration(value.periodMs)} (burst ${value.burst})`
}

/** The egress listener and its settings, for every bot with a credential. */
function describeEgress(config: GatewayConfig): string[] {
  const egress = config.egress
  if (egress === undefined) return ['egress off: no egress listener (bots call the Bot API themselves)']
  const { pacing } = egress
  return [
    `egress listen ${egress.listen.host}:${egress.listen.port}, api_base ${displayApiBase(egress.apiBase.href)}, max_upload ${formatSize(egress.maxUploadBytes)}, timeout ${formatDuration(egress.timeoutMs)}`,
    pacing.enabled
      ? `  pacing on: per bot ${rate(pacing.global)}, private chat ${rate(pacing.privateChat)}, group ${rate(pacing.groupChat)}, max_queue ${pacing.maxQueue}, max_wait ${formatDuration(pacing.maxWaitMs)}, max_retries ${pacing.maxRetries}`
      : '  pacing off',
  ]
}

/**
 * What the bot may call through its egress, as configured: `outbound.allow_methods` (default
 * any) and the guarded methods that stay denied, and `outbound.chats`.
 */
export function describeOutbound(outbound: OutboundPolicy | undefined): string[] {
  const allow = outbound?.allow_methods ?? ['any']
  // The egress's own filter says which guarded methods stay denied.
  const allows = outboundFilter(outbound)
  const guarded = GUARDED_METHODS.filter((method) => !allows(method))
  const denied = !allow.includes('any')
    ? 'every method not listed'
    : guarded.length === 0
      ? 'none'
      : guarded.join(', ')
  const chats = outbound?.chats
  const lists = [
    ...(chats?.allow === undefined ? [] : [`allowed ${chats.allow.join(', ')}`]),
    ...Object.entries(chats?.methods ?? {}).map(([method, list]) => `${method} ${list.join(', ')}`),
  ]
  const ttl = usesHeardFrom(chats)
    ? `; heard_from_ttl ${chats?.heard_from_ttl ?? DEFAULT_HEARD_FROM_TTL}`
    : ''
  return [
    `methods allowed ${allow.join(', ')}; denied ${denied}`,
    `chats ${chats === undefined ? 'any' : `${lists.join('; ')}${ttl}`}`,
  ]
}

/** The bot's egress: its listener and credential (masked), pacing, and what it may call. */
function describeBotEgress(bot: BotConfig, config: GatewayConfig): string[] {
  const indent = '                '
  if (bot.egress === undefined)
    return ['  egress        none: no credential (the bot calls the Bot API itself)']
  const credential = maskCredential(bot.egress.credential)
  const egress = config.egress
  if (egress === undefined)
    return [`  egress        none: credential ${credential} set, but the config has no egress listener`]
  return [
    `  egress        listen ${egress.listen.host}:${egress.listen.port}, credential ${credential}, pacing ${egress.pacing.enabled ? 'on' : 'off'}`,
    ...describeOutbound(bot.policy.outbound).map((line) => `${indent}${line}`),
  ]
}

function describeBot(bot: BotConfig, config: GatewayConfig): string[] {
  const upstream = bot.upstream
  return [
    `bot ${bot.name}${bot.username === undefined ? '' : ` (@${bot.username})`}`,
    `  path          ${maskPath(bot.path)}`,
    `  secret_token  ${maskSecret(bot.secretToken)}`,
    `  upstream      ${maskUrl(upstream.url)} timeout ${formatDuration(upstream.timeoutMs)}, upstream secret ${upstream.secretToken === undefined ? 'not set' : maskSecret(upstream.secretToken)}`,
    ...(upstream.sign === undefined
      ? []
      : [
          `  sign          ${upstream.sign.alg} kid ${upstream.sign.kid}, ${upstream.sign.bearer ? 'Authorization: Bearer' : `header ${upstream.sign.header}`}, ttl ${upstream.sign.ttlS}s, aud ${upstream.sign.audience}${upstream.sign.published.length > 0 ? `, ${upstream.sign.published.length} key(s) published` : ''}`,
        ]),
    `  max_inflight  ${bot.maxInflight}`,
    `  token         ${bot.token === undefined ? 'not set (set-webhook, webhook-info, delete-webhook, the egress and queued delivery need it)' : maskSecret(bot.token)}`,
    ...describeBotEgress(bot, config),
    `  policy        ${bot.policyOrigin.label}`,
    ...describePolicy(bot.policy).map((line) => `                ${line}`),
  ]
}

function describeTls(config: GatewayConfig): string[] {
  const tls = config.tls
  if (tls === undefined) return ['tls off: plain HTTP on the webhook listener (TLS ends at a proxy in front)']
  return [
    `tls ${tls.subject}, valid to ${tls.validTo.toISOString()}${tls.selfSigned ? ', self-signed (upload it: set-webhook --certificate)' : ''}`,
  ]
}

function describeAlerts(config: GatewayConfig): string[] {
  const alerts = config.alerts
  if (alerts === undefined) return ['alerts off']
  const { thresholds } = alerts
  const count = (value: number | undefined) => (value === undefined ? 'off' : `>= ${value}`)
  return [
    `alerts to chat ${alerts.chatId}${alerts.messageThreadId === undefined ? '' : ` topic ${alerts.messageThreadId}`} via ${displayApiBase(alerts.apiBase)}, bot token ${maskSecret(alerts.token)}, every ${formatDuration(alerts.intervalMs)}`,
    `  bad_secret ${count(thresholds.badSecret)}, ip_not_allowed ${count(thresholds.ipNotAllowed)}, upstream_failures ${count(thresholds.upstreamFailures)}, bans ${count(thresholds.bans)}, egress_token_rejected ${count(thresholds.egressTokenRejected)}, egress_flood ${count(thresholds.egressFlood)}, dead_letters ${count(thresholds.deadLetters)}, store_outage ${alerts.storeOutage ? 'on' : 'off'}, reload_refused ${alerts.reloadRefused ? 'on' : 'off'}`,
  ]
}

export function describeConfig(config: GatewayConfig, name: string): string {
  const proxies = config.trustedProxies.size
  const lines = [
    `${name}: OK`,
    `listen ${config.listen.host}:${config.listen.port}, admin ${config.adminListen.host}:${config.adminListen.port}`,
    `trusted_proxies ${proxies === 0 ? 'none' : `${proxies} network(s)`}, log level ${config.log.level}`,
    `store ${describeStore(config.store)}`,
    ...describeTls(config),
    ...describeAlerts(config),
    ...describeEgress(config),
    config.adminApi === undefined
      ? 'admin api off'
      : `admin api on: aud ${config.adminApi.audience}, keys ${[...config.adminApi.keys.values()].map((key) => `${key.kid} (${key.alg})`).join(', ')}`,
    ...config.bots.flatMap((bot) => describeBot(bot, config)),
  ]
  if (config.warnings.length > 0)
    lines.push('warnings:', ...config.warnings.map((warning) => `  - ${warning}`))
  return `${lines.join('\n')}\n`
}

export function run(args: readonly string[]): number {
  const { values, positionals } = parse(
    args,
    { ...CONFIG_OPTION, policy: { type: 'string', short: 'p', multiple: true } },
    true,
  )
  if (positionals.length > 0 && values.policy === undefined) {
    throw new UsageError(`unexpected argument ${positionals[0]}: give policy files with --policy`)
  }
  try {
    if (values.policy !== undefined) {
      let failed = false
      for (const file of [...values.policy, ...positionals]) {
        let loaded: ReturnType<typeof loadPolicyFile>
        try {
          loaded = loadPolicyFile(file, process.env)
        } catch (error) {
          process.stderr.write(
            `${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
          )
          failed = true
          continue
        }
        if (loaded.policy === undefined) {
          process.stderr.write(`${new ConfigError(loaded.source.issues).message}\n`)
          failed = true
        } else {
          process.stdout.write(
            `${loaded.source.name}: OK\n${describePolicy(loaded.policy)
              .map((l) => `  ${l}`)
              .join('\n')}\n`,
          )
        }
      }
      return failed ? 1 : 0
    }
    const file = defaultConfigFile(values.config)
    const config = loadConfig(file)
    process.stdout.write(describeConfig(config, file))
    return 0
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${error.message}\n`)
    return 1
  }
}
