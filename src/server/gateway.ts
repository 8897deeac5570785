/**
 * @module
 * The running gateway: two listeners (webhook and admin), the current config generation, reloads
 * and shutdown.
 *
 * A generation is everything built from one config: compiled pipelines and the webhook listener.
 * Reloads build a new generation off the request path and swap one reference, so a request sees
 * the old generation or the new one, never a mix; requests already running finish on the
 * generation they started on. A config that fails to load is refused and the old one keeps
 * serving.
 *
 * Off the request path, with 10,000 bots: the config is loaded in a worker thread
 * (../config/off-thread.ts); a bot whose config did not change keeps its compiled pipeline (its
 * key, a hash of its whole resolved config and policy, is the same); the others are compiled in
 * slices of a few milliseconds with the event loop let run between them. Upstream connection
 * pools are shared by origin and outlive generations; those no generation still uses are closed
 * once the generation that used them has drained.
 */

import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { setImmediate as turn } from 'node:timers/promises'
import { createAdaptorServer } from '@hono/node-server'
import { type AdminState, buildAdminState, mountAdminApi } from '../admin/index.js'
import { Blocks } from '../blocks/index.js'
import { ConfigError } from '../config/errors.js'
import { type GatewayConfig, type LoadOptions, loadConfig, type TlsConfig } from '../config/load.js'
import { loadConfigOffThread } from '../config/off-thread.js'
import { Egress, type ReplyExecutor } from '../egress/index.js'
import { UpstreamPools } from '../forward/upstream.js'
import { buildAdminApp, type Readiness } from '../observe/admin.js'
import { Alerts } from '../observe/alerts/index.js'
import { createLogger, flushLogger, type Logger, stdoutDestination } from '../observe/logger.js'
import { GatewayMetrics, NO_BOT } from '../observe/metrics.js'
import { RequestLog } from '../observe/record.js'
import { type BotPipeline, type CompileDeps, compileBot, pipelineKey } from '../policy/compile.js'
import type { QueuedBot, QueueService } from '../queue/index.js'
import { ClientIpResolver } from '../request/client-ip.js'
import type { Store } from '../store/index.js'
import { MemoryStore } from '../store/memory.js'
import { type OpenedStore, openStore } from '../store/open.js'
import { VERSION } from '../version.js'
import {
  type AppDeps,
  buildClientErrorHandler,
  buildWebhookListener,
  type ClientErrorHandler,
  type WebhookListener,
} from './app.js'
import { FileWatcher } from './watch.js'

/** Most marks of the blocks' own memory store: far above what the admin API lets in (10 000 per bot). */
const BLOCK_STORE_ENTRIES = 1_000_000

/** Node checks header and request timeouts on this interval (its default, 30 s, would blur them). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000

/** How long the main thread builds before it lets the event loop answer requests again. */
const SLICE_MS = 5

/** Bot names a reload's log line lists, at most; the rest are counted. */
const LOGGED_NAMES = 20

/** Resolves at once while the current slice lasts, else after one turn of the event loop. */
function slicer(): () => Promise<void> | undefined {
  let started = performance.now()
  return () => {
    if (performance.now() - started < SLICE_MS) return undefined
    return turn().then(() => {
      started = performance.now()
    })
  }
}

/** A compiled pipeline and the key of the config it was compiled from. */
interface Compiled {
  readonly key: string
  readonly pipeline: BotPipeline
}

/** What a reload changed, by bot name. */
interface Changes {
  readonly added: string[]
  readonly changed: string[]
  readonly removed: string[]
  kept: number
}

function compileEntry(bot: GatewayConfig['bots'][number], deps: CompileDeps): Compiled {
  return { key: pipelineKey(bot), pipeline: compileBot(bot, deps) }
}

/**
 * Compiles the pipelines of `config`, taking those of `previous` whose key is unchanged, and
 * yields to the event loop between slices of work.
 */
