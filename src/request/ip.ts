/**
 * @module
 * IP addresses and CIDR sets, parsed once and matched with integer arithmetic.
 *
 * An IPv4 address is one unsigned 32-bit number; an IPv6 address is four. IPv4-mapped IPv6
 * addresses (`::ffff:a.b.c.d`, RFC 4291 section 2.5.5.2), which a dual-stack socket reports for
 * IPv4 peers, are normalised to plain IPv4 so `149.154.160.0/20` matches them.
 */

/** A parsed address. `words` holds one number for IPv4 and four (most significant first) for IPv6. */
export interface Ip {
  readonly family: 4 | 6
  readonly words: readonly number[]
}

/** Dotted quad, each part 0-255 without leading zeros (so `010` cannot mean octal 8 to one parser and ten to another). */
function parseV4Number(text: string): number {
  let value = 0
  let part = -1
  let parts = 0
  let digits = 0
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 46 /* . */
    if (code === 46) {
      if (part < 0 || parts === 4) return -1
      value = value * 256 + part
      parts++
      part = -1
      digits = 0
    } else if (code >= 48 && code <= 57) {
      if (digits > 0 && part === 0) return -1
      part = part < 0 ? code - 48 : part * 10 + code - 48
      digits++
      if (part > 255) return -1
    } else {
      return -1
    }
  }
  return parts === 4 ? value : -1
}

function parseV6Words(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45) return undefined
  const groups: number[] = []
  let gap = -1
  let i = 0
  if (text.startsWith('::')) {
    gap = 0
    i = 2
    if (text.length === 2) return [0, 0, 0, 0]
  }
  while (i < text.length) {
    const end = text.indexOf(':', i)
    const token = end < 0 ? text.slice(i) : text.slice(i, end)
    if (end < 0 && token.includes('.')) {
      const v4 = parseV4Number(token)
      if (v4 < 0) return undefined
      groups.push(v4 >>> 16, v4 & 0xffff)
      break
    }
    if (token.length === 0 || token.length > 4 || !/^[0-9a-fA-F]+$/.test(token)) return undefined
    groups.push(Number.parseInt(token, 16))
    if (end < 0) break
    if (text.charCodeAt(end + 1) === 58 /* : */) {
      if (gap >= 0) return undefined
      gap = groups.length
      i = end + 2
      if (i === text.length) break
    } else {
      i = end + 1
      if (i === text.length) return undefined
    }
  }
  if (gap >= 0) {
    if (groups.length > 7) return undefined
    groups.splice(gap, 0, ...new Array<number>(8 - groups.length).fill(0))
  } else if (groups.length !== 8) {
    return undefined
  }
  const words: number[] = []
  for (let w = 0; w < 4; w++)
    words.push(((groups[2 * w] as number) * 65536 + (groups[2 * w + 1] as number)) >>> 0)
  return words
}

function isMappedV4(words: readonly number[]): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff
}

/** Parses an IPv4 or IPv6 address (no zone, no port); IPv4-mapped IPv6 becomes IPv4. */
export function parseIp(text: string): Ip | undefined {
  if (text.includes(':')) {
    const words = parseV6Words(text)
    if (!words) return undefined
    return isMappedV4(words) ? { family: 4, words: [words[3] as number] } : { family: 6, words }
  }
  const v4 = parseV4Number(text)
  return v4 < 0 ? undefined : { family: 4, words: [v4] }
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as `::`). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const n = ip.words[0] as number
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
  }
  const groups: number[] = []
  for (const word of ip.words) groups.push(word >>> 16, word & 0xffff)
  let bestStart = -1
  let bestLength = 1
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start++
      continue
    }
    let end = start
    while (end < 8 && groups[end] === 0) end++
    if (end - start > bestLength) {
      bestStart = start
      bestLength = end - start
    }
    start = end
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':')
  if (bestStart < 0) return hex(0, 8)
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}

/** A network: an address and a prefix length. */
export interface Cidr {
  readonly ip: Ip
  readonly prefix: number
}

function maskWord(word: number, bits: number): number {
  if (bits <= 0) return 0
  if (bits >= 32) return word >>> 0
  return (word & (0xffffffff << (32 - bits))) >>> 0
}

/** The address with every bit after `prefix` cleared. */
export function networkOf(ip: Ip, prefix: number): Ip {
  const words = ip.words.map((word, index) => maskWord(word, prefix - 32 * index))
  return { family: ip.family, words }
}

/**
 * Parses `a.b.c.d/n`, `x::y/n` or a single address (a /32 or /128). Returns a message for the user
 * on failure, including the likely fix when the network has host bits set.
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const ip = parseIp(address)
  if (!ip) return `"${text}" is not an IP address or CIDR network`
  const max = ip.family === 4 ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const bits = text.slice(slash + 1)
    if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > (address.includes(':') ? 128 : 32)) {
      return `"${text}" has an invalid prefix length`
    }
    prefix = Number(bits)
    // `::ffff:10.0.0.0/104` names IPv4 space: its prefix counts the 96 mapped bits too.
    if (ip.family === 4 && address.includes(':')) {
      if (prefix < 96) return `"${text}" mixes IPv4-mapped and IPv6 space; write the IPv4 network instead`
      prefix -= 96
    }
  }
  const network = networkOf(ip, prefix)
  if (network.words.some((word, index) => word !== ip.words[index])) {
    return `"${text}" has host bits set; did you mean ${formatIp(network)}/${prefix}?`
  }
  return { ip: network, prefix }
}

/**
 * A set of networks, matched by masking: a linear scan over a handful of integers, which beats a
 * trie for the short lists a gateway config holds (Telegram's ranges, a few proxies).
 */
export class CidrSet {
  readonly #v4: number[] = []
  readonly #v6: { words: readonly number[]; prefix: number }[] = []
  readonly cidrs: readonly Cidr[]

  constructor(cidrs: readonly Cidr[]) {
    this.cidrs = cidrs
    for (const { ip, prefix } of cidrs) {
      if (ip.family === 4) this.#v4.push(ip.words[0] as number, prefix)
      else this.#v6.push({ words: ip.words, prefix })
    }
  }

  get size(): number {
    return this.cidrs.length
  }

  has(ip: Ip): boolean {
    if (ip.family === 4) {
      const address = ip.words[0] as number
      const v4 = this.#v4
      for (let i = 0; i < v4.length; i += 2) {
        if (maskWord(address, v4[i + 1] as number) === v4[i]) return true
      }
      return false
    }
    for (const { words, prefix } of this.#v6) {
      let inside = true
      for (let w = 0; w < 4 && inside; w++)
        inside = maskWord(ip.words[w] as number, prefix - 32 * w) === words[w]
      if (inside) return true
    }
    return false
  }
}

/** Address ranges that are not routable on the internet: a peer there is usually a proxy or a load balancer. */
export const PRIVATE_NETWORKS = new CidrSet(
  [
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10', // carrier-grade NAT (RFC 6598), common in Kubernetes overlays
    '127.0.0.0/8',
    '169.254.0.0/16',
    '::1/128',
    'fc00::/7', // unique local (RFC 4193)
    'fe80::/10',
  ].map((text) => parseCidr(text) as Cidr),
)
