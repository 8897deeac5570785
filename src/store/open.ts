/**
 * @module
 * Builds the gateway's store from the `store` section: the bounded in-process store, or Redis
 * behind the `on_error` guard with an in-process store standing by for `on_error: local`. The
 * store is built once per process and outlives config reloads; `store` changes apply on restart.
 *
 * The Redis client (ioredis and ./redis.ts) is loaded only for `store: redis`: a gateway on the
 * memory store never has it in memory (about 7 MB of RSS).
 */

import type { Logger } from '../observe/logger.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import type { StoreConfig } from './config.js'
import { GuardedStore, type StoreHealth } from './guard.js'
import type { Clock, Store } from './index.js'
import { MemoryStore } from './memory.js'

export interface OpenedStore {
  readonly store: Store
  /** With Redis: the store for state that lives only there (blocks; see GuardedStore.shared). */
  readonly shared?: Store
  /** For /readyz. */
  health(): StoreHealth
  /** Waits for Redis at startup, at most `connect_timeout`; the gateway starts either way. */
  start(): Promise<void>
}

export interface OpenDeps {
  readonly metrics: GatewayMetrics
  readonly logger: Logger
  /** Tests only: the clock of both stores (and of the Redis script instead of `TIME`). */
  readonly clock?: Clock
}

const MEMORY_HEALTH: StoreHealth = { up: true, ready: true, detail: 'memory' }

export async function openStore(config: StoreConfig, deps: OpenDeps): Promise<OpenedStore> {
  const clock = deps.clock === undefined ? {} : { clock: deps.clock }
  if (config.type === 'memory') {
    deps.metrics.storeUp.labels('memory').set(1)
    const store = new MemoryStore({ maxEntries: config.maxEntries, ...clock })
    return { store, health: () => MEMORY_HEALTH, start: async () => {} }
  }
  const { RedisStore } = await import('./redis.js')
  let guard: GuardedStore | undefined
  const backend = new RedisStore({
    config,
    ...clock,
    events: {
      ready: () => guard?.ready(),
      lost: (error) => guard?.lost(error),
      unchained: () =>
        deps.logger.warn(
          { store: 'redis' },
          'redis refuses a script over keys of several slots (a proxy that enforces slots): each store operation goes alone, batched by hash tag',
        ),
    },
  })
  guard = new GuardedStore({
    backend,
    onError: config.onError,
    local: new MemoryStore({ maxEntries: config.maxEntries, ...clock }),
    metrics: deps.metrics.store('redis', config.onError),
    logger: deps.logger,
  })
  const opened = guard
  return {
    store: opened,
    shared: opened.shared,
    health: () => opened.health(),
    start: async () => opened.begin(await backend.waitReady(config.connectTimeoutMs)),
  }
}
