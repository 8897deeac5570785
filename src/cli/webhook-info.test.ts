import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { BotConfig, GatewayConfig } from '../config/load.js'
import { loadConfig } from '../config/load.js'
import type { Policy } from '../policy/schema.js'
import { BotApi, type WebhookInfo } from '../telegram/bot-api.js'
import { type BotContext, policyAllowedUpdates } from './bot-api.js'
import { webhookWarnings } from './webhook-info.js'

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/config')
const ENV = { SECRET: 'AAAAAAAAAAAAAAAAAAAA_-0123456789abcdefghijklmnopqrstuvwxyz' }

/** The valid-ops fixture's bot with another policy; `updates.allow` is cast in, as a later policy schema has it. */
function context(policy: Record<string, unknown>): BotContext {
  const config: GatewayConfig = loadConfig(path.join(FIXTURES, 'valid-ops.yaml'), { env: ENV })
  const bot: BotConfig = { ...(config.bots[0] as BotConfig), policy: policy as Policy }
  return { configFile: 'gateway.yaml', config, bot, apiBase: 'http://127.0.0.1:1', api: new BotApi('1:x') }
}

const INFO: WebhookInfo = {
  url: 'https://bot.example.com/tg/abcdefghijklmnopqrstuvwxyz012345',
  has_custom_certificate: true,
  pending_update_count: 0,
  max_connections: 40,
}

describe('policyAllowedUpdates', () => {
  it('reads updates.allow when it is a list of strings, and nothing else', () => {
    expect(policyAllowedUpdates(context({ updates: { allow: ['message'] } }).bot)).toEqual(['message'])
    expect(policyAllowedUpdates(context({ updates: { max_body: '1KiB' } }).bot)).toBeUndefined()
    expect(policyAllowedUpdates(context({ updates: { allow: 'message' } }).bot)).toBeUndefined()
    expect(policyAllowedUpdates(context({ updates: { allow: ['message', 7] } }).bot)).toBeUndefined()
    expect(policyAllowedUpdates(context({}).bot)).toBeUndefined()
  })
})

describe('webhookWarnings', () => {
  it("compares Telegram's update types with the policy's, both ways", () => {
    const warnings = webhookWarnings(
      context({ updates: { allow: ['message', 'callback_query', 'chat_member'] } }),
      { ...INFO, allowed_updates: ['message', 'edited_message', 'callback_query'] },
      100,
    )
    expect(warnings).toEqual([
      'Telegram sends edited_message, which the policy drops: run botgate set-webhook to stop them at the source',
      'the policy allows chat_member, which Telegram does not send: run botgate set-webhook to subscribe',
    ])
  })

  it("takes Telegram's default list when WebhookInfo has none", () => {
    const warnings = webhookWarnings(
      context({ updates: { allow: ['message', 'message_reaction'] } }),
      INFO,
      100,
    )
    expect(warnings[0]).toMatch(/^Telegram sends edited_message, channel_post, .*, which the policy drops/)
    expect(warnings[0]).not.toMatch(/[ ,]chat_member[ ,]/)
    expect(warnings[1]).toBe(
      'the policy allows message_reaction, which Telegram does not send: run botgate set-webhook to subscribe',
    )
  })

  it('does not ask to narrow the subscription while the updates section is in shadow mode', () => {
    const warnings = webhookWarnings(
      context({ updates: { mode: 'shadow', allow: ['message'] } }),
      { ...INFO, allowed_updates: ['message', 'callback_query'] },
      100,
    )
    expect(warnings).toEqual([])
  })

  it('agrees with a registration that matches the config', () => {
    expect(webhookWarnings(context({}), INFO, 100)).toEqual([])
  })
})
