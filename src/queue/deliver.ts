/**
 * @module
 * Delivery of a bot's queued updates by the replica that holds their shards. For each held shard
 * a {@link ShardDelivery} reads the stream through the consumer group (first the entries this
 * replica's consumer already has pending, then new ones), keeps a bounded window of them in
 * stream order, and sends each to the upstream exactly as direct delivery does (the same headers,
 * the signature, the timeout). One update of a chat is under way at a time: a later update of
 * the chat waits until the earlier one was delivered or became a dead letter, while other chats
 * go on. An update is acknowledged and deleted only after a 2xx; a failure is retried with a
 * doubling backoff (or the upstream's Retry-After), and after `max_attempts` failures or
 * `max_age` it becomes a dead letter. The bot's `max_inflight` of the queue bounds the sends of
 * this replica, and `rate`, when given, all replicas' together (a GCRA in the store).
 *
 * A 2xx answer that carries a Bot API call (the webhook reply) is executed through the bot's
 * replies runner (the egress's method policy and pacing, with the bot's token): Telegram is not
 * waiting for this answer any more.
 */

import { setMaxListeners } from 'node:events'
import type { Signer } from '../forward/sign.js'
import type { Upstream, UpstreamResult } from '../forward/upstream.js'
import type { Logger } from '../observe/logger.js'
import type { LimitKey, Store } from '../store/index.js'
import type { QueueMetrics } from './metrics.js'
import type { QueueConfig } from './schema.js'
import { orderKey, type QueuedUpdate, type QueueKeys, type QueueRedis } from './streams.js'

/** Entries a shard's delivery holds in memory at most: the window it picks chats' next updates from. */
export const WINDOW = 500

/** The longest wait between two tries of an ack or a burial that Redis did not take. */
const PERSIST_WAIT_MAX_MS = 5000

/**
 * A lease is taken to end this much before Redis lets it go (a tenth of it, at most 1 s): the
 * local clock measures it from before the request, Redis from when it ran it, and clocks drift.
 */
const LEASE_MARGIN_MAX_MS = 1000

/** Tries of one ack or burial before the shard gives up on it (some 5.8 days at 5 s apart). */
const PERSIST_ROUNDS = 100_000

/** Redis lost the consumer group (a restart without persistence, the stream deleted or evicted). */
function isNoGroup(error: unknown): boolean {
  return String((error as Error).message).startsWith('NOGROUP')
}

/** What a bot's delivery uses of its current compiled pipeline; a reload hands it a new one. */
export interface DeliveryTarget {
  readonly upstream: Upstream
  readonly sign: Signer | undefined
}

/** Executes a webhook reply (a Bot API call in a 2xx answer) for a bot; see src/egress/reply.ts. */
export interface RepliesRunner {
  execute(
    bot: string,
    contentType: string | undefined,
    body: Buffer,
  ): Promise<{ readonly status: number; readonly method: string | undefined; readonly reason?: string }>
}

export interface DeliveryDeps {
  readonly redis: QueueRedis
  /** This replica's consumer name, also its lease value. */
  readonly me: string
  readonly logger: Logger
  readonly metrics: QueueMetrics
  /** The gateway's store: the `rate` of the queue is a GCRA there. */
  readonly store: Store
  /** Undefined: the bot has no token, its webhook replies are dropped (a config warning says so). */
  readonly replies: (bot: string) => RepliesRunner | undefined
  /** An update became a dead letter (the alert counts it). */
  readonly onDead: (bot: string) => void
}

/** The outcome of one delivery attempt. */
type Attempt =
  | {
      readonly kind: 'delivered'
      readonly status: number
      readonly reply: Buffer | undefined
      readonly type: string | undefined
      /** The answer was over the upstream's answer limit: its reply is withheld (logged). */
      readonly oversized?: true
    }
  | {
      readonly kind: 'failed'
      readonly reason: string
      readonly status: number | undefined
      readonly retryAfterMs: number | undefined
    }

