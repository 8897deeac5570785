/**
 * @module
 * `botgate webhook-info BOT`: what Telegram has registered for the bot (getWebhookInfo,
 * https://core.telegram.org/bots/api#getwebhookinfo), readable, and where it disagrees with the
 * config: a path the gateway does not serve, delivery errors, a backlog, update types the policy
 * drops or never receives, a self-signed certificate Telegram does not have.
 */

import { describeFailure, type WebhookInfo } from '../telegram/bot-api.js'
import { UPDATE_TYPES } from '../telegram/generated/update-types.js'
import { parse, UsageError } from './args.js'
import {
  API_OPTIONS,
  API_OPTIONS_HELP,
  type BotContext,
  botContext,
  fail,
  maskWebhookUrl,
  policyAllowedUpdates,
  TELEGRAM_DEFAULT_EXCLUDED,
  updatesInShadow,
} from './bot-api.js'

export const summary = "show a bot's webhook as Telegram has it, and where it disagrees with the config"

export const help = `Usage: botgate webhook-info BOT [options]

Calls getWebhookInfo for the bot named BOT in the config, with its token (token or token_file),
prints the answer readably (the URL's random path segment masked) and warns where it disagrees
with the config: no webhook, a path the bot does not have, the last delivery error, many pending
updates, update types the policy drops or never gets, a self-signed certificate not uploaded,
more connections than max_inflight. Exits 0 when Telegram answered, warnings or not.

Options:
  --max-pending N     warn from this many pending updates (default: 100)
  --json              print Telegram's WebhookInfo as JSON instead
${API_OPTIONS_HELP}`

const DEFAULT_MAX_PENDING = 100

function when(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString()
}

/** A hint for Telegram's "Wrong response from the webhook: 401 Unauthorized" and the like. */
function errorHint(message: string): string {
  if (/\b401\b/.test(message))
    return ": the secret token Telegram sends is not the config's; run botgate set-webhook again"
  if (/\b403\b/.test(message))
    return ": the gateway refused Telegram's address; check sources.allow and trusted_proxies"
  if (/\b404\b/.test(message)) return ": the gateway does not serve the webhook's path; check the bot's path"
  if (/\b50[234]\b/.test(message))
    return ': the bot behind the gateway failed or was unreachable; see the gateway log'
  if (/certificate|SSL|TLS/i.test(message))
    return ': a TLS problem; see docs/tls.md (a self-signed certificate must be uploaded with --certificate)'
  return ''
}

/** Where Telegram's registration and the config disagree. */
export function webhookWarnings(context: BotContext, info: WebhookInfo, maxPending: number): string[] {
  const { bot, config } = context
  const warnings: string[] = []
  if (info.url === '') {
    warnings.push(
      `no webhook is set: Telegram keeps updates for getUpdates. Run botgate set-webhook ${bot.name} --url URL`,
    )
  } else {
    let registered: URL | undefined
    try {
      registered = new URL(info.url)
    } catch {
      registered = undefined
    }
    if (registered === undefined || registered.pathname !== bot.path) {
      warnings.push(
        "the webhook's path is not the bot's path in the config: the gateway answers 404 to every delivery (unless a proxy rewrites it)",
      )
    }
  }
  if (info.last_error_message !== undefined) {
    const date = info.last_error_date === undefined ? '' : ` at ${when(info.last_error_date)}`
    warnings.push(
      `Telegram's last delivery failed${date}: ${info.last_error_message}${errorHint(info.last_error_message)}`,
    )
  }
  if (info.pending_update_count >= maxPending) {
    warnings.push(
      `${info.pending_update_count} updates are waiting for delivery: Telegram cannot deliver or the bot is slow`,
    )
  }
  const allow = policyAllowedUpdates(bot)
  if (allow !== undefined && info.url !== '') {
    const sent = new Set(
      info.allowed_updates ?? UPDATE_TYPES.filter((type) => !TELEGRAM_DEFAULT_EXCLUDED.includes(type)),
    )
    const allowed = new Set(allow)
    const dropped = [...sent].filter((type) => !allowed.has(type))
    const missing = allow.filter((type) => !sent.has(type))
    if (dropped.length > 0 && !updatesInShadow(bot)) {
      warnings.push(
        `Telegram sends ${dropped.join(', ')}, which the policy drops: run botgate set-webhook to stop them at the source`,
      )
    }
    if (missing.length > 0) {
      warnings.push(
        `the policy allows ${missing.join(', ')}, which Telegram does not send: run botgate set-webhook to subscribe`,
      )
    }
  }
  if (config.tls?.selfSigned && !info.has_custom_certificate && info.url !== '') {
    warnings.push(
      "the gateway's certificate is self-signed but Telegram has none uploaded: deliveries fail. Run botgate set-webhook with --certificate (docs/tls.md)",
    )
  }
  if (info.max_connections !== undefined && info.max_connections > bot.maxInflight) {
    warnings.push(
      `Telegram may open ${info.max_connections} connections, more than the bot's max_inflight ${bot.maxInflight}: expect 503 overloaded under load`,
    )
  }
  return warnings
}

export function describeWebhook(name: string, info: WebhookInfo): string[] {
  let url = '(none)'
  if (info.url !== '') {
    try {
      url = maskWebhookUrl(new URL(info.url))
    } catch {
      url = '(not a URL)'
    }
  }
  const allowed =
    info.allowed_updates === undefined
      ? `Telegram's default (every type but ${TELEGRAM_DEFAULT_EXCLUDED.join(', ')})`
      : info.allowed_updates.join(', ')
  const lines = [
    `Webhook of bot ${name}`,
    `  url                 ${url}`,
    `  custom certificate  ${info.has_custom_certificate ? 'yes' : 'no'}`,
    `  pending updates     ${info.pending_update_count}`,
    `  max_connections     ${info.max_connections ?? '(not reported)'}`,
    `  allowed_updates     ${allowed}`,
  ]
  if (info.ip_address !== undefined) lines.push(`  ip_address          ${info.ip_address}`)
  if (info.last_error_date !== undefined || info.last_error_message !== undefined) {
    const date = info.last_error_date === undefined ? '' : `${when(info.last_error_date)}: `
    lines.push(`  last error          ${date}${info.last_error_message ?? ''}`)
  }
  if (info.last_synchronization_error_date !== undefined)
    lines.push(`  last sync error     ${when(info.last_synchronization_error_date)}`)
  return lines
}

export async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...API_OPTIONS, 'max-pending': { type: 'string' }, json: { type: 'boolean' } },
    true,
  )
  const maxPending = values['max-pending'] === undefined ? DEFAULT_MAX_PENDING : Number(values['max-pending'])
  if (!Number.isInteger(maxPending) || maxPending < 0)
    throw new UsageError('--max-pending must be a whole number')
  const context = botContext('webhook-info', positionals, values)
  if (typeof context === 'number') return context
  const result = await context.api.call<WebhookInfo>('getWebhookInfo')
  if (result.kind !== 'ok') {
    fail(
      'webhook-info',
      `Telegram refused getWebhookInfo for bot ${context.bot.name}: ${describeFailure(result, context.apiBase)}`,
    )
    return 1
  }
  const info = result.result
  if (values.json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`)
    return 0
  }
  const lines = describeWebhook(context.bot.name, info)
  const warnings = webhookWarnings(context, info, maxPending)
  if (warnings.length > 0) lines.push('warnings:', ...warnings.map((warning) => `  - ${warning}`))
  else lines.push('No disagreement with the config.')
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
