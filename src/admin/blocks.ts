/**
 * @module
 * The blocks routes of the admin API (docs/admin-api.md):
 *
 *   GET    /api/v1/blocks[?bot=NAME]          scope blocks:read   -> {"ok":true,"blocks":[Block...]}
 *   PUT    /api/v1/blocks/:bot/:kind/:id      scope blocks:write  {"duration":"2h","note":"..."}
 *                                                                -> {"ok":true,"block":Block}
 *   DELETE /api/v1/blocks/:bot/:kind/:id      scope blocks:write  -> {"ok":true,"removed":true|false}
 *
 * `kind` is chat or user; `id` a Telegram chat or user id (chat ids of groups are negative). A
 * Block is {"bot","kind","id","until" (ISO 8601),"expires_in" (seconds),"note"?,"by"?}; `by` is
 * the token's `sub`. Errors are {"ok":false,"error":"<code>"} (400s add a `detail` about the
 * request itself). Every change is logged as an audit line with the token's `sub` and `jti`.
 */

import type { Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { type Block, type BlockKind, MAX_BLOCK_MS } from '../blocks/index.js'
import { DURATION_PATTERN, parseDuration } from '../config/units.js'
import { StoreError } from '../store/index.js'
import type { Principal, Scope } from './auth.js'
import type { AdminApiDeps } from './state.js'

export type AdminError =
  | 'unauthorized'
  | 'forbidden'
  | 'unknown_route'
  | 'unknown_bot'
  | 'invalid_request'
  | 'too_many_blocks'
  | 'store_unavailable'

const BLOCK_PATH = '/api/v1/blocks/:bot/:kind/:id'
const BOT_NAME = /^[a-z0-9_-]{1,64}$/
/** Chat and user ids fit in 52 bits (SPEC section 1): at most 16 digits. */
const ID = /^-?[0-9]{1,16}$/
const DURATION = new RegExp(DURATION_PATTERN)
const MAX_NOTE = 200
const MAX_BODY = 4096

type Target = { readonly bot: string; readonly kind: BlockKind; readonly id: number }

function fail(
  c: Context,
  status: 400 | 401 | 403 | 404 | 409 | 413 | 503,
  error: AdminError,
  detail?: string,
) {
  return c.json(detail === undefined ? { ok: false, error } : { ok: false, error, detail }, status)
}

function blockJson(block: Block, ttlMs: number) {
  return {
    bot: block.bot,
    kind: block.kind,
    id: block.id,
    until: new Date(block.until).toISOString(),
    expires_in: Math.ceil(ttlMs / 1000),
    note: block.note,
    by: block.by,
  }
}

/** The duration and note of a PUT body, or what is wrong with it. */
function parseBlockBody(text: string): { durationMs: number; note: string | undefined } | string {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return 'the body must be a JSON object: {"duration":"2h","note":"..."}'
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body must be a JSON object: {"duration":"2h","note":"..."}'
  const { duration, note, ...rest } = body as Record<string, unknown>
  const unknown = Object.keys(rest)[0]
  if (unknown !== undefined) return `unknown field "${unknown}"; known: duration, note`
  const durationMs = typeof duration === 'string' && DURATION.test(duration) ? parseDuration(duration) : 0
  if (durationMs < 1000 || durationMs > MAX_BLOCK_MS)
    return 'duration must be a duration like 30m, 12h or 7d, from 1s to 365d'
  if (note !== undefined && (typeof note !== 'string' || note.length > MAX_NOTE))
    return `note must be a string of at most ${MAX_NOTE} characters`
  return { durationMs, note }
}

export function mountBlockRoutes(app: Hono, deps: AdminApiDeps): void {
  const { blocks, logger } = deps

  /** Runs `handler` once the token holds `scope`; store failures answer 503. */
  const guarded =
    (scope: Scope, handler: (c: Context, principal: Principal) => Promise<Response>) =>
    async (c: Context) => {
      const auth = deps.state().auth
      if (auth === undefined) return fail(c, 404, 'unknown_route')
      const result = await auth(c.req.header('authorization'), scope)
      if (!result.ok) {
        logger.warn(
          { admin: `${c.req.method} ${c.req.path}`, status: result.status, problem: result.problem },
          'admin request refused',
        )
        c.header('www-authenticate', result.challenge)
        return fail(c, result.status, result.error)
      }
      try {
        return await handler(c, result.principal)
      } catch (error) {
        if (!(error instanceof StoreError)) throw error
        logger.error({ admin: `${c.req.method} ${c.req.path}`, err: error }, 'admin request failed: store')
        return fail(c, 503, 'store_unavailable')
      }
    }

  /** The bot, kind and id of a block path, or the answer that refuses them. */
  const target = (c: Context, configured: boolean): Target | Response => {
    const bot = c.req.param('bot') ?? ''
    const kind = c.req.param('kind')
    const text = c.req.param('id') ?? ''
    if (kind !== 'chat' && kind !== 'user')
      return fail(c, 400, 'invalid_request', 'kind must be chat or user')
    const id = Number(text)
    if (!ID.test(text) || !Number.isSafeInteger(id))
      return fail(c, 400, 'invalid_request', 'id must be an integer chat or user id')
    // Lifting a block also works for a bot no longer configured, to clean up after a rename.
    if (configured ? !deps.state().bots.has(bot) : !BOT_NAME.test(bot)) return fail(c, 404, 'unknown_bot')
    return { bot, kind, id }
  }

  app.get(
    '/api/v1/blocks',
    guarded('blocks:read', async (c) => {
      const bot = c.req.query('bot')
      const list = await blocks.list(bot)
      return c.json({ ok: true, blocks: list.map((block) => blockJson(block, block.ttlMs)) })
    }),
  )

  app.put(
    BLOCK_PATH,
    bodyLimit({ maxSize: MAX_BODY, onError: (c) => fail(c, 413, 'invalid_request', 'body over 4 KiB') }),
    guarded('blocks:write', async (c, principal) => {
      const where = target(c, true)
      if (where instanceof Response) return where
      const body = parseBlockBody(await c.req.text())
      if (typeof body === 'string') return fail(c, 400, 'invalid_request', body)
      const block = await blocks.block(where.bot, where.kind, where.id, body.durationMs, {
        note: body.note,
        by: principal.sub,
      })
      if (block === undefined) return fail(c, 409, 'too_many_blocks')
      logger.info(
        {
          admin: 'block',
          bot: block.bot,
          kind: block.kind,
          id: block.id,
          until: new Date(block.until).toISOString(),
          note: block.note,
          sub: principal.sub,
          jti: principal.jti,
        },
        'block set',
      )
      return c.json({ ok: true, block: blockJson(block, block.until - block.at) })
    }),
  )

  app.delete(
    BLOCK_PATH,
    guarded('blocks:write', async (c, principal) => {
      const where = target(c, false)
      if (where instanceof Response) return where
      const removed = await blocks.unblock(where.bot, where.kind, where.id)
      logger.info(
        { admin: 'unblock', ...where, removed, sub: principal.sub, jti: principal.jti },
        'block lifted',
      )
      return c.json({ ok: true, removed })
    }),
  )
}
