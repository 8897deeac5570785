/**
 * @module
 * `host:port` as the listeners and Redis Sentinel nodes are written: the port after the last
 * colon, an IPv6 host optionally in brackets.
 */

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** Undefined when the port is not an integer of 0-65535. */
export function parseHostPort(text: string): HostPort | undefined {
  const colon = text.lastIndexOf(':')
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(text.slice(colon + 1))
  return Number.isInteger(port) && port >= 0 && port <= 65535 ? { host, port } : undefined
}
