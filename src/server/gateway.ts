/**
 * @module
 * The running gateway: two listeners (webhook and admin), the current config generation, reloads
 * and shutdown.
 *
 * A generation is everything built from one config: compiled pipelines, upstream pools and the
 * webhook listener. Reloads build a new generation off the request path and swap one reference;
 * requests already running finish on the generation they started on, whose upstream pools are
 * closed once its last request is done. A config that fails to load is refused and the old one
 * keeps serving.
 */

import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { type AdminState, buildAdminState, mountAdminApi } from '../admin/index.js'
import { Blocks } from '../blocks/index.js'
import { ConfigError } from '../config/errors.js'
import { type GatewayConfig, type LoadOptions, loadConfig, type TlsConfig } from '../config/load.js'
import { buildAdminApp, type Readiness } from '../observe/admin.js'
import { Alerts } from '../observe/alerts/index.js'
import { createLogger, flushLogger, type Logger, stdoutDestination } from '../observe/logger.js'
import { GatewayMetrics, NO_BOT } from '../observe/metrics.js'
import { RequestLog } from '../observe/record.js'
import { type BotPipeline, type CompileDeps, compileBot } from '../policy/compile.js'
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

class Generation {
  readonly config: GatewayConfig
  readonly bots: readonly BotPipeline[]
  readonly listener: WebhookListener
  readonly clientError: ClientErrorHandler
  /** Admin API keys, bots and the JWKS of this config. */
  readonly admin: AdminState
  #active = 0
  /** Set once retired: told when the last request here has finished. */
  #retired: (() => void) | undefined = undefined
  /** The pools were destroyed at shutdown: there is nothing left to close. */
  #destroyed = false

  constructor(config: GatewayConfig, deps: CompileDeps, logger: Logger, gateway: Gateway) {
    this.config = config
    this.bots = config.bots.map((bot) => compileBot(bot, deps))
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
        if (this.#retired !== undefined && this.#active === 0) this.#close()
      },
      draining: () => gateway.draining,
    }
    this.listener = buildWebhookListener(listenerDeps)
    this.clientError = buildClientErrorHandler(listenerDeps)
  }

  /**
   * No new requests will come here: close the upstream pools once the running ones are done, then
   * call `closed`.
   */
  retire(closed: () => void): void {
    this.#retired = closed
    if (this.#active === 0) this.#close()
  }

  #close(): void {
    if (!this.#destroyed) for (const bot of this.bots) void bot.upstream.close()
    this.#retired?.()
  }

  /** Closes the upstream pools now, failing forwards still running (shutdown past its grace). */
  async destroy(): Promise<void> {
    this.#destroyed = true
    await Promise.all(this.bots.map((bot) => bot.upstream.destroy()))
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
  #generation: Generation
  /** Earlier generations with requests still running (a reload happened while they ran). */
  readonly #retiring = new Set<Generation>()
  /** Plain HTTP, or HTTPS when the config has `tls` (fixed at start; certificates reload). */
  readonly #webhook: Server | HttpsServer
  /** The certificate and key in use, to notice when a reload brings new ones. */
  #tls: TlsConfig | undefined
  readonly #admin: Server
  readonly #watcher: FileWatcher
  #active = 0
  #idle: (() => void) | undefined
  #draining = false
  #reloading: Promise<boolean> | undefined

  private constructor(
    options: GatewayOptions,
    config: GatewayConfig,
    started: { logger: Logger; metrics: GatewayMetrics; opened: OpenedStore },
  ) {
    this.#options = options
    this.logger = started.logger
    this.metrics = started.metrics
    this.#opened = started.opened
    this.store = this.#opened.store
    // Blocks are operator state, not traffic. The shared memory store evicts the least recently
    // written marks when full, so a flood of dedupe marks could evict a block: with the memory
    // store, blocks get a store of their own. A shared store (redis) holds them for every replica.
    this.blocks = new Blocks(
      this.store.kind === 'memory' ? new MemoryStore({ maxEntries: BLOCK_STORE_ENTRIES }) : this.store,
    )
    this.#generation = new Generation(config, this.#deps(), this.logger, this)
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
    let gateway: Gateway
    try {
      gateway = new Gateway(options, config, { logger, metrics, opened })
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
      ])
    } catch (error) {
      // A failed start must not leave a listener or the store's connection holding the process.
      gateway.#webhook.close()
      gateway.#admin.close()
      await gateway.store.close()
      throw error
    }
    gateway.#watcher.watch(config.files)
    for (const warning of config.warnings) gateway.logger.warn({ warning }, 'config warning')
    gateway.logger.info(
      {
        version: VERSION,
        webhook: gateway.webhookAddress,
        tls: config.tls !== undefined,
        admin: gateway.adminAddress,
        bots: config.bots.map((bot) => bot.name),
      },
      'botgate listening',
    )
    return gateway
  }

  #deps(): CompileDeps {
    return { metrics: this.metrics, store: this.store, blocks: this.blocks, logger: this.logger }
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
    return {
      ready: !this.#draining && store.ready,
      checks: { config: 'loaded', listener, store: store.detail },
    }
  }

  #applyTimeouts(config: GatewayConfig): void {
    this.#webhook.headersTimeout = config.timeouts.headerMs
    this.#webhook.requestTimeout = config.timeouts.bodyMs
    this.#webhook.keepAliveTimeout = config.timeouts.keepAliveMs
  }

  /**
   * Loads the config again and swaps it in; a config that fails to load is logged and refused, and
   * the running one stays. Concurrent triggers share one reload. Resolves to whether it applied.
   */
  reload(trigger: string): Promise<boolean> {
    this.#reloading ??= Promise.resolve()
      .then(() => this.#reload(trigger))
      .finally(() => {
        this.#reloading = undefined
      })
    return this.#reloading
  }

  #reload(trigger: string): boolean {
    if (this.#draining) return false
    const previous = this.#generation
    let next: Generation
    try {
      const config = loadConfig(this.#options.configFile, this.#options)
      next = new Generation(config, this.#deps(), this.logger, this)
      this.#reloadTls(config.tls)
    } catch (error) {
      this.metrics.reloads.labels('failure').inc()
      const problems = error instanceof ConfigError ? error.message.split('\n') : [(error as Error).message]
      this.logger.error({ trigger, problems }, 'config reload refused: the running config stays in effect')
      this.alerts.reloadRefused(trigger, error)
      return false
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
    this.#retiring.add(previous)
    previous.retire(() => this.#retiring.delete(previous))
    this.#applyTimeouts(config)
    this.logger.level = config.log.level
    this.alerts.configure(config.alerts)
    this.#watcher.watch(config.files)
    this.metrics.reloads.labels('success').inc()
    this.metrics.lastReload.labels().set(Math.round(Date.now() / 1000))
    for (const warning of config.warnings) this.logger.warn({ warning }, 'config warning')
    this.logger.info({ trigger, bots: config.bots.map((bot) => bot.name) }, 'config reloaded')
    return true
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
    // Forwards still running fail first (502, logged), and get a turn of the loop to write their
    // answers; then every connection closes.
    await Promise.all([this.#generation, ...this.#retiring].map((generation) => generation.destroy()))
    await new Promise((resolve) => setImmediate(resolve))
    this.#webhook.closeAllConnections()
    await closed
    await new Promise<void>((resolve) => {
      this.#admin.close(() => resolve())
      this.#admin.closeAllConnections()
    })
    await this.store.close()
    await this.alerts.stop()
    this.logger.info({ clean }, 'stopped')
    await flushLogger(this.logger)
  }
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
