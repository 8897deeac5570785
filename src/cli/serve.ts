/**
 * @module
 * `botgate serve`: run the gateway until SIGTERM or SIGINT (drain, then exit 0); SIGHUP reloads.
 */

import { ConfigError } from '../config/errors.js'
import type { LoadOptions } from '../config/load.js'
import { Gateway } from '../server/gateway.js'
import { CONFIG_OPTION, defaultConfigFile, parse } from './args.js'

export const summary = 'run the gateway'

export const help = `Usage: botgate serve [--config FILE]

Runs the gateway with the config file until SIGTERM or SIGINT, which drain in-flight requests
(within shutdown_grace) and exit 0. SIGHUP, or a change to the config, a policy or a secret file,
reloads the config; an invalid change is refused and logged, and the running config stays.

  -c, --config FILE   the config file (default: $BOTGATE_CONFIG, else ./gateway.yaml)
`

/** Runs a gateway until a stop signal; shared by serve and demo. Resolves to the exit code. */
export async function serveUntilSignal(
  configFile: string,
  options: LoadOptions = {},
  onStart?: (gateway: Gateway) => void,
): Promise<number> {
  let gateway: Gateway
  try {
    gateway = await Gateway.start({ ...options, configFile })
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      return 1
    }
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      process.stderr.write(`botgate: cannot listen: ${(error as Error).message}\n`)
      return 1
    }
    throw error
  }
  onStart?.(gateway)
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGHUP', reload)
      gateway.shutdown(signal).then(
        () => resolve(0),
        (error: unknown) => {
          gateway.logger.error({ err: error }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    const reload = () => void gateway.reload('SIGHUP')
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    process.on('SIGHUP', reload)
  })
}

export function run(args: readonly string[]): Promise<number> {
  const { values } = parse(args, CONFIG_OPTION)
  return serveUntilSignal(defaultConfigFile(values.config))
}