function attemptOf(result: UpstreamResult): Attempt {
  switch (result.kind) {
    case 'timeout':
      return { kind: 'failed', reason: 'upstream_timeout', status: undefined, retryAfterMs: undefined }
    case 'unreachable':
      return { kind: 'failed', reason: 'upstream_unreachable', status: undefined, retryAfterMs: undefined }
    case 'too_large':
      // Delivered: the bot has the update; its answer was too large to execute.
      return { kind: 'delivered', status: result.status, reply: undefined, type: undefined, oversized: true }
    case 'answer': {
      const { status } = result
      if (status >= 200 && status < 300)
        return {
          kind: 'delivered',
          status,
          reply: result.body.length === 0 ? undefined : result.body,
          type: result.contentType,
        }
      const after = Number(result.retryAfter)
      const busy = status === 429 || status === 503
      return {
        kind: 'failed',
        reason: busy ? 'upstream_busy' : 'upstream_error',
        status,
        retryAfterMs: busy && Number.isFinite(after) && after > 0 ? after * 1000 : undefined,
      }
    }
  }
}

/**
 * The controller whose signal cuts a shard's sends: each send under way listens to it, up to
 * `max_inflight` at once (each removes its listener when it settles), so Node's warning at more
 * than ten listeners (a leak detector, printed on stderr) does not apply.
 */
function leaseController(): AbortController {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal)
  return controller
}

/** One queued update in a shard's window. */
interface Held {
  readonly update: QueuedUpdate
  /** Failed deliveries so far (also kept in Redis, for a replica that takes the shard over). */
  attempts: number
  /** ready: may go when its chat is free; sending: under way (or being acknowledged); waiting: a retry is due later. */
  state: 'ready' | 'sending' | 'waiting'
}

/** A bot's delivery on this replica: its shards held here, its target and its limits. */
export class BotDelivery {
  readonly name: string
  config: QueueConfig
  readonly keys: QueueKeys
  target: DeliveryTarget
  readonly deps: DeliveryDeps
  /** Sends under way over the shards held here. */
  inflight = 0
  readonly shards = new Map<number, ShardDelivery>()

  constructor(
    name: string,
    config: QueueConfig,
    keys: QueueKeys,
    target: DeliveryTarget,
    deps: DeliveryDeps,
  ) {
    this.name = name
    this.config = config
    this.keys = keys
    this.target = target
    this.deps = deps
    deps.metrics.start(name)
  }

  get hasRoom(): boolean {
    return this.inflight < this.config.maxInflight
  }

  /** A send finished: every held shard may start one now. */
  pumpAll(): void {
    for (const shard of this.shards.values()) shard.pump()
  }

  /** Waits for the `rate` of the queue; resolves false when the shard was let go meanwhile. */
  async admitRate(shard: ShardDelivery): Promise<boolean> {
    const spec = this.config.rate
    if (spec === undefined) return true
    const keys: LimitKey[] = [{ spec, key: 'queue:rate', replyKey: undefined }]
    // Bounded: each round either passes, or waits the time the GCRA says, while the shard is held
    // (a lease that ran out meanwhile ends the wait: no send starts on a lease not known to be held).
    for (let round = 0; round < 10_000 && shard.valid; round++) {
      let waitMs: number
      try {
        const outcome = await this.deps.store.limit(this.name, keys)
        if (outcome.allowed) return true
        waitMs = Math.max(1, Math.ceil(outcome.retryAfterUs / 1000))
      } catch {
        waitMs = 1000 // the store cannot answer: hold deliveries back rather than exceed the rate
      }
      await shard.pause(waitMs)
    }
    return false
  }
}

/** One shard of one bot, while this replica holds its lease. */
export class ShardDelivery {
  readonly #bot: BotDelivery
  readonly shard: number
  readonly #stream: string
  readonly #window: Held[] = []
  /** Ids in the window: the pending list read again (after a failed ack) skips them. */
  readonly #ids = new Set<string>()
  /** Order keys ({@link orderKey}) with an update sending or waiting for its retry. */
  readonly #busy = new Set<string>()
  /** The consumer's own pending entries are read first (from this id), then new ones ('>'). */
  #cursor = '0'
  #reading = false
  #timer: NodeJS.Timeout | undefined
  /** Retry timers, cleared when the shard is let go. */
  readonly #retries = new Set<NodeJS.Timeout>()
  /** Pauses under way ({@link pause}): ended at once when the shard is let go. */
  readonly #pauses = new Set<() => void>()
  #sending = 0
  #stopped = false
  #drained: (() => void) | undefined
  #stopping: Promise<void> | undefined
  /** The lease is known to be held until then (local clock): no send starts after it. */
  validUntil = 0
  /** Aborted when the lease runs out unrenewed: the sends under way are cut (see {@link renewed}). */
  #lease = leaseController()
  #watchdog: NodeJS.Timeout | undefined
  #readFailures = 0

