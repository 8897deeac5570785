/**
 * @module
 * `botgate demo`: gateway.example.yaml in front of a built-in echo bot, on loopback only, with a
 * ready-to-paste curl line. Variables the example needs and the environment does not set (secret
 * token, path segment, upstream secret) are generated for this run.
 */

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BotConfig, GatewayConfig } from '../config/load.js'
import type { Gateway } from '../server/gateway.js'
import { parse } from './args.js'
import { type DemoBot, startDemoBot } from './demo-bot.js'
import { newPathSegment, newSecret } from './secret.js'
import { serveUntilSignal } from './serve.js'

export const summary = 'run gateway.example.yaml in front of a demo echo bot, and print a curl to try'

export const help = `Usage: botgate demo [--config FILE]

Starts the example config (gateway.example.yaml by default) on 127.0.0.1 in front of a built-in
echo bot listening on the first bot's upstream URL, and prints a curl command that sends an update
through the gateway. Environment variables the config needs but that are not set are generated for
this run (secrets and path segments). The demo lets loopback addresses through the sources check
so the curl works; a real deployment keeps sources at [telegram]. Stop it with Ctrl-C.

  -c, --config FILE   the config to demo (default: the shipped gateway.example.yaml)
`

export const EXAMPLE_CONFIG = fileURLToPath(new URL('../../gateway.example.yaml', import.meta.url))

/** Names of `${NAME}` references without a default, which must be set for the config to load. */
export function requiredVariables(text: string): string[] {
  const names = new Set<string>()
  for (const match of text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(match[1] as string)
  return [...names]
}

/** The demo's changes to a loaded config: loopback only, and loopback allowed as a source. */
export function demoConfig(config: GatewayConfig): GatewayConfig {
  const loopback = (port: number) => ({ host: '127.0.0.1', port })
  const bots = config.bots.map(
    (bot): BotConfig => ({
      ...bot,
      policy: {
        ...bot.policy,
        sources: { ...bot.policy.sources, allow: [...(bot.policy.sources?.allow ?? []), '127.0.0.1', '::1'] },
      },
    }),
  )
  return {
    ...config,
    listen: loopback(config.listen.port),
    adminListen: loopback(config.adminListen.port),
    bots,
  }
}

const SAMPLE_UPDATE = {
  update_id: 1,
  message: {
    message_id: 1,
    date: 1700000000,
    chat: { id: 42, type: 'private', first_name: 'Demo' },
    from: { id: 42, is_bot: false, first_name: 'Demo' },
    text: '/start hello',
    entities: [{ type: 'bot_command', offset: 0, length: 6 }],
  },
}

function curlLine(gateway: Gateway, bot: BotConfig, secretShown: string): string {
  return [
    `curl -sS -i -X POST 'http://${gateway.webhookAddress}${bot.path}' \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -H "X-Telegram-Bot-Api-Secret-Token: ${secretShown}" \\`,
    `  -d '${JSON.stringify(SAMPLE_UPDATE)}'`,
  ].join('\n')
}

export async function run(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string', short: 'c' } })
  const file = values.config ?? EXAMPLE_CONFIG
  const env = { ...process.env }
  const generated = new Set<string>()
  for (const name of requiredVariables(readFileSync(file, 'utf8'))) {
    if (env[name] !== undefined) continue
    env[name] = /PATH/.test(name) ? newPathSegment() : newSecret()
    generated.add(name)
  }
  let bot: DemoBot | undefined
  const code = await serveUntilSignal(file, { env, adjust: demoConfig }, (gateway) => {
    const first = gateway.config.bots[0] as BotConfig
    const upstream = first.upstream.url
    const port = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80))
    const secretVariable = requiredVariables(readFileSync(file, 'utf8')).find(
      (name) => env[name] === first.secretToken,
    )
    // Show a generated secret; a secret the user set stays theirs and is referenced by name.
    const shown =
      secretVariable === undefined || generated.has(secretVariable) ? first.secretToken : `$${secretVariable}`
    startDemoBot('127.0.0.1', port, first.upstream.secretToken).then(
      (started) => {
        bot = started
        process.stdout.write(
          `\nbotgate demo: bot "${first.name}" -> echo bot on 127.0.0.1:${port}; admin on http://${gateway.adminAddress}/metrics\nTry it:\n\n${curlLine(gateway, first, shown)}\n\nCtrl-C stops the demo.\n\n`,
        )
      },
      (error: Error) => {
        process.stderr.write(`botgate demo: cannot start the echo bot on port ${port}: ${error.message}\n`)
        process.kill(process.pid, 'SIGTERM')
      },
    )
  })
  await bot?.close()
  return code
}
