/**
 * @module
 * Check 13 under `upstream.delivery: queued`: instead of forwarding, the clean update is appended
 * to its shard of the bot's queue (one script: the length check and the XADD) and Telegram gets
 * 200 as soon as Redis has it. When the queue is full, or Redis cannot take the update in time,
 * Telegram gets 503 + Retry-After and redelivers it later: nothing is lost and nothing is dropped
 * (docs/queue.md).
 */

import { type Answer, failure } from '../pipeline/answer.js'
import type { Exchange } from '../pipeline/exchange.js'
import type { UpdateFacts } from '../telegram/update.js'
import type { QueueConfig } from './schema.js'
import { QueueKeys, type QueueRedis, shardOf } from './streams.js'

/** Seconds Telegram is asked to wait before it redelivers an update the queue could not take. */
export const QUEUE_RETRY_AFTER = '5'

const QUEUED: Answer = {
  status: 200,
  reason: 'queued',
  outcome: 'queued',
  body: null,
  contentType: undefined,
  retryAfter: undefined,
  close: false,
}

/** What the admission needs of the process's queue: its Redis, and a way to wake a local shard. */
export interface AdmissionDeps {
  /** The queue's Redis; undefined while it is not connected. */
  redis(): QueueRedis | undefined
  readonly prefix: string
  /** The longest an XADD may take before Telegram is answered 503. */
  readonly timeoutMs: number
  /** Called after an update was queued: the shard's delivery, if this replica holds it, reads at once. */
  wake(bot: string, shard: number): void
}

/** One bot's way into its queue. */
export class Admission {
  readonly #bot: string
  readonly #config: QueueConfig
  readonly #keys: QueueKeys
  readonly #deps: AdmissionDeps

  constructor(bot: string, config: QueueConfig, deps: AdmissionDeps) {
    this.#bot = bot
    this.#config = config
    this.#keys = new QueueKeys(deps.prefix, bot, config.shards)
    this.#deps = deps
  }

  async admit(exchange: Exchange, forwardedProto: string): Promise<Answer> {
    const redis = this.#deps.redis()
    if (redis === undefined || redis.client.status !== 'ready') {
      exchange.detail = 'queue not connected'
      return failure(503, 'queue_unavailable', 'failed', { retryAfter: QUEUE_RETRY_AFTER })
    }
    const facts = exchange.update as UpdateFacts
    const shard = shardOf(facts.chatId, facts.userId, this.#config.shards)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#deps.timeoutMs)
    })
    let id: string | undefined | 'late'
    try {
      const queued = redis.admit(this.#keys, shard, this.#config.maxLen, {
        body: exchange.body as Buffer,
        receivedAt: Date.now(),
        updateId: facts.id,
        type: facts.type,
        chatId: facts.chatId,
        userId: facts.userId,
        command: facts.command,
        requestId: exchange.requestId,
        forwardedFor: exchange.client?.text ?? '',
        forwardedProto,
      })
      // A late answer still lands: the update may then be queued and also redelivered by
      // Telegram; dedupe lets the copy through (the mark was released), so it is delivered twice.
      queued.catch(() => {})
      id = await Promise.race([queued, late])
    } catch (error) {
      exchange.detail = `queue: ${(error as Error).name}`
      return failure(503, 'queue_unavailable', 'failed', { retryAfter: QUEUE_RETRY_AFTER })
    } finally {
      clearTimeout(timer)
    }
    if (id === 'late') {
      exchange.detail = `queue: no answer within ${this.#deps.timeoutMs} ms`
      return failure(503, 'queue_unavailable', 'failed', { retryAfter: QUEUE_RETRY_AFTER })
    }
    if (id === undefined) {
      exchange.detail = `queue holds max_len (${this.#config.maxLen})`
      return failure(503, 'queue_full', 'failed', { retryAfter: QUEUE_RETRY_AFTER })
    }
    this.#deps.wake(this.#bot, shard)
    return QUEUED
  }
}
