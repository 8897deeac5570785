#!/usr/bin/env node
/**
 * botgate: a security gateway in front of Telegram bot webhooks. CLI entry point.
 */

import { run } from './cli/index.js'

// A reader that went away (`botgate schema | head`) wants no more output, which is no error to
// report. The gateway's logs do not go through this stream: they handle a closed reader themselves.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error
})

process.exitCode = await run(process.argv.slice(2))
