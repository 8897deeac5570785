/**
 * @module
 * The `store` section as the loader resolves it: URLs parsed, secrets read, durations in
 * milliseconds. The loader checks the rules (src/config/load.ts); the store only connects.
 */

/** A host and port (IPv6 without brackets). */
export interface Endpoint {
  readonly host: string
  readonly port: number
}

/** How to reach Redis: one server, a Cluster's seed nodes, or a master through Sentinels. */
export type RedisTopology =
  | { readonly mode: 'standalone'; readonly endpoint: Endpoint }
  | { readonly mode: 'cluster'; readonly nodes: readonly Endpoint[] }
  | {
      readonly mode: 'sentinel'
      /** The master's name, as in `sentinel monitor <name> ...`. */
      readonly master: string
      readonly sentinels: readonly Endpoint[]
      readonly sentinelPassword: string | undefined
      readonly sentinelTls: boolean
    }

/** What `store.on_error` says to do when Redis fails or is slower than `store.timeout`. */
export type OnError = 'local' | 'open' | 'closed'

export interface MemoryStoreConfig {
  readonly type: 'memory'
  readonly maxEntries: number
}

export interface RedisStoreConfig {
  readonly type: 'redis'
  readonly topology: RedisTopology
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number
  readonly tls: boolean
  /** Put before every key; no `{` or `}`, since botgate's hash tags follow it. */
  readonly prefix: string
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  readonly onError: OnError
  /** The size of the in-process store that stands in under `on_error: local`. */
  readonly maxEntries: number
}

export type StoreConfig = MemoryStoreConfig | RedisStoreConfig

function endpointText({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Where the store is, for logs and `botgate check`: endpoints and options, never credentials. */
export function describeStore(store: StoreConfig): string {
  if (store.type === 'memory') return `memory (max_entries ${store.maxEntries})`
  const topology = store.topology
  const where =
    topology.mode === 'standalone'
      ? endpointText(topology.endpoint)
      : topology.mode === 'cluster'
        ? `cluster ${topology.nodes.map(endpointText).join(',')}`
        : `sentinel ${topology.master}@${topology.sentinels.map(endpointText).join(',')}`
  const auth = store.password === undefined ? 'no password' : 'password ****'
  return `redis ${where}${store.tls ? ' (tls)' : ''} db ${store.db}, ${auth}, prefix "${store.prefix}", timeout ${store.timeoutMs}ms, on_error ${store.onError}`
}
