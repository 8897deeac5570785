/**
 * @module
 * The process's queue (`upstream.delivery: queued`, docs/queue.md): one Redis connection of its
 * own (the request path's store keeps its own), the admissions the bots' pipelines append
 * through, and the deliveries of the shards this replica holds.
 *
 * Shards are shared out by leases. Every `lease / 3` each replica says it is alive (a sorted set
 * on Redis time), renews the leases it holds, and takes free shards until it holds its fair share
 * (all queued bots' shards over the live replicas, rounded up); a replica holding more lets the
 * extra go once their sends are done. A replica that dies stops renewing: after `lease` its
 * shards are free, and whoever takes one first takes over the entries its consumer had pending
 * (XAUTOCLAIM), so nothing read and not acknowledged is lost. A replica that cannot renew in time
 * starts no new send on those shards.
 *
 * One instance per process, like the store: it outlives config generations, and a reload hands it
 * the bots' new settings and targets ({@link QueueService.update}).
 */

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from '../observe/logger.js'
import type { Registry } from '../observe/prometheus.js'
import type { RedisStoreConfig } from '../store/config.js'
import type { Store } from '../store/index.js'
import { Admission } from './admit.js'
import { BotDelivery, type DeliveryTarget, type RepliesRunner, ShardDelivery } from './deliver.js'
import { type QueueMetrics, queueMetrics } from './metrics.js'
import type { QueueConfig } from './schema.js'
import { QueueKeys, type QueueRedis, queueClient, replicasKey, whenReady } from './streams.js'

/** A queued bot of the current config. */
export interface QueuedBot {
  readonly name: string
  readonly config: QueueConfig
  readonly target: DeliveryTarget
}

export interface QueueDeps {
  readonly logger: Logger
  readonly registry: Registry
  /** The gateway's store, for the queue's `rate`. */
  readonly store: Store
  /** The webhook replies' runner of a bot; undefined when it cannot have one (no token). */
  readonly replies: (bot: string) => RepliesRunner | undefined
  readonly onDead: (bot: string) => void
  /** Tests: the Redis client to use instead of one made from the store config. */
  readonly connect: (config: RedisStoreConfig) => Redis | Cluster
}

/** Shortest time between two heartbeats, whatever the leases. */
const MIN_TICK_MS = 200

export class QueueService {
  readonly #config: RedisStoreConfig
  readonly #deps: QueueDeps
  readonly #metrics: QueueMetrics
  /** This replica's consumer name and lease value: unique per process. */
  readonly me = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
  #redis: QueueRedis | undefined
  readonly #bots = new Map<string, BotDelivery>()
  readonly #admissions = new Map<string, { readonly config: QueueConfig; readonly admission: Admission }>()
  /**
   * Shards let go whose sends are still under way, by lease key: not taken again until they are
   * done (the lease may still be this replica's, and a new delivery of the shard would send their
   * chats' updates again meanwhile, two at once). Their leases are renewed until then.
   */
  readonly #draining = new Map<
    string,
    { readonly bot: BotDelivery; readonly shard: ShardDelivery; readonly done: Promise<void> }
  >()
  #timer: NodeJS.Timeout | undefined
  #ticking = false
  /** Shutting down: no shard is taken, the leases of those still sending are kept renewed. */
  #closing = false
  /** Shut down: no more ticks. */
  #closed = false
  #tickFailures = 0

  constructor(config: RedisStoreConfig, deps: QueueDeps) {
    this.#config = config
    this.#deps = deps
    this.#metrics = queueMetrics(deps.registry)
  }

