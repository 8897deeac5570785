/**
 * @module
 * Who is the client? The socket's peer, unless that peer is one of our `trusted_proxies`: then
 * the client is read from `X-Forwarded-For`, right to left, skipping addresses we trust, so a
 * client cannot spoof its address by sending its own `X-Forwarded-For` (each proxy appends, so
 * only the right end of the list was written by someone we trust).
 */

import { type CidrSet, formatIp, type Ip, parseIp } from './ip.js'

/** The resolved client of one request. */
export interface ClientAddress {
  /** The client address, or undefined when the trusted chain handed us something that is not an address. */
  readonly ip: Ip | undefined
  /** Canonical text of `ip`, or the (truncated) token we could not parse: for logs and X-Forwarded-For. */
  readonly text: string
  /** The socket peer. */
  readonly peer: Ip | undefined
  /** Whether the peer is one of `trusted_proxies`, whose forwarding headers are believed. */
  readonly trustedPeer: boolean
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443` appear in some proxies' X-Forwarded-For; the port is not part of the address. */
function stripPort(token: string): string {
  if (token.startsWith('[')) {
    const end = token.indexOf(']')
    return end < 0 ? token : token.slice(1, end)
  }
  const colon = token.indexOf(':')
  return colon >= 0 && colon === token.lastIndexOf(':') ? token.slice(0, colon) : token
}

/**
 * Resolved addresses kept per (peer, X-Forwarded-For) text. Updates come from a few of Telegram's
 * addresses through a few proxies, so nearly every request finds its answer here instead of
 * parsing and formatting addresses again. Only short headers are kept, and the whole cache is
 * dropped when full: a sender varying the header costs only the parse it would have cost anyway.
 */
const CACHE_ENTRIES = 1024
const CACHED_HEADER_LENGTH = 200

/** Precomputed once per config: with no trusted proxies, X-Forwarded-For is never even looked at. */
export class ClientIpResolver {
  readonly #trusted: CidrSet
  readonly #cache = new Map<string, ClientAddress>()

  constructor(trusted: CidrSet) {
    this.#trusted = trusted
  }

  resolve(peerText: string | undefined, forwardedFor: string | string[] | undefined): ClientAddress {
    if (peerText === undefined || Array.isArray(forwardedFor)) return this.#resolve(peerText, forwardedFor)
    if (forwardedFor !== undefined && forwardedFor.length > CACHED_HEADER_LENGTH)
      return this.#resolve(peerText, forwardedFor)
    const key = forwardedFor === undefined ? peerText : `${peerText} ${forwardedFor}`
    let address = this.#cache.get(key)
    if (address === undefined) {
      address = this.#resolve(peerText, forwardedFor)
      if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear()
      this.#cache.set(key, address)
    }
    return address
  }

  #resolve(peerText: string | undefined, forwardedFor: string | string[] | undefined): ClientAddress {
    const peer = peerText === undefined ? undefined : parseIp(peerText)
    const trustedPeer = peer !== undefined && this.#trusted.size > 0 && this.#trusted.has(peer)
    const peerAddress: ClientAddress = {
      ip: peer,
      text: peer ? formatIp(peer) : (peerText ?? 'unknown'),
      peer,
      trustedPeer,
    }
    if (!trustedPeer || forwardedFor === undefined) return peerAddress
    // Node joins repeated X-Forwarded-For headers with ", ", which is the same list (RFC 7230 3.2.2).
    const tokens = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',')
    let last: ClientAddress = peerAddress
    for (let i = tokens.length - 1; i >= 0; i--) {
      const token = stripPort((tokens[i] as string).trim())
      if (token === '') continue
      const ip = parseIp(token)
      if (!ip) return { ip: undefined, text: token.slice(0, 64), peer, trustedPeer }
      last = { ip, text: formatIp(ip), peer, trustedPeer }
      if (!this.#trusted.has(ip)) return last
    }
    // Every hop is trusted: the leftmost one is the best we know.
    return last
  }
}
