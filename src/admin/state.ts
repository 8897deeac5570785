/**
 * @module
 * What the admin routes read per call: the config-dependent {@link AdminState}, rebuilt with each
 * config generation, and the long-lived parts beside it. Its own file so that the routes of each
 * area (src/admin/blocks.ts, ...) and the app that mounts them (src/admin/index.ts) both depend on
 * it, and not on each other.
 */

import type { Blocks } from '../blocks/index.js'
import type { GatewayConfig } from '../config/load.js'
import type { Logger } from '../observe/logger.js'
import { type Authenticator, createAuthenticator } from './auth.js'

/** The config-dependent part of the admin listener; rebuilt with each config generation. */
export interface AdminState {
  /** Undefined: `admin.api` is not configured and the API does not exist. */
  readonly auth: Authenticator | undefined
  /** The JWKS document, serialised once. */
  readonly jwks: string
  readonly bots: ReadonlySet<string>
}

export function buildAdminState(config: GatewayConfig): AdminState {
  return {
    auth: config.adminApi === undefined ? undefined : createAuthenticator(config.adminApi),
    jwks: JSON.stringify({ keys: config.jwks }),
    bots: new Set(config.bots.map((bot) => bot.name)),
  }
}

export interface AdminApiDeps {
  readonly state: () => AdminState
  readonly blocks: Blocks
  readonly logger: Logger
}
