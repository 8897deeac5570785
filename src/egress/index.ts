/**
 * @module
 * The bot's way out to the Bot API, for the process: one pacer (its queues, timers and shared
 * budgets outlive reloads; a change of `egress.pacing` applies at restart), and per config
 * generation the Bot API calls (./calls.ts), the egress listener's handler (./proxy.ts) and the
 * reply executor (./reply.ts). A reload swaps the generation in and lets the old one's pool finish
 * its calls.
 *
 * The egress listener exists when the config at start has `egress` (the gateway binds
 * {@link Egress.server} to `egress.listen`; the address changes only on restart, like the other
 * listeners). The reply executor always exists: it needs a bot's token, not the listener;
 * without an `egress` section it calls Telegram's Bot API with the default settings.
 */

import { createServer, type Server } from 'node:http'
import type { Logger } from 'pino'
import { createChatLimits } from '../checks/outbound/chats.js'
import { outboundFilter } from '../checks/outbound/index.js'
import { replyMethodFilter } from '../checks/replies/index.js'
import { egressDefaults, type GatewayConfig } from '../config/load.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import type { Store } from '../store/index.js'
import { type BotApiBot, BotApiCalls } from './calls.js'
import { createPacer, type Pacer, pacingMetrics } from './pacing/index.js'
import { type EgressBot, EgressHandler } from './proxy.js'
import { Replies, type ReplyExecutor, type ReplyOutcome } from './reply.js'

export type { ReplyExecutor, ReplyOutcome } from './reply.js'

/** Every bot with a token may have its webhook answers executed; the filters are its policy's. */
function apiBots(config: GatewayConfig, store: Store): BotApiBot[] {
  const bots: BotApiBot[] = []
  for (const bot of config.bots) {
    if (bot.token === undefined) continue
    bots.push({
      name: bot.name,
      token: bot.token,
      // The policy's outbound section: the same filter as the bot's webhook answers.
      allows: outboundFilter(bot.policy.outbound),
      replyAllows: replyMethodFilter(bot.policy.replies, bot.policy.outbound),
      chats: createChatLimits(bot.policy.outbound?.chats, { store, bot: bot.name }),
    })
  }
  return bots
}

/** The bots with an egress credential, for the egress listener. */
function egressBots(config: GatewayConfig, bots: readonly BotApiBot[]): EgressBot[] {
  const byName = new Map(bots.map((bot) => [bot.name, bot]))
  const found: EgressBot[] = []
  for (const bot of config.bots) {
    const api = byName.get(bot.name)
    if (bot.egress !== undefined && api !== undefined)
      found.push({ ...api, credential: bot.egress.credential })
  }
  return found
}

/** Everything built from one config. */
interface Generation {
  readonly calls: BotApiCalls
  readonly handler: EgressHandler
  readonly replies: Replies
}

export class Egress {
  /** The egress listener's server, when the config at start has `egress`. */
  readonly server: Server | undefined
  /** Executes bots' webhook answers with their tokens (for durable delivery): see ./reply.ts. */
  readonly replies: ReplyExecutor
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics
  readonly #pacer: Pacer
  readonly #store: Store
  #generation: Generation

  constructor(config: GatewayConfig, logger: Logger, metrics: GatewayMetrics, store: Store) {
    this.#logger = logger
    this.#metrics = metrics
    this.#store = store
    this.#pacer = createPacer((config.egress ?? egressDefaults()).pacing, {
      store,
      metrics: pacingMetrics(metrics.registry),
      logger,
    })
    this.#generation = this.#build(config)
    this.replies = {
      execute: (bot: string, contentType: string | undefined, body: Buffer): Promise<ReplyOutcome> =>
        this.#generation.replies.execute(bot, contentType, body),
    }
    if (config.egress !== undefined) {
      this.server = createServer((request, response) => this.#generation.handler.handle(request, response))
      this.server.keepAliveTimeout = 30_000
    }
  }

  #build(config: GatewayConfig): Generation {
    const settings = config.egress ?? egressDefaults()
    const calls = new BotApiCalls(
      {
        apiBase: settings.apiBase,
        pacer: this.#pacer,
        maxUploadBytes: settings.maxUploadBytes,
        timeoutMs: settings.timeoutMs,
      },
      this.#logger,
      this.#metrics,
    )
    const bots = apiBots(config, this.#store)
    return {
      calls,
      handler: new EgressHandler(egressBots(config, bots), calls, this.#logger),
      replies: new Replies(bots, calls),
    }
  }

  /** A reload: the new generation's bots and api_base; calls running finish on the old pool. */
  update(config: GatewayConfig): void {
    if (this.server !== undefined && config.egress === undefined)
      this.#logger.warn('egress is removed from the config: it stays on until restart, with no bots')
    const previous = this.#generation
    const next = this.#build(config)
    // A listener started without egress gets none from a reload; the executor serves every bot.
    this.#generation =
      this.server !== undefined && config.egress === undefined
        ? { ...next, handler: new EgressHandler([], next.calls, this.#logger) }
        : next
    void previous.calls.close()
  }

  async close(): Promise<void> {
    const server = this.server
    const closed =
      server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()))
    server?.closeIdleConnections()
    await this.#pacer.close()
    await this.#generation.calls.close()
    server?.closeAllConnections()
    await closed
  }
}
