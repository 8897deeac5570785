/**
 * @module
 * `botgate set-webhook BOT --url URL`: registers the gateway as the bot's webhook with setWebhook
 * (https://core.telegram.org/bots/api#setwebhook), with the secret token from the config, so the
 * two can never drift apart, and `allowed_updates` from the policy, so Telegram does not send
 * what the gateway would only drop.
 */

import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import path from 'node:path'
import { describeFailure, type UploadFile } from '../telegram/bot-api.js'
import { parse, UsageError } from './args.js'
import {
  API_OPTIONS,
  API_OPTIONS_HELP,
  botContext,
  fail,
  maskWebhookUrl,
  policyAllowedUpdates,
  updatesInShadow,
} from './bot-api.js'
import { maskPath, maskSecret } from './check.js'

export const summary = "register the gateway as a bot's webhook with Telegram (setWebhook)"

export const help = `Usage: botgate set-webhook BOT --url URL [options]

Calls setWebhook for the bot named BOT in the config, with its token (token or token_file):
  url              --url; a URL without a path gets the bot's path from the config
  secret_token     the bot's secret_token from the config (never printed)
  allowed_updates  the policy's updates.allow; without one (or with updates in shadow mode)
                   it is not sent, and Telegram keeps the list it has
  max_connections, ip_address, drop_pending_updates, certificate: from the options below

Options:
  --url URL                the public HTTPS URL Telegram posts to (required); Telegram accepts
                           the ports 443, 80, 88 and 8443
  --certificate FILE       upload this PEM certificate: needed when it is self-signed
  --ip-address IP          the fixed IP address Telegram sends to instead of resolving the host
  --max-connections N      1-100 connections Telegram may open at once (Telegram's default: 40)
  --drop-pending-updates   drop the updates waiting for delivery
  --force                  set a URL whose path differs from the bot's (a proxy rewrites it)
${API_OPTIONS_HELP}`

/** setWebhook's max_connections when not given ("Defaults to 40"). */
const TELEGRAM_DEFAULT_CONNECTIONS = 40

/** The ports setWebhook accepts ("Ports currently supported for webhooks", setWebhook). */
const WEBHOOK_PORTS = new Set(['', '443', '80', '88', '8443'])

