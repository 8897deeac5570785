/**
 * @module
 * What set-webhook, webhook-info and delete-webhook share: the options, loading the config,
 * finding the bot by name, its token, the Bot API endpoint, and reading the policy's
 * `updates.allow`. Failures are printed here with what to do about them, and become exit codes:
 * 1 for a config or Telegram problem, 2 for a usage problem.
 */

import { isShadow } from '../checks/mode.js'
import { ConfigError } from '../config/errors.js'
import { type BotConfig, type GatewayConfig, loadConfig } from '../config/load.js'
import { BotApi, DEFAULT_API_BASE, normaliseApiBase } from '../telegram/bot-api.js'
import { CONFIG_OPTION, defaultConfigFile, UsageError } from './args.js'
import { maskPath } from './check.js'

/** The environment variable naming the Bot API endpoint, for a local Bot API server. */
export const API_BASE_ENV = 'BOTGATE_API_BASE'

export const API_OPTIONS = {
  ...CONFIG_OPTION,
  'api-base': { type: 'string' },
} as const

export const API_OPTIONS_HELP = `  -c, --config FILE   the config file (default: $BOTGATE_CONFIG, else ./gateway.yaml)
  --api-base URL      the Bot API endpoint, for a local Bot API server
                      (default: $${API_BASE_ENV}, else ${DEFAULT_API_BASE})
`

export interface BotContext {
  readonly configFile: string
  readonly config: GatewayConfig
  readonly bot: BotConfig
  readonly apiBase: string
  readonly api: BotApi
}

/** Writes `botgate <command>: <message>` to stderr. */
export function fail(command: string, message: string): void {
  process.stderr.write(`botgate ${command}: ${message}\n`)
}

/** The endpoint from --api-base, else the environment, else Telegram's. */
export function apiBaseOf(given: string | undefined): string {
  const base = given ?? process.env[API_BASE_ENV] ?? DEFAULT_API_BASE
  let url: URL | undefined
  try {
    url = new URL(base)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new UsageError(`the API base must be an http(s) URL, e.g. ${DEFAULT_API_BASE}`)
  return normaliseApiBase(base)
}

/**
 * Loads the config and finds the bot named `name` in it, or prints why not and returns the exit
 * code (1: the config has problems, 2: no such bot).
 */
export function namedBot(
  command: string,
  name: string,
  configFile: string,
): { readonly config: GatewayConfig; readonly bot: BotConfig } | number {
  let config: GatewayConfig
  try {
    config = loadConfig(configFile)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${error.message}\n`)
    return 1
  }
  const bot = config.bots.find((candidate) => candidate.name === name)
  if (bot === undefined) {
    fail(
      command,
      `no bot named "${name}" in ${configFile}; its bots: ${config.bots.map((b) => b.name).join(', ')}`,
    )
    return 2
  }
  return { config, bot }
}

/**
 * Loads the config and the named bot with its token, or prints why not and returns the exit code.
 */
export function botContext(
  command: string,
  positionals: readonly string[],
  values: { config?: string | undefined; 'api-base'?: string | undefined },
): BotContext | number {
  const [name, ...extra] = positionals
  if (name === undefined) throw new UsageError(`name the bot, as in the config: botgate ${command} BOT`)
  if (extra.length > 0) throw new UsageError(`one bot at a time; unexpected: ${extra.join(' ')}`)
  const apiBase = apiBaseOf(values['api-base'])
  const configFile = defaultConfigFile(values.config)
  const named = namedBot(command, name, configFile)
  if (typeof named === 'number') return named
  const { config, bot } = named
  if (bot.token === undefined) {
    fail(
      command,
      `bot ${bot.name} has no token: give it token_file (or token) in ${configFile}. Only set-webhook, webhook-info and delete-webhook read it; serve never does.`,
    )
    return 1
  }
  return { configFile, config, bot, apiBase, api: new BotApi(bot.token, { apiBase }) }
}

/**
 * The update types the bot's policy lets through (`updates.allow`), when it has such a list.
 * Read defensively: the key may not exist in this version's policy schema, and only a list of
 * strings counts.
 */
export function policyAllowedUpdates(bot: BotConfig): readonly string[] | undefined {
  const updates = bot.policy.updates as { allow?: unknown } | undefined
  const allow = updates?.allow
  if (!Array.isArray(allow) || !allow.every((type): type is string => typeof type === 'string'))
    return undefined
  return allow
}

/** Whether the policy's updates section only logs its verdicts (then Telegram should send everything). */
export function updatesInShadow(bot: BotConfig): boolean {
  return isShadow(bot.policy.mode, bot.policy.updates?.mode)
}

/**
 * What setWebhook's `allowed_updates` leaves out when given an empty list, and what WebhookInfo
 * reports as the default: "all update types except chat_member, message_reaction, and
 * message_reaction_count" (setWebhook, allowed_updates).
 */
export const TELEGRAM_DEFAULT_EXCLUDED = ['chat_member', 'message_reaction', 'message_reaction_count']

/** A webhook URL for output: origin and path, the path's random segment masked (see maskPath). */
export function maskWebhookUrl(url: URL): string {
  const origin = url.password === '' ? url.origin : `${url.protocol}//${url.username}:****@${url.host}`
  return `${origin}${maskPath(url.pathname)}${url.search === '' ? '' : '?…'}`
}