async function compileAll(
  config: GatewayConfig,
  deps: CompileDeps,
  previous: ReadonlyMap<string, Compiled> | undefined,
): Promise<{ compiled: Map<string, Compiled>; changes: Changes }> {
  const compiled = new Map<string, Compiled>()
  const changes: Changes = { added: [], changed: [], removed: [], kept: 0 }
  const pause = slicer()
  for (const bot of config.bots) {
    const key = pipelineKey(bot)
    const before = previous?.get(bot.name)
    if (before !== undefined && before.key === key) {
      compiled.set(bot.name, before)
      changes.kept++
    } else {
      compiled.set(bot.name, { key, pipeline: compileBot(bot, deps) })
      if (previous !== undefined) (before === undefined ? changes.added : changes.changed).push(bot.name)
    }
    await pause()
  }
  if (previous !== undefined)
    for (const name of previous.keys()) if (!compiled.has(name)) changes.removed.push(name)
  return { compiled, changes }
}

/** The first `limit` names, then how many more: log lines of bounded size, whatever the bot count. */
function firstNames(names: readonly string[], limit: number): string[] {
  const shown = names.slice(0, Math.max(0, limit))
  return names.length > shown.length ? [...shown, `and ${names.length - shown.length} more`] : shown
}

/** At most {@link LOGGED_NAMES} names across the lists of changes. */
function sampleNames(changes: Changes): Record<string, string[]> {
  let budget = LOGGED_NAMES
  const names: Record<string, string[]> = {}
  for (const kind of ['changed', 'added', 'removed'] as const) {
    const all = changes[kind]
    if (all.length === 0) continue
    names[kind] = firstNames(all, budget)
    budget -= Math.min(budget, all.length)
  }
  return names
}

class Generation {
  readonly config: GatewayConfig
  readonly bots: readonly BotPipeline[]
  /** By bot name, with the keys a later reload compares against. */
  readonly compiled: ReadonlyMap<string, Compiled>
  readonly listener: WebhookListener
  readonly clientError: ClientErrorHandler
  /** Admin API keys, bots and the JWKS of this config. */
  readonly admin: AdminState
  #active = 0
  /** Set once retired: told when the last request here has finished. */
  #retired: (() => void) | undefined = undefined

