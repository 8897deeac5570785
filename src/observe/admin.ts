/**
 * @module
 * The admin listener's app, on its own port and never on the webhook listener:
 * `/healthz` (the process is alive), `/readyz` (it should receive traffic), `/metrics` (Prometheus),
 * and the routes `extend` adds (the JWKS and the admin API, src/admin).
 */

import { Hono } from 'hono'
import type { GatewayMetrics } from './metrics.js'

/** Readiness and its parts, e.g. `{ config: 'loaded', listener: 'draining' }`. */
export interface Readiness {
  readonly ready: boolean
  readonly checks: Readonly<Record<string, string>>
}

export interface AdminDeps {
  readonly metrics: GatewayMetrics
  readonly readiness: () => Readiness
  /** Adds routes to the app (src/admin: the JWKS and the admin API). */
  readonly extend?: (app: Hono) => void
}

export function buildAdminApp(deps: AdminDeps): Hono {
  const app = new Hono()
  app.get('/healthz', (c) => c.json({ ok: true }))
  app.get('/readyz', (c) => {
    const { ready, checks } = deps.readiness()
    return c.json({ ok: ready, ...checks }, ready ? 200 : 503)
  })
  app.get('/metrics', (c) =>
    c.body(deps.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  )
  deps.extend?.(app)
  app.notFound((c) => c.json({ ok: false, error: 'unknown_route' }, 404))
  return app
}
