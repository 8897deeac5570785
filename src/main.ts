#!/usr/bin/env node
/**
 * botgate: a security gateway in front of Telegram bot webhooks. CLI entry point.
 */

import { run } from './cli/index.js'

process.exitCode = await run(process.argv.slice(2))