  constructor(
    config: GatewayConfig,
    compiled: ReadonlyMap<string, Compiled>,
    deps: CompileDeps,
    logger: Logger,
    gateway: Gateway,
  ) {
    this.config = config
    this.compiled = compiled
    this.bots = [...compiled.values()].map((entry) => entry.pipeline)
    this.admin = buildAdminState(config)
    const listenerDeps: AppDeps = {
      bots: this.bots,
      resolver: new ClientIpResolver(config.trustedProxies),
      logger,
      requests: new RequestLog(logger, { messageText: config.log.message_text }),
      unrouted: deps.metrics.bot(NO_BOT),
      track: (delta) => {
        this.#active += delta
        gateway.track(delta)
        if (this.#retired !== undefined && this.#active === 0) this.#retired()
      },
      draining: () => gateway.draining,
    }
    this.listener = buildWebhookListener(listenerDeps)
    this.clientError = buildClientErrorHandler(listenerDeps)
  }

  /** The keys of the upstream pools this generation's bots forward through. */
  poolKeys(): Set<string> {
    return new Set(this.bots.map((bot) => bot.upstream.poolKey))
  }

  /** No new requests will come here: call `drained` once the running ones are done. */
  retire(drained: () => void): void {
    this.#retired = drained
    if (this.#active === 0) drained()
  }
}

export interface GatewayOptions extends LoadOptions {
  readonly configFile: string
  /** A logger to use instead of one built from the config (tests). */
  readonly logger?: Logger
}

export class Gateway {
  readonly #options: GatewayOptions
  readonly logger: Logger
  readonly metrics: GatewayMetrics
  /** Shared state; it outlives config generations, so marks survive reloads. */
  readonly store: Store
  /**
   * Operator alerts (config `alerts`). The store calls `alerts.storeDown(code)` when it cannot
   * answer and `alerts.storeUp()` when it can again; see docs/alerts.md.
   */
  readonly alerts: Alerts
  /** Runtime blocks, in the store; like it, they outlive config generations. */
  readonly blocks: Blocks
  readonly #opened: OpenedStore
  /** Upstream connection pools by origin, shared by bots and generations. */
  readonly #pools = new UpstreamPools()
  #generation: Generation
  /** Earlier generations with requests still running (a reload happened while they ran). */
  readonly #retiring = new Set<Generation>()
  /** Plain HTTP, or HTTPS when the config has `tls` (fixed at start; certificates reload). */
  readonly #webhook: Server | HttpsServer
  /** The certificate and key in use, to notice when a reload brings new ones. */
  #tls: TlsConfig | undefined
  readonly #admin: Server
  /**
   * The bots' way out to the Bot API: the egress listener (`egress.listen`, when the config at
   * start has `egress`, docs/egress.md) and the reply executor.
   */
  readonly #egress: Egress
  /** Makes a bot's webhook answer as a Bot API call with its token (src/egress/reply.ts). */
  readonly replies: ReplyExecutor
  /** The queue of bots with `upstream.delivery: queued` (docs/queue.md); only with `store: redis`. */
  readonly #queues: QueueService | undefined
  readonly #watcher: FileWatcher
  #active = 0
  #idle: (() => void) | undefined
  #draining = false
  #reloading: Promise<boolean> | undefined
  /** A reload is loading and compiling a generation not yet swapped in. */
  #building = false
  /** The trigger of a reload to run once the running one is done. */
  #queued: string | undefined

  private constructor(
    options: GatewayOptions,
    config: GatewayConfig,
    started: {
      logger: Logger
      metrics: GatewayMetrics
      opened: OpenedStore
      queues: QueueService | undefined
    },
  ) {
    this.#options = options
    this.logger = started.logger
    this.metrics = started.metrics
    this.#opened = started.opened
    this.store = this.#opened.store
    this.#queues = started.queues
    // Blocks are operator state, not traffic. The shared memory store evicts the least recently
    // written marks when full, so a flood of dedupe marks could evict a block: with the memory
    // store, blocks get a store of their own. A shared store (redis) holds them for every replica;
    // while it is down, the last snapshot decides whatever on_error says (GuardedStore.shared).
    this.blocks = new Blocks(
      this.store.kind === 'memory'
        ? new MemoryStore({ maxEntries: BLOCK_STORE_ENTRIES })
        : (this.#opened.shared ?? this.store),
    )
    // At start nothing is served yet: the bots are compiled in one go.
    const deps = this.#deps()
    const compiled = new Map(config.bots.map((bot) => [bot.name, compileEntry(bot, deps)]))
    this.#generation = new Generation(config, compiled, deps, this.logger, this)
    this.metrics.lastReload.labels().set(Math.round(Date.now() / 1000))
    this.alerts = new Alerts({
      logger: this.logger,
      counts: () => this.#generation.bots.map((bot) => [bot.name, bot.metrics.alerts] as const),
    })
    this.alerts.configure(config.alerts)
    const listener: WebhookListener = (incoming, outgoing) => this.#generation.listener(incoming, outgoing)
    this.#tls = config.tls
    this.#webhook =
      config.tls === undefined
        ? createHttpServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, listener)
        : createHttpsServer(
            {
              connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
              cert: config.tls.cert,
              key: config.tls.key,
            },
            listener,
          )
    this.#applyTimeouts(config)
    this.#webhook.on('clientError', (error: NodeJS.ErrnoException, socket) =>
      this.#generation.clientError(error, socket),
    )
    const admin = buildAdminApp({
      metrics: this.metrics,
      readiness: () => this.readiness(),
      extend: (app) =>
        mountAdminApi(app, { state: () => this.#generation.admin, blocks: this.blocks, logger: this.logger }),
    })
    this.#admin = createAdaptorServer({ fetch: admin.fetch }) as Server
    this.#egress = new Egress(config, this.logger, this.metrics, this.store)
    this.replies = this.#egress.replies
    this.#watcher = new FileWatcher(() => void this.reload('file change'))
  }

  /** Loads the config, binds both listeners and starts watching the config files. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const config = loadConfig(options.configFile, options)
    const metrics = new GatewayMetrics(VERSION)
    const logger =
      options.logger ??
      createLogger(config.log.level, stdoutDestination({ dropped: metrics.logLinesDropped.labels() }))
    const opened = await openStore(config.store, { metrics, logger })
    // The queue delivers before the constructor has run only if the gateway is up: by then it is set.
    let gateway: Gateway | undefined
    const replies = (bot: string) => gateway?.repliesOf(bot)
    const queues = await openQueues(config, { logger, metrics, store: opened.store, replies })
    try {
      gateway = new Gateway(options, config, { logger, metrics, opened, queues })
    } catch (error) {
      await opened.store.close()
      throw error
    }
    // Wait for Redis (at most store.connect_timeout) so the first updates find the shared state.
    await gateway.#opened.start()
    try {
      await Promise.all([
        listen(gateway.#webhook, config.listen.host, config.listen.port),
        listen(gateway.#admin, config.adminListen.host, config.adminListen.port),
        config.egress &&
          gateway.#egress.server &&
          listen(gateway.#egress.server, config.egress.listen.host, config.egress.listen.port),
      ])
    } catch (error) {
      // A failed start must not leave a listener or the store's connection holding the process.
      gateway.#webhook.close()
      gateway.#admin.close()
      await gateway.#egress.close()
      await gateway.store.close()
      throw error
    }
    gateway.#watcher.watch(config.files)
    gateway.#queues?.update(queuedBots(gateway.#generation.bots))
    await gateway.#queues?.waitReady(config.store.type === 'redis' ? config.store.connectTimeoutMs : 0)
    for (const warning of config.warnings) gateway.logger.warn({ warning }, 'config warning')
    gateway.logger.info(
      {
        version: VERSION,
        webhook: gateway.webhookAddress,
        tls: config.tls !== undefined,
        admin: gateway.adminAddress,
        egress: gateway.#egress.server && formatAddress(gateway.#egress.server.address() as AddressInfo),
        bots: config.bots.length,
        names: firstNames(
          config.bots.map((bot) => bot.name),
          LOGGED_NAMES,
        ),
      },
      'botgate listening',
    )
    return gateway
  }

  #deps(): CompileDeps {
    return {
      metrics: this.metrics,
      store: this.store,
      blocks: this.blocks,
      logger: this.logger,
      pools: this.#pools,
      queues: this.#queues,
    }
  }

  /** The reply executor for a bot of the current config that has a token; undefined for others. */
  repliesOf(bot: string): ReplyExecutor | undefined {
    return this.#generation.compiled.get(bot)?.pipeline.config.token === undefined ? undefined : this.replies
  }

  get config(): GatewayConfig {
    return this.#generation.config
  }

  get draining(): boolean {
    return this.#draining
  }

  get webhookAddress(): string {
    return formatAddress(this.#webhook.address() as AddressInfo)
  }

  get adminAddress(): string {
    return formatAddress(this.#admin.address() as AddressInfo)
  }

  /** Counts requests across generations, for the shutdown drain. */
  track(delta: 1 | -1): void {
    this.#active += delta
    if (this.#active === 0) this.#idle?.()
  }

  readiness(): Readiness {
    const listener = this.#draining ? 'draining' : 'serving'
    const store = this.#opened.health()
    // The queue's check only where a bot is queued.
    const queue = this.#queues?.health()
    const checks: Record<string, string> = { config: 'loaded', listener, store: store.detail }
    if (queue !== undefined && queue.detail !== 'none') checks.queue = queue.detail
    return { ready: !this.#draining && store.ready && (queue?.ready ?? true), checks }
  }

  #applyTimeouts(config: GatewayConfig): void {
    this.#webhook.headersTimeout = config.timeouts.headerMs
    this.#webhook.requestTimeout = config.timeouts.bodyMs
    this.#webhook.keepAliveTimeout = config.timeouts.keepAliveMs
  }

  /**
   * Loads the config again and swaps it in; a config that fails to load is logged and refused, and
   * the running one stays. Resolves to whether it applied.
   *
   * One reload runs at a time. A trigger while one runs (a file saved again, a second SIGHUP)
   * shares its result and queues one more reload after it: the running one may have read the
   * files before the change. Any number of triggers meanwhile queue just that one.
   */
  reload(trigger: string): Promise<boolean> {
    if (this.#reloading !== undefined) {
      this.#queued = trigger
      return this.#reloading
    }
    this.#reloading = this.#reload(trigger).finally(() => {
      this.#reloading = undefined
      const queued = this.#queued
      this.#queued = undefined
      if (queued !== undefined) void this.reload(queued)
    })
    return this.#reloading
  }

  async #reload(trigger: string): Promise<boolean> {
    if (this.#draining) return false
    const started = performance.now()
    const previous = this.#generation
    let next: Generation
    let changes: Changes
    this.#building = true
    try {
      const config = await loadConfigOffThread(this.#options.configFile, this.#options)
      const built = await compileAll(config, this.#deps(), previous.compiled)
      changes = built.changes
      next = new Generation(config, built.compiled, this.#deps(), this.logger, this)
      // Shutdown began while this was built: nothing is swapped in.
      if (this.#draining) return false
      this.#reloadTls(config.tls)
    } catch (error) {
      this.#building = false
      // Pools opened for the refused config's new upstreams go again.
      this.#releasePools()
      this.metrics.reloads.labels('failure').inc()
      const problems = error instanceof ConfigError ? error.message.split('\n') : [(error as Error).message]
      this.logger.error({ trigger, problems }, 'config reload refused: the running config stays in effect')
      this.alerts.reloadRefused(trigger, error)
      return false
    } finally {
      this.#building = false
    }
    const config = next.config
    // The store is built once per process (it holds the marks and limits); comparing serialised
    // configs only, nothing of them is logged.
    if (JSON.stringify(previous.config.store) !== JSON.stringify(config.store))
      this.logger.warn({ key: 'store' }, 'store settings change only on restart; the running store stays')
    for (const key of ['listen', 'adminListen'] as const) {
      const before = previous.config[key]
      if (before.host !== config[key].host || before.port !== config[key].port) {
        this.logger.warn({ key }, 'listen addresses change only on restart; the old ones stay bound')
      }
    }
    this.#generation = next
    this.#egress.update(config)
    this.#queues?.update(queuedBots(next.bots))
    this.#retiring.add(previous)
    previous.retire(() => {
      this.#retiring.delete(previous)
      this.#releasePools()
    })
    this.#releasePools()
    this.#applyTimeouts(config)
    this.logger.level = config.log.level
    this.alerts.configure(config.alerts)
    this.#watcher.watch(config.files)
    this.metrics.reloads.labels('success').inc()
    this.metrics.lastReload.labels().set(Math.round(Date.now() / 1000))
    for (const warning of config.warnings) this.logger.warn({ warning }, 'config warning')
    // Counts, and a bounded sample of names: with 10,000 bots the full list made a line of 190 KB.
    this.logger.info(
      {
        trigger,
        ms: Math.round(performance.now() - started),
        bots: {
          total: config.bots.length,
          added: changes.added.length,
          changed: changes.changed.length,
          removed: changes.removed.length,
          kept: changes.kept,
        },
        names: sampleNames(changes),
      },
      'config reloaded',
    )
    return true
  }

  /**
   * Closes the upstream pools that neither the current generation nor a draining one uses. Not
   * while a reload is building: the generation it builds uses pools that neither of those does.
   */
  #releasePools(): void {
    if (this.#building) return
    const used = this.#generation.poolKeys()
    for (const generation of this.#retiring) for (const key of generation.poolKeys()) used.add(key)
    this.#pools.release(used)
  }

  /**
   * New certificate or key files take effect for new connections (`setSecureContext`); open
   * connections keep the one they were made with. Throws if Node refuses them, which refuses the
   * reload. Turning TLS on or off would need another kind of listener: that waits for a restart.
   */
  #reloadTls(tls: TlsConfig | undefined): void {
    const current = this.#tls
    if ((tls === undefined) !== (current === undefined)) {
      this.logger.warn(
        { tls: current !== undefined },
        'tls is turned on or off only on restart; the webhook listener keeps its current mode',
      )
      return
    }
    if (tls === undefined || current === undefined) return
    if (tls.cert === current.cert && tls.key === current.key) return
    ;(this.#webhook as HttpsServer).setSecureContext({ cert: tls.cert, key: tls.key })
    this.#tls = tls
    this.logger.info(
      { subject: tls.subject, valid_to: tls.validTo.toISOString() },
      'tls certificate reloaded: new connections use it',
    )
  }

  /**
   * Stops accepting connections, lets in-flight requests finish within `shutdown_grace`, then
   * closes everything. Resolves when done; the caller exits.
   */
  async shutdown(signal: string): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    const graceMs = this.config.shutdownGraceMs
    this.logger.info(
      { signal, in_flight: this.#active, grace_ms: graceMs },
      'shutting down: draining in-flight requests',
    )
    this.#watcher.close()
    const closed = new Promise<void>((resolve) => this.#webhook.close(() => resolve()))
    this.#webhook.closeIdleConnections()
    const drained =
      this.#active === 0
        ? Promise.resolve(true)
        : new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), graceMs)
            this.#idle = () => {
              clearTimeout(timer)
              resolve(true)
            }
          })
    const clean = await drained
    if (!clean)
      this.logger.warn({ in_flight: this.#active }, 'grace period over: closing remaining connections')
    // Queued deliveries under way finish in what is left of the grace; their shards go back.
    await this.#queues?.close(clean ? graceMs : 0)
    // Forwards still running fail first (502, logged), and get a turn of the loop to write their
    // answers; then every connection closes.
    await this.#pools.destroy()
    await new Promise((resolve) => setImmediate(resolve))
    this.#webhook.closeAllConnections()
    await closed
    await new Promise<void>((resolve) => {
      this.#admin.close(() => resolve())
      this.#admin.closeAllConnections()
    })
    await this.#egress.close()
    await this.store.close()
    await this.alerts.stop()
    this.logger.info({ clean }, 'stopped')
    await flushLogger(this.logger)
  }
}

/** The queue, when the store is Redis (the loader refuses queued bots on another store). */
async function openQueues(
  config: GatewayConfig,
  deps: {
    logger: Logger
    metrics: GatewayMetrics
    store: Store
    replies: (bot: string) => ReplyExecutor | undefined
  },
): Promise<QueueService | undefined> {
  if (config.store.type !== 'redis') return undefined
  const [{ QueueService }, { connect }] = await Promise.all([
    import('../queue/index.js'),
    import('../store/redis.js'),
  ])
  return new QueueService(config.store, {
    logger: deps.logger,
    registry: deps.metrics.registry,
    store: deps.store,
    replies: deps.replies,
    onDead: (bot) => deps.metrics.bot(bot).alerts.deadLetters++,
    connect,
  })
}

/** The bots whose updates go through the queue, with what their delivery sends through. */
function queuedBots(bots: readonly BotPipeline[]): QueuedBot[] {
  const queued: QueuedBot[] = []
  for (const bot of bots)
    if (bot.config.upstream.queue !== undefined)
      queued.push({ name: bot.name, config: bot.config.upstream.queue, target: bot })
  return queued
}

function listen(server: Server | HttpsServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`
}