function readCertificate(file: string): UploadFile | string {
  let content: Buffer
  try {
    content = readFileSync(file)
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`
  }
  // The certificate is public; its key must never leave the machine.
  if (content.includes('PRIVATE KEY'))
    return `${file} holds a private key: give the certificate (tls.cert_file), never its key`
  try {
    new X509Certificate(content)
  } catch {
    return `${file} does not hold a PEM certificate`
  }
  return { filename: path.basename(file), content, type: 'application/x-pem-file' }
}

export async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...API_OPTIONS,
      url: { type: 'string' },
      certificate: { type: 'string' },
      'ip-address': { type: 'string' },
      'max-connections': { type: 'string' },
      'drop-pending-updates': { type: 'boolean' },
      force: { type: 'boolean' },
    },
    true,
  )
  if (values.url === undefined) throw new UsageError('--url is required: the public HTTPS URL of the gateway')
  let url: URL
  try {
    url = new URL(values.url)
  } catch {
    throw new UsageError(`--url must be a URL such as https://bot.example.com, not "${values.url}"`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new UsageError('--url must be an https URL (Telegram delivers webhooks over HTTPS only)')
  let maxConnections: number | undefined
  if (values['max-connections'] !== undefined) {
    maxConnections = Number(values['max-connections'])
    if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 100)
      throw new UsageError('--max-connections must be an integer from 1 to 100')
  }
  const ipAddress = values['ip-address']
  if (ipAddress !== undefined && isIP(ipAddress) === 0)
    throw new UsageError(`--ip-address must be an IP address, not "${ipAddress}"`)

  const context = botContext('set-webhook', positionals, values)
  if (typeof context === 'number') return context
  const { bot, config, api, apiBase } = context

  if (url.pathname === '/') url.pathname = bot.path
  else if (url.pathname !== bot.path && !values.force) {
    fail(
      'set-webhook',
      `the URL's path is not bot ${bot.name}'s path ${maskPath(bot.path)}: the gateway would answer Telegram 404. Give the URL without a path to use the bot's, or add --force if a proxy rewrites the path.`,
    )
    return 1
  }
  const warnings: string[] = []
  if (url.protocol === 'http:')
    warnings.push("the URL is plain http: Telegram's servers accept only https (a local Bot API server may)")
  if (!WEBHOOK_PORTS.has(url.port))
    warnings.push(`port ${url.port} is not one Telegram delivers to (443, 80, 88, 8443)`)
  if (maxConnections !== undefined && maxConnections > bot.maxInflight)
    warnings.push(
      `max_connections ${maxConnections} is above the bot's max_inflight ${bot.maxInflight}: the gateway may answer 503 when Telegram uses them all`,
    )
  if (maxConnections === undefined && bot.maxInflight < TELEGRAM_DEFAULT_CONNECTIONS)
    warnings.push(
      `Telegram opens up to ${TELEGRAM_DEFAULT_CONNECTIONS} connections by default, above the bot's max_inflight ${bot.maxInflight}: pass --max-connections ${bot.maxInflight}`,
    )

  const files: Record<string, UploadFile> = {}
  if (values.certificate !== undefined) {
    const certificate = readCertificate(values.certificate)
    if (typeof certificate === 'string') {
      fail('set-webhook', certificate)
      return 1
    }
    files.certificate = certificate
  } else if (config.tls?.selfSigned) {
    warnings.push(
      `the gateway's certificate (tls.cert_file) is self-signed: Telegram accepts it only if uploaded, with --certificate ${path.relative(process.cwd(), config.tls.certFile)}`,
    )
  }

  // allowed_updates: "If not specified, the previous setting will be used" (setWebhook).
  const policyAllow = policyAllowedUpdates(bot)
  const shadow = updatesInShadow(bot)
  const allowedUpdates = policyAllow !== undefined && !shadow ? policyAllow : undefined

  const params = {
    url: url.href,
    secret_token: bot.secretToken,
    allowed_updates: allowedUpdates,
    max_connections: maxConnections,
    ip_address: ipAddress,
    drop_pending_updates: values['drop-pending-updates'] ? true : undefined,
  }
  const result = await api.call<boolean>('setWebhook', params, files)
  if (result.kind !== 'ok') {
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`)
    fail(
      'set-webhook',
      `Telegram refused setWebhook for bot ${bot.name}: ${describeFailure(result, apiBase)}`,
    )
    return 1
  }
  const allowedText =
    allowedUpdates !== undefined
      ? `${allowedUpdates.length === 0 ? "[] (Telegram's default set)" : allowedUpdates.join(', ')} (the policy's updates.allow)`
      : shadow && policyAllow !== undefined
        ? "not sent: the policy's updates section is in shadow mode, so Telegram keeps sending every type it did"
        : 'not sent: the policy has no updates.allow; Telegram keeps the list it has'
  const lines = [
    `Webhook set for bot ${bot.name}${result.description === undefined ? '' : ` (Telegram: ${result.description})`}`,
    `  url              ${maskWebhookUrl(url)}`,
    `  secret_token     the bot's, from the config: ${maskSecret(bot.secretToken)}`,
    `  allowed_updates  ${allowedText}`,
    `  max_connections  ${maxConnections ?? `not sent (Telegram's default: ${TELEGRAM_DEFAULT_CONNECTIONS})`}`,
  ]
  if (ipAddress !== undefined) lines.push(`  ip_address       ${ipAddress}`)
  if (files.certificate !== undefined) lines.push(`  certificate      ${files.certificate.filename} uploaded`)
  if (params.drop_pending_updates) lines.push('  pending updates  dropped')
  if (warnings.length > 0) lines.push('warnings:', ...warnings.map((warning) => `  - ${warning}`))
  lines.push(`Check it with: botgate webhook-info ${bot.name}`)
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
