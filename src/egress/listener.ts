/**
 * @module
 * The egress listener: a plain HTTP server on `egress.listen`, started and stopped with the
 * gateway (which binds it). Each config generation gets its own {@link Egress} (bots, credentials, methods); a
 * reload swaps it in and lets the old one's pool finish its calls. The address changes only on
 * restart, like the other listeners.
 */

import { createServer, type Server } from 'node:http'
import type { Logger } from 'pino'
import { outboundFilter } from '../checks/outbound/index.js'
import type { GatewayConfig } from '../config/load.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import type { Store } from '../store/index.js'
import { createPacer, type Pacer, pacingMetrics } from './pacing/index.js'
import { Egress, type EgressBot } from './proxy.js'

function egressBots(config: GatewayConfig): EgressBot[] {
  const bots: EgressBot[] = []
  for (const bot of config.bots) {
    if (bot.egress === undefined || bot.token === undefined) continue
    bots.push({
      name: bot.name,
      credential: bot.egress.credential,
      token: bot.token,
      // The policy's outbound section: the same filter as the bot's webhook answers.
      allows: outboundFilter(bot.policy.outbound),
    })
  }
  return bots
}

export class EgressListener {
  /** The HTTP server; the gateway binds it to `egress.listen`, as its other listeners. */
  readonly server: Server
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  /**
   * One pacer for the process, created from the config at start: its queues, timers and shared
   * budgets outlive reloads (a change of egress.pacing applies at restart).
   */
  readonly #pacer: Pacer
  #egress: Egress

  constructor(
    config: GatewayConfig & { egress: NonNullable<GatewayConfig['egress']> },
    logger: Logger,
    metrics: GatewayMetrics,
    store: Store,
  ) {
    this.#logger = logger
    this.#metrics = metrics
    this.#pacer = createPacer(config.egress.pacing, {
      store,
      metrics: pacingMetrics(metrics.registry),
      logger,
    })
    this.#egress = new Egress(
      { apiBase: config.egress.apiBase, bots: egressBots(config), pacer: this.#pacer },
      logger,
      metrics,
    )
    this.server = createServer((request, response) => this.#egress.handle(request, response))
    this.server.keepAliveTimeout = 30_000
  }

  /** A reload: the new generation's bots and api_base; calls running finish on the old pool. */
  update(config: GatewayConfig): void {
    if (config.egress === undefined) {
      this.#logger.warn('egress is removed from the config: it stays on until restart, with no bots')
    }
    const previous = this.#egress
    this.#egress = new Egress(
      {
        apiBase: config.egress?.apiBase ?? new URL('https://api.telegram.org'),
        bots: config.egress === undefined ? [] : egressBots(config),
        pacer: this.#pacer,
      },
      this.#logger,
      this.#metrics,
    )
    void previous.close()
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    await this.#pacer.close()
    await this.#egress.close()
    this.server.closeAllConnections()
    await closed
  }
}