  /** `asked`: when the request that took the lease was sent (local clock). */
  constructor(bot: BotDelivery, shard: number, asked: number) {
    this.#bot = bot
    this.shard = shard
    this.#stream = bot.keys.shards[shard] as string
    this.renewed(asked)
  }

  /**
   * The lease was taken or renewed by a request sent at `asked`. If it runs out before the next
   * renewal (Redis out of reach), the sends under way are cut then: once it has run out another
   * replica may take the shard and deliver the same chats, and a send of this one still going on
   * would be a second update of a chat under way (or the same one twice at once). A shard let go
   * keeps its lease renewed, and watched, until its last send is done.
   */
  renewed(asked: number): void {
    const { leaseMs } = this.#bot.config
    this.validUntil = asked + leaseMs - Math.min(LEASE_MARGIN_MAX_MS, leaseMs / 10)
    clearTimeout(this.#watchdog)
    if (this.#stopped && this.#sending === 0) return
    this.#watchdog = setTimeout(() => this.#lapse(), Math.max(0, this.validUntil - Date.now()))
  }

  #lapse(): void {
    this.#watchdog = undefined
    if (this.#sending === 0) return
    this.#bot.deps.logger.warn(
      { bot: this.#bot.name, shard: this.shard, sending: this.#sending },
      'queue lease ran out unrenewed: sends under way cut',
    )
    this.#lease.abort()
    this.#lease = leaseController()
  }

  get stopped(): boolean {
    return this.#stopped
  }

  /** Let go, and its last send done. */
  get idle(): boolean {
    return this.#stopped && this.#sending === 0
  }

  /** Held, and its lease known to be held now: a send may start. */
  get valid(): boolean {
    return !this.#stopped && Date.now() < this.validUntil
  }

  /** Waits `ms`, or less if the shard is let go meanwhile. */
  pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#pauses.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#pauses.add(done)
    })
  }

  /** Updates in the window (waiting, sending or due for a retry). */
  get windowSize(): number {
    return this.#window.length
  }

  /** Takes over what other consumers left pending, then starts reading. */
  async start(): Promise<void> {
    const { redis, me } = this.#bot.deps
    await redis.ensureGroup(this.#stream)
    await redis.claimAll(this.#stream, me, 1_000_000)
    // Consumers of replicas long gone, with nothing pending any more.
    await redis.forgetConsumers(this.#stream, this.#bot.config.leaseMs * 4, me).catch(() => {})
    void this.#fill()
  }

  /** New updates were queued on this replica: read now instead of at the next poll. */
  wake(): void {
    if (this.#reading || this.#stopped) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    void this.#fill()
  }

  /** Stops reading and sending; resolves once the sends under way are done (the same promise each call). */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping
    this.#stopped = true
    clearTimeout(this.#timer)
    if (this.#sending === 0) clearTimeout(this.#watchdog)
    for (const timer of this.#retries) clearTimeout(timer)
    this.#retries.clear()
    for (const done of [...this.#pauses]) done()
    this.#stopping =
      this.#sending === 0
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.#drained = resolve
          })
    return this.#stopping
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#fill()
    }, ms)
  }

  async #fill(): Promise<void> {
    if (this.#reading || this.#stopped) return
    const room = WINDOW - this.#window.length
    if (room <= 0) return // a send that finishes calls fill again
    const { redis, me, logger } = this.#bot.deps
    this.#reading = true
    let read = 0
    let recovered = false
    try {
      const updates = await redis.read(this.#stream, me, this.#cursor, room)
      read = updates.length
      const recovering = this.#cursor !== '>'
      if (recovering) this.#cursor = read === 0 ? '>' : (updates[read - 1] as QueuedUpdate).id
      recovered = recovering && read === 0
      const attempts = recovering
        ? await redis.attempts(
            this.#bot.keys,
            updates.map((u) => u.id),
          )
        : []
      if (!this.#stopped)
        for (const [index, update] of updates.entries()) {
          if (this.#ids.has(update.id)) continue
          this.#ids.add(update.id)
          this.#window.push({ update, attempts: attempts[index] ?? 0, state: 'ready' })
        }
      this.#readFailures = 0
    } catch (error) {
      // A read that failed may still have run (its answer lost): what it took is in this consumer's
      // pending list and nowhere else. Read that list again; what the window lacks of it is newer
      // than all the window holds, so it goes behind, in stream order.
      this.#cursor = '0'
      if (isNoGroup(error)) {
        // Redis lost the stream's group: made again, the stream is read from its start.
        await redis.ensureGroup(this.#stream).catch(() => {})
        logger.warn({ bot: this.#bot.name, shard: this.shard }, 'queue consumer group made again')
      }
      if (this.#readFailures++ === 0)
        logger.warn(
          {
            bot: this.#bot.name,
            shard: this.shard,
            error: (error as Error).name,
            detail: (error as Error).message,
          },
          'queue read failed',
        )
    } finally {
      this.#reading = false
    }
    this.pump()
    const { pollMs } = this.#bot.config
    // After a read that found entries, or the end of the pending list, more may be there at once.
    if (this.#readFailures > 0) this.#schedule(Math.min(5000, pollMs * 2 ** this.#readFailures))
    else this.#schedule(read > 0 || recovered ? 0 : pollMs)
  }

  /** Starts the sends the window, the chats' order, max_inflight and the lease allow. */
  pump(): void {
    if (!this.valid) return
    for (const held of this.#window) {
      if (!this.#bot.hasRoom) return
      if (held.state !== 'ready') continue
      const key = orderKey(held.update)
      if (this.#busy.has(key)) continue
      this.#busy.add(key)
      held.state = 'sending'
      void this.#send(held, key)
    }
  }

  async #send(held: Held, key: string): Promise<void> {
    const bot = this.#bot
    bot.inflight++
    this.#sending++
    let release = true
    try {
      const { update } = held
      if (Date.now() - update.receivedAt > bot.config.maxAgeMs) {
        await this.#bury(held, 'max_age')
        return
      }
      if (!(await bot.admitRate(this)) || !this.valid) {
        held.state = 'ready' // the lease renewed, pump starts it again
        return
      }
      const started = performance.now()
      const target = bot.target
      const headers = {
        forwardedFor: update.forwardedFor,
        forwardedProto: update.forwardedProto,
        requestId: update.requestId,
      }
      const signed =
        target.sign === undefined
          ? headers
          : { ...headers, extra: target.sign(update.body, update.updateId, update.requestId) }
      const cut = this.#lease.signal
      const attempt = attemptOf(await target.upstream.send(update.body, signed, cut))
      const ms = Math.round((performance.now() - started) * 10) / 10
      if (attempt.kind === 'failed' && cut.aborted) {
        // Cut as the lease ran out: not the bot's failure. Sent again if the lease is renewed;
        // else whoever takes the shard reads it from the pending list.
        this.#log('warn', held, { ms }, 'queued delivery cut: the lease ran out')
        held.state = 'ready'
        return
      }
      if (attempt.kind === 'delivered') {
        await this.#ack(held)
        this.#log('info', held, { status: attempt.status, ms }, 'queued update delivered')
        bot.deps.metrics.delivery(bot.name, 'delivered')
        bot.deps.metrics.latency(bot.name, Date.now() - update.receivedAt)
        if (attempt.oversized)
          this.#log('warn', held, { reason: 'answer_too_large' }, 'webhook reply of a queued update dropped')
        if (attempt.reply !== undefined) await this.#reply(held, attempt.type, attempt.reply)
        return
      }
      release = !(await this.#failed(held, attempt, ms))
    } catch (error) {
      // Not the upstream's outcome (that is an Attempt): Redis did not take the ack or the burial
      // before the shard was let go (or in PERSIST_ROUNDS tries). The update stays pending: the
      // next holder of the shard reads it first, before its chat's later updates. Until then its
      // chat stays held here, so none of them goes ahead of it.
      release = this.#stopped
      this.#log('warn', held, { error: (error as Error).name }, 'queued update left pending')
      this.#drop(held)
    } finally {
      if (release) this.#busy.delete(key)
      bot.inflight--
      this.#sending--
      if (this.#stopped && this.#sending === 0) {
        clearTimeout(this.#watchdog)
        this.#drained?.()
      }
      bot.pumpAll()
      if (this.#window.length < WINDOW / 2 && this.#timer === undefined) void this.#fill()
    }
  }

  /** A failed attempt: counted, then retried later or buried. True while the chat stays held for the retry. */
  async #failed(held: Held, attempt: Extract<Attempt, { kind: 'failed' }>, ms: number): Promise<boolean> {
    const bot = this.#bot
    const { config, deps } = bot
    held.attempts = await deps.redis.failed(bot.keys, held.update.id).catch(() => held.attempts + 1)
    if (held.attempts >= config.maxAttempts) {
      await this.#bury(held, `max_attempts: ${attempt.reason}`)
      return false
    }
    const backoff = Math.min(config.retryMaxMs, config.retryMinMs * 2 ** Math.min(30, held.attempts - 1))
    const waitMs = Math.min(config.retryMaxMs, attempt.retryAfterMs ?? backoff)
    deps.metrics.delivery(bot.name, 'retried')
    this.#log(
      'warn',
      held,
      { reason: attempt.reason, status: attempt.status, ms, retry_ms: waitMs },
      'queued delivery failed',
    )
    if (this.#stopped) {
      this.#drop(held)
      return false
    }
    held.state = 'waiting'
    const timer = setTimeout(() => {
      this.#retries.delete(timer)
      held.state = 'ready'
      this.#busy.delete(orderKey(held.update))
      this.pump()
    }, waitMs)
    this.#retries.add(timer)
    return true
  }

  /**
   * A write that must land before the chat's next update may go (the ack of a delivered update,
   * a burial): tried again, waiting 100 ms doubling up to 5 s, while the shard is held. The
   * chat stays held meanwhile: letting its next update go first would put this one behind it
   * (a delivered one delivered again after its successor). Throws once the shard is let go.
   */
  async #persist(write: () => Promise<void>): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        await write()
        return
      } catch (error) {
        if (this.#stopped || round >= PERSIST_ROUNDS) throw error
        if (round === 0)
          this.#bot.deps.logger.warn(
            { bot: this.#bot.name, shard: this.shard, error: (error as Error).name },
            'queue write failed; its chat waits until Redis takes it',
          )
      }
      await this.pause(Math.min(PERSIST_WAIT_MAX_MS, 100 * 2 ** Math.min(round, 6)))
    }
  }

  async #ack(held: Held): Promise<void> {
    const bot = this.#bot
    await this.#persist(() => bot.deps.redis.ack(bot.keys, this.shard, held.update.id))
    this.#drop(held)
  }

  async #bury(held: Held, why: string): Promise<void> {
    const bot = this.#bot
    const { deps, config } = bot
    await this.#persist(() =>
      deps.redis.bury(bot.keys, this.shard, held.update, why, held.attempts, config.deadMaxLen),
    )
    this.#drop(held)
    deps.metrics.delivery(bot.name, 'dead')
    deps.onDead(bot.name)
    this.#log('error', held, { why }, 'queued update moved to the dead letters')
  }

  async #reply(held: Held, type: string | undefined, body: Buffer): Promise<void> {
    const bot = this.#bot
    const runner = bot.deps.replies(bot.name)
    if (runner === undefined) {
      this.#log('warn', held, { reason: 'no_token' }, 'webhook reply of a queued update dropped')
      return
    }
    try {
      await runner.execute(bot.name, type, body)
    } catch (error) {
      this.#log('warn', held, { error: (error as Error).name }, 'webhook reply of a queued update failed')
    }
  }

  #drop(held: Held): void {
    const index = this.#window.indexOf(held)
    if (index >= 0) this.#window.splice(index, 1)
    this.#ids.delete(held.update.id)
  }

  #log(level: 'info' | 'warn' | 'error', held: Held, extra: Record<string, unknown>, message: string): void {
    const { update } = held
    this.#bot.deps.logger[level](
      {
        bot: this.#bot.name,
        update_id: update.updateId,
        update_type: update.type,
        chat_id: update.chatId,
        user_id: update.userId,
        command: update.command,
        request_id: update.requestId,
        attempts: held.attempts,
        queued_ms: Date.now() - update.receivedAt,
        ...extra,
      },
      message,
    )
  }
}
