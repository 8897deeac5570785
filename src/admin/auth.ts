/**
 * @module
 * Authentication of admin API calls: `Authorization: Bearer <JWT>` (RFC 6750 section 2.1),
 * verified with jose's `jwtVerify` against the keys of `admin.api.keys`.
 *
 * A token is accepted when, all at once (RFC 7519 section 7.2; jose docs, "jwtVerify"):
 * - its header names a configured key with `kid` and uses that key's algorithm (`alg` is pinned
 *   per key, so a token cannot pick another algorithm, e.g. HS256 keyed with a public key);
 * - its signature verifies with that key;
 * - `aud` contains `admin.api.audience`, and `iss` equals `admin.api.issuer` when one is set;
 * - `exp` is present and not past, `iat` is present and not older than `max_token_age`
 *   (so even a token minted with a far `exp` is short-lived), `nbf`, if any, is not in the future.
 * Then the route's scope must be in its `scope` claim, a space-separated list (RFC 8693 section
 * 4.2): `blocks:read` to list, `blocks:write` to block and unblock.
 *
 * Failures answer 401 (no or bad token) or 403 (good token, scope missing), with the
 * `WWW-Authenticate` challenge of RFC 6750 section 3 and nothing else; the reason goes to the log,
 * never the token.
 */

import { errors, type JWTVerifyGetKey, jwtVerify } from 'jose'
import type { AdminApiConfig } from '../config/keys.js'
import type { Clock } from '../store/index.js'
import { systemClock } from '../store/index.js'

export type Scope = 'blocks:read' | 'blocks:write'

/** Who called: from the verified token, for the audit log. */
export interface Principal {
  readonly sub: string | undefined
  readonly jti: string | undefined
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | {
      readonly ok: false
      readonly status: 401 | 403
      readonly error: 'unauthorized' | 'forbidden'
      /** RFC 6750 section 3. */
      readonly challenge: string
      /** Why, for the log: a jose error code or a short phrase; never token content. */
      readonly problem: string
    }

export type Authenticator = (authorization: string | undefined, scope: Scope) => Promise<AuthResult>

/** Clock skew allowed on exp, nbf and iat between the token's issuer and the gateway. */
const CLOCK_TOLERANCE_S = 5
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i
const REALM = 'Bearer realm="botgate"'

function unauthorized(problem: string, withError: boolean): AuthResult {
  return {
    ok: false,
    status: 401,
    error: 'unauthorized',
    // RFC 6750 section 3.1: a request without credentials gets the bare challenge, no error code.
    challenge: withError ? `${REALM}, error="invalid_token"` : REALM,
    problem,
  }
}

export function createAuthenticator(config: AdminApiConfig, clock: Clock = systemClock): Authenticator {
  const algorithms = [...new Set([...config.keys.values()].map((key) => key.alg))]
  const getKey: JWTVerifyGetKey = (header) => {
    const key = header.kid === undefined ? undefined : config.keys.get(header.kid)
    if (key === undefined || key.alg !== header.alg) throw new errors.JWKSNoMatchingKey()
    return key.key
  }
  return async (authorization, scope) => {
    if (authorization === undefined || authorization === '') return unauthorized('no token', false)
    const token = BEARER.exec(authorization)?.[1]
    if (token === undefined) return unauthorized('not a bearer token', true)
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload']
    try {
      ;({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        audience: config.audience,
        ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
        requiredClaims: ['exp'],
        maxTokenAge: config.maxTokenAgeS,
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(clock()),
      }))
    } catch (error) {
      const code = error instanceof errors.JOSEError ? error.code : 'ERR_INVALID'
      const claim =
        error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired
          ? ` (${error.claim})`
          : ''
      return unauthorized(`${code}${claim}`, true)
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : []
    if (!scopes.includes(scope)) {
      return {
        ok: false,
        status: 403,
        error: 'forbidden',
        challenge: `${REALM}, error="insufficient_scope", scope="${scope}"`,
        problem: `scope ${scope} missing`,
      }
    }
    return {
      ok: true,
      principal: {
        sub: typeof payload.sub === 'string' ? payload.sub : undefined,
        jti: typeof payload.jti === 'string' ? payload.jti : undefined,
      },
    }
  }
}