  /** The connection, made when the first queued bot needs it. */
  #client(): QueueRedis {
    if (this.#redis === undefined) {
      const client = this.#deps.connect(this.#config)
      client.on('error', () => {}) // reported by the commands that fail, and by /readyz
      this.#redis = queueClient(client)
    }
    return this.#redis
  }

  /** The admission of a queued bot, for its compiled pipeline (kept while its queue config is the same). */
  admission(bot: string, config: QueueConfig): Admission {
    const known = this.#admissions.get(bot)
    if (known !== undefined && JSON.stringify(known.config) === JSON.stringify(config)) return known.admission
    const admission = new Admission(bot, config, {
      redis: () => this.#client(),
      prefix: this.#config.prefix,
      // Telegram waits up to 60 s; an update not in Redis within a second is better answered 503.
      timeoutMs: Math.max(1000, this.#config.timeoutMs),
      wake: (name, shard) => this.#bots.get(name)?.shards.get(shard)?.wake(),
    })
    this.#admissions.set(bot, { config, admission })
    return admission
  }

  /** The queued bots of the config now in effect: at start, and after each reload. */
  update(bots: readonly QueuedBot[]): void {
    const names = new Set(bots.map((bot) => bot.name))
    for (const [name, delivery] of this.#bots) {
      if (names.has(name)) continue
      // No longer queued (or gone): its shards are let go; what waits in them stays in Redis.
      this.#bots.delete(name)
      this.#admissions.delete(name)
      for (const shard of delivery.shards.values()) this.#letGo(delivery, shard)
      this.#metrics.held(name, 0)
      this.#metrics.backlog(name, 0, 0)
      this.#metrics.dead(name, 0)
    }
    for (const bot of bots) {
      const known = this.#bots.get(bot.name)
      if (known !== undefined && known.config.shards === bot.config.shards) {
        known.config = bot.config
        known.target = bot.target
        continue
      }
      if (known !== undefined) for (const shard of known.shards.values()) this.#letGo(known, shard)
      const redis = this.#client()
      this.#bots.set(
        bot.name,
        new BotDelivery(
          bot.name,
          bot.config,
          new QueueKeys(this.#config.prefix, bot.name, bot.config.shards),
          bot.target,
          {
            redis,
            me: this.me,
            logger: this.#deps.logger,
            metrics: this.#metrics,
            store: this.#deps.store,
            replies: this.#deps.replies,
            onDead: this.#deps.onDead,
          },
        ),
      )
    }
    if (this.#bots.size > 0 && this.#timer === undefined && !this.#closing) this.#schedule(0)
  }

  #tickMs(): number {
    let lease = Number.POSITIVE_INFINITY
    for (const bot of this.#bots.values()) lease = Math.min(lease, bot.config.leaseMs)
    return Math.max(MIN_TICK_MS, Math.floor(lease / 3))
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      void this.#tick().finally(() => {
        // Until the connection is up (at start, after an outage), look again soon: the shards are
        // taken on the first tick that reaches Redis, not a whole tick later.
        const connected = this.#redis?.client.status === 'ready'
        if (!this.#closed && this.#bots.size > 0) this.#schedule(connected ? this.#tickMs() : MIN_TICK_MS)
        else this.#timer = undefined
      })
    }, ms)
    this.#timer.unref()
  }

  /** At start: waits for the connection (at most `timeoutMs`), so the first updates find it. */
  async waitReady(timeoutMs: number): Promise<void> {
    if (this.#bots.size > 0) await whenReady(this.#client().client, timeoutMs)
  }

  /** Whether the queue can be written now: for /readyz. */
  health(): { readonly ready: boolean; readonly detail: string } {
    if (this.#bots.size === 0) return { ready: true, detail: 'none' }
    const status = this.#redis?.client.status
    return status === 'ready'
      ? { ready: true, detail: 'writable' }
      : { ready: false, detail: `redis ${status ?? 'closed'}` }
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return
    this.#ticking = true
    const redis = this.#client()
    try {
      if (redis.client.status !== 'ready') return
      if (this.#closing) {
        // Sends still under way keep their shards' leases until they are done (see close()).
        await this.#renew(redis)
        return
      }
      let longest = 0
      for (const bot of this.#bots.values()) longest = Math.max(longest, bot.config.leaseMs)
      const live = await redis.heartbeat(replicasKey(this.#config.prefix), this.me, longest)
      await this.#renew(redis)
      await this.#share(redis, Math.max(1, live))
      await this.#report(redis)
      this.#tickFailures = 0
    } catch (error) {
      if (this.#tickFailures++ === 0)
        this.#deps.logger.warn(
          { error: (error as Error).name, detail: (error as Error).message },
          'queue leases could not be renewed; retrying',
        )
    } finally {
      this.#ticking = false
    }
  }

  /**
   * Renews every held lease. A shard whose lease another replica has now is let go at once; one
   * whose lease had lapsed (found free: it ran out while Redis could not be reached, or Redis lost
   * it) is let go too and taken afresh: meanwhile another replica may have taken it, claimed what
   * this one had read and died, so what this one holds of it may be stale and what it should
   * deliver may sit in another consumer's pending list.
   */
  async #renew(redis: QueueRedis): Promise<void> {
    for (const bot of this.#bots.values()) {
      for (const shard of [...bot.shards.values()]) {
        const asked = Date.now()
        const lease = await redis.hold(bot.keys.leases[shard.shard] as string, this.me, bot.config.leaseMs)
        if (lease === 'renewed') {
          shard.renewed(asked)
          shard.pump()
        } else if (lease === 'other') {
          this.#deps.logger.warn(
            { bot: bot.name, shard: shard.shard },
            'queue shard taken by another replica',
          )
          this.#letGo(bot, shard, false)
        } else {
          this.#deps.logger.warn(
            { bot: bot.name, shard: shard.shard },
            'queue shard lease had lapsed; taking the shard afresh',
          )
          this.#letGo(bot, shard)
        }
      }
    }
    for (const [lease, { bot, shard }] of this.#draining) {
      const asked = Date.now()
      const answer = await redis.hold(lease, this.me, bot.config.leaseMs)
      if (answer === 'other') continue // its watchdog has cut the sends already
      shard.renewed(asked)
      // Done meanwhile, and released just before this took the lease again: give it back.
      if (answer === 'taken' && shard.idle) await redis.release(lease, this.me)
    }
  }

  /** Takes free shards up to the fair share, or lets the extra go. */
  async #share(redis: QueueRedis, live: number): Promise<void> {
    const units: [BotDelivery, number][] = []
    for (const bot of this.#bots.values())
      for (let shard = 0; shard < bot.config.shards; shard++) units.push([bot, shard])
    const fair = Math.ceil(units.length / live)
    let held = units.filter(([bot, shard]) => bot.shards.has(shard)).length
    if (held > fair) {
      for (const [bot, shard] of units) {
        if (held <= fair) break
        const delivery = bot.shards.get(shard)
        if (delivery === undefined) continue
        this.#letGo(bot, delivery)
        held--
      }
      return
    }
    // Replicas start at different points of the list, so they do not all try the same shards first.
    const offset = units.length === 0 ? 0 : Number.parseInt(this.me.slice(-8), 16) % units.length
    for (let i = 0; i < units.length && held < fair && !this.#closing; i++) {
      const [bot, shard] = units[(i + offset) % units.length] as [BotDelivery, number]
      if (bot.shards.has(shard) || this.#draining.has(bot.keys.leases[shard] as string)) continue
      const asked = Date.now()
      if ((await redis.hold(bot.keys.leases[shard] as string, this.me, bot.config.leaseMs)) === 'other')
        continue
      if (this.#closing || this.#bots.get(bot.name) !== bot) {
        // Shut down or reloaded while Redis answered: not taken after all.
        await redis.release(bot.keys.leases[shard] as string, this.me)
        continue
      }
      const delivery = new ShardDelivery(bot, shard, asked)
      bot.shards.set(shard, delivery)
      held++
      this.#deps.logger.info({ bot: bot.name, shard, replicas: live }, 'queue shard taken')
      try {
        await delivery.start()
      } catch (error) {
        bot.shards.delete(shard)
        await delivery.stop()
        await redis.release(bot.keys.leases[shard] as string, this.me).catch(() => {})
        throw error
      }
    }
  }

  /**
   * Stops a shard's delivery and, once its sends are done, releases its lease (unless another
   * replica has it). Until then the shard is draining: not taken again here.
   */
  #letGo(bot: BotDelivery, shard: ShardDelivery, release = true): void {
    bot.shards.delete(shard.shard)
    const lease = bot.keys.leases[shard.shard] as string
    const done: Promise<void> = shard
      .stop()
      .then(async () => {
        if (release) await this.#redis?.release(lease, this.me)
      })
      .catch(() => {}) // the lease then runs out on its own
      .finally(() => {
        if (this.#draining.get(lease)?.done === done) this.#draining.delete(lease)
      })
    this.#draining.set(lease, { bot, shard, done })
  }

  /** The gauges: held shards, their backlog and the dead letters. */
  async #report(redis: QueueRedis): Promise<void> {
    const now = Date.now()
    for (const bot of this.#bots.values()) {
      let length = 0
      let oldest: number | undefined
      for (const shard of bot.shards.keys()) {
        const stats = await redis.stats(bot.keys.shards[shard] as string)
        length += stats.length
        if (stats.oldestAt !== undefined) oldest = Math.min(oldest ?? stats.oldestAt, stats.oldestAt)
      }
      this.#metrics.held(bot.name, bot.shards.size)
      this.#metrics.backlog(bot.name, length, oldest === undefined ? 0 : Math.max(0, now - oldest))
      // One replica reports them: the others say 0, so neither max nor sum counts a stale value.
      this.#metrics.dead(bot.name, bot.shards.has(0) ? await redis.deadCount(bot.keys) : 0)
    }
  }

  /**
   * Shutdown: no new sends, the running ones finish (within `graceMs`), the leases go back so
   * another replica takes the shards at once, and the connection closes.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true
    // Each shard's lease goes back once its sends are done. Until then the ticks go on renewing
    // it (a lease shorter than the grace would run out mid-send, and another replica send that
    // chat's next update meanwhile); one still sending past the grace keeps its lease until it
    // runs out, as the process exits and cuts the send.
    for (const bot of this.#bots.values())
      for (const shard of [...bot.shards.values()]) this.#letGo(bot, shard)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all([...this.#draining.values()].map((draining) => draining.done)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs)
      }),
    ])
    clearTimeout(timer)
    this.#closed = true
    clearTimeout(this.#timer)
    const redis = this.#redis
    if (redis === undefined) return
    try {
      if (redis.client.status === 'ready')
        await redis.leaveReplicas(replicasKey(this.#config.prefix), this.me)
    } catch {
      // It drops out of the live replicas on its own.
    }
    redis.client.disconnect()
  }
}
