/**
 * @module
 * Policy section `sources` (check 2): the client address must be in `sources.allow`.
 *
 * Entries are CIDR networks, single addresses, the named set `telegram`, or `any`. The set is
 * built once; per request this is a few integer masks. A refusal whose socket peer sits in a
 * private range that is not in `trusted_proxies` is logged with a hint: that is almost always a
 * reverse proxy or ingress in front of the gateway whose X-Forwarded-For is being ignored.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { RequestCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { reject } from '../../pipeline/verdict.js'
import { type Cidr, CidrSet, PRIVATE_NETWORKS, parseCidr } from '../../request/ip.js'
import { SectionMode } from '../mode.js'

/**
 * Telegram's webhook source ranges. Telegram documents them at
 * https://core.telegram.org/bots/webhooks ("149.154.160.0/20 and 91.108.4.0/22") and says they may
 * change: when they do, this list (and the README) is the one place to update.
 */
export const TELEGRAM_NETWORKS: readonly string[] = ['149.154.160.0/20', '91.108.4.0/22']

export const sourcesSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    allow: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        "Who may deliver updates: CIDR networks, single addresses, `telegram` (Telegram's published ranges) or `any`.",
      errorMessage: { minItems: 'must not be empty (write [any] to allow every address explicitly)' },
    }),
  },
  {
    additionalProperties: false,
    default: { allow: ['telegram'] },
    description: 'Check 2: the client address must be in this list (else 403). Default: [telegram].',
  },
)

export type SourcesPolicy = Static<typeof sourcesSchema>

/** An entry of `allow` that is not valid, with its index and the message for the user. */
export interface SourceProblem {
  readonly index: number
  readonly message: string
}

/** Parses `allow` into networks; `problems` lists every entry that is not valid. */
export function parseSources(allow: readonly string[]): {
  any: boolean
  cidrs: Cidr[]
  problems: SourceProblem[]
} {
  let any = false
  const cidrs: Cidr[] = []
  const problems: SourceProblem[] = []
  for (const [index, entry] of allow.entries()) {
    if (entry === 'any') any = true
    else if (entry === 'telegram') cidrs.push(...TELEGRAM_NETWORKS.map((text) => parseCidr(text) as Cidr))
    else if (!/^[0-9a-fA-F:.]+(\/[0-9]+)?$/.test(entry)) {
      problems.push({ index, message: `"${entry}" is not an address, a CIDR network, telegram or any` })
    } else {
      const cidr = parseCidr(entry)
      if (typeof cidr === 'string') problems.push({ index, message: cidr })
      else cidrs.push(cidr)
    }
  }
  return { any, cidrs, problems }
}

const IP_NOT_ALLOWED = reject(403, 'ip_not_allowed')
const PROXY_HINT =
  'the peer is a private address not in trusted_proxies: if it is your reverse proxy or ingress, add it to trusted_proxies'

export function createSourcesCheck(policy: SourcesPolicy, shadow: boolean): RequestCheck {
  // The loader has reported any problem in `allow` already; a config with problems never runs.
  const parsed = parseSources(policy.allow)
  const allowed = new CidrSet(parsed.cidrs)
  if (parsed.any) return { name: 'sources', shadow, run: () => undefined }
  return {
    name: 'sources',
    shadow,
    run(exchange: Exchange) {
      const client = exchange.client
      if (client?.ip !== undefined && allowed.has(client.ip)) return undefined
      const peer = client?.peer
      if (peer !== undefined && !client?.trustedPeer && PRIVATE_NETWORKS.has(peer))
        exchange.detail = PROXY_HINT
      return IP_NOT_ALLOWED
    },
  }
}
