/**
 * @module
 * What the admin listener serves besides health and metrics (src/observe/admin.ts):
 *
 * - `GET /.well-known/jwks.json`: the public keys of signed forwards (RFC 7517 section 5), for
 *   upstreams that verify EdDSA / ES256 tokens; public, like any JWKS.
 * - `/api/v1/...`: the admin API (blocks, src/admin/blocks.ts), authenticated with JWTs
 *   (src/admin/auth.ts). Without `admin.api` in the config it does not exist: every route under
 *   /api answers 404 `unknown_route`, exactly like a path that was never there, so an unconfigured
 *   gateway offers nothing to probe.
 *
 * Its own folder because it is a unit of its own: authentication, request validation, audit logs
 * and a set of routes that will grow, apart from the webhook's request path. The admin app is
 * built once and outlives reloads; what depends on the config (keys, bots, the JWKS) is an
 * {@link AdminState} built with each config and read per call.
 */

import type { Hono } from 'hono'
import { mountBlockRoutes } from './blocks.js'
import type { AdminApiDeps } from './state.js'

export { type AdminApiDeps, type AdminState, buildAdminState } from './state.js'

/** RFC 7517 section 8.5. Verifiers cache it; a new key should be published this long before it signs. */
const JWKS_HEADERS = {
  'content-type': 'application/jwk-set+json',
  'cache-control': 'public, max-age=300',
}

export function mountAdminApi(app: Hono, deps: AdminApiDeps): void {
  app.get('/.well-known/jwks.json', (c) => c.body(deps.state().jwks, 200, JWKS_HEADERS))
  app.use('/api/*', async (c, next) => {
    if (deps.state().auth === undefined) return c.json({ ok: false, error: 'unknown_route' }, 404)
    c.header('cache-control', 'no-store')
    return next()
  })
  mountBlockRoutes(app, deps)
}
