/** botgate's version, from package.json (one source of truth for `--version`, metrics and the JWT issuer). */

import { readFileSync } from 'node:fs'

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version
