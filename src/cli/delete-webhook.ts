/**
 * @module
 * `botgate delete-webhook BOT`: removes the bot's webhook with deleteWebhook
 * (https://core.telegram.org/bots/api#deletewebhook), optionally dropping pending updates.
 */

import { describeFailure } from '../telegram/bot-api.js'
import { parse } from './args.js'
import { API_OPTIONS, API_OPTIONS_HELP, botContext, fail } from './bot-api.js'

export const summary = "remove a bot's webhook from Telegram (deleteWebhook)"

export const help = `Usage: botgate delete-webhook BOT [--drop-pending-updates] [options]

Calls deleteWebhook for the bot named BOT in the config, with its token (token or token_file).
Telegram then keeps the bot's updates for getUpdates, and the gateway receives nothing for this
bot until botgate set-webhook runs again.

Options:
  --drop-pending-updates   drop the updates waiting for delivery
${API_OPTIONS_HELP}`

export async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...API_OPTIONS, 'drop-pending-updates': { type: 'boolean' } },
    true,
  )
  const context = botContext('delete-webhook', positionals, values)
  if (typeof context === 'number') return context
  const drop = values['drop-pending-updates'] === true
  const result = await context.api.call<boolean>('deleteWebhook', {
    drop_pending_updates: drop ? true : undefined,
  })
  if (result.kind !== 'ok') {
    fail(
      'delete-webhook',
      `Telegram refused deleteWebhook for bot ${context.bot.name}: ${describeFailure(result, context.apiBase)}`,
    )
    return 1
  }
  const told = result.description === undefined ? '' : ` (Telegram: ${result.description})`
  process.stdout.write(
    `Webhook deleted for bot ${context.bot.name}${told}${drop ? '; pending updates dropped' : ''}\n` +
      `The gateway receives nothing for ${context.bot.name} until botgate set-webhook runs again.\n`,
  )
  return 0
}
