/**
 * @module
 * The `botgate` command: dispatches to one module per subcommand; each exports its help text and
 * its `run`, which returns the exit code (0 ok, 1 failure such as a bad config, 2 usage error).
 */

import { VERSION } from '../version.js'
import { UsageError } from './args.js'
import * as check from './check.js'
import * as deleteWebhook from './delete-webhook.js'
import * as demo from './demo.js'
import * as queue from './queue.js'
import * as schema from './schema.js'
import * as secret from './secret.js'
import * as serve from './serve.js'
import * as setWebhook from './set-webhook.js'
import * as webhookInfo from './webhook-info.js'

interface Command {
  readonly summary: string
  readonly help: string
  run(args: readonly string[]): Promise<number> | number
}

const COMMANDS: Readonly<Record<string, Command>> = {
  serve,
  check,
  secret,
  schema,
  demo,
  'set-webhook': setWebhook,
  'webhook-info': webhookInfo,
  'delete-webhook': deleteWebhook,
  queue,
}

const HELP = `botgate ${VERSION}: a security gateway in front of Telegram bot webhooks

Usage: botgate <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(14)} ${command.summary}`)
  .join('\n')}

Options:
  -h, --help     show help (also: botgate <command> --help)
  -v, --version  print the version

The config file is --config FILE, else $BOTGATE_CONFIG, else ./gateway.yaml.
set-webhook, webhook-info and delete-webhook call the Bot API at --api-base URL, else
$BOTGATE_API_BASE, else https://api.telegram.org, with the bot's token from the config.
`

export async function run(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`)
    return 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`botgate: unknown command "${name}"\n\n${HELP}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`botgate ${name}: ${error.message}\n\n${command.help}`)
      return 2
    }
    throw error
  }
}
