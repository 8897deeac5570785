/**
 * @module
 * Pacing of a bot's calls to Telegram's flood limits (docs/egress-pacing.md): a message takes one
 * unit of the bot's global budget and one of its chat's, both at once in one {@link Store.limit}
 * call (GCRA; on Redis time with `store: redis`, so every replica shares the budget exactly).
 * Calls of one chat keep their order and go one at a time. A call waits in a bounded queue, for a
 * bounded time; past either bound the bot gets Telegram's own 429 with `retry_after`. Telegram's
 * 429 pauses the chat (or the bot) for its `retry_after`, shared through a store mark, and the
 * call is retried transparently a bounded number of times.
 *
 * Wake-ups are coalesced: per bot one dispatcher walks the ready calls (each the head of its
 * chat); a call denied by the global budget holds the dispatcher behind one timer, a call denied
 * by its chat's budget or pause is parked behind its chat's one timer and the others go on.
 */

import type { Logger } from '../../observe/logger.js'
import {
  type Clock,
  type LimitKey,
  type LimitOutcome,
  type LimitSpec,
  type Store,
  StoreError,
  systemClock,
} from '../../store/index.js'
import type { Attempt, Paced, PacedCall, RefusalReason } from './call.js'
import type { PacingConfig, Rate } from './config.js'
import { MESSAGE_METHODS } from './methods.js'
import type { PacingMetrics } from './metrics.js'

export type { Attempt, ChatTarget, Paced, PacedCall, RefusalReason } from './call.js'
export type { PacingConfig, Rate } from './config.js'
export { chatTarget, MESSAGE_METHODS } from './methods.js'
export { type PacingMetrics, pacingMetrics } from './metrics.js'
export { compilePacing, pacingSchema } from './schema.js'

export interface Pacer {
  run<T>(call: PacedCall, attempt: () => Promise<Attempt<T>>): Promise<Paced<T>>
  /** Refuses waiting calls ('closing'); resolves when none is in flight. */
  close(): Promise<void>
}

export const NO_PACING_METRICS: PacingMetrics = {
  queueDepth() {},
  sent() {},
  tooMany() {},
  retried() {},
  refused() {},
}

export interface PacerDeps {
  readonly store: Store
  readonly metrics: PacingMetrics
  readonly clock?: Clock
  readonly logger?: Logger
}

/** Keys under `#pace:`, which no policy limit name (a-z, 0-9, _ and -) can take. */
const GLOBAL_KEY = '#pace:g'
const chatKey = (chat: string) => `#pace:c:${chat}`
const pauseMark = (bot: string, chat: string | undefined) =>
  chat === undefined ? `{${bot}}:#pace:pause` : `{${bot}}:#pace:pause:${chat}`

function specOf(rate: Rate): LimitSpec {
  const intervalUs = Math.max(1, Math.round((rate.periodMs * 1000) / rate.count))
  return { intervalUs, toleranceUs: intervalUs * rate.burst, shadow: false }
}

/** Whole seconds for `retry_after`, at least 1. */
const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

interface Job {
  readonly call: PacedCall
  readonly attempt: () => Promise<Attempt<unknown>>
  readonly enqueuedAt: number
  deadline: number
  retries: number
  /** The dispatcher has handed it over at least once (its wait is measured). */
  started: boolean
  /** Its attempt is at Telegram now: close() lets it finish. */
  flying: boolean
  readonly resolve: (paced: Paced<unknown>) => void
  readonly reject: (error: unknown) => void
}

interface Lane {
  readonly jobs: Job[]
  /** The head is ready, parked or in flight: the next waits. */
  busy: boolean
  timer: NodeJS.Timeout | undefined
}

interface BotState {
  readonly name: string
  readonly lanes: Map<string, Lane>
  /** Calls whose turn it is, oldest first. */
  readonly ready: Job[]
  /** Calls waiting: queued in a lane, ready or parked (not in flight). */
  waiting: number
  pumping: boolean
  timer: NodeJS.Timeout | undefined
  /** Local pauses after Telegram's 429, ms since the epoch: the bot's and by chat. */
  pausedUntil: number
  readonly chatPauses: Map<string, number>
}

export function createPacer(config: PacingConfig, deps: PacerDeps): Pacer {
  const { store, metrics } = deps
  const clock = deps.clock ?? systemClock
  const globalSpec = specOf(config.global)
  const privateSpec = specOf(config.privateChat)
  const groupSpec = specOf(config.groupChat)
  const shared = store.kind === 'redis'
  const bots = new Map<string, BotState>()
  let closing = false
  let inFlight = 0
  let drained: (() => void) | undefined

  function botState(name: string): BotState {
    let bot = bots.get(name)
    if (bot === undefined) {
      bot = {
        name,
        lanes: new Map(),
        ready: [],
        waiting: 0,
        pumping: false,
        timer: undefined,
        pausedUntil: 0,
        chatPauses: new Map(),
      }
      bots.set(name, bot)
    }
    return bot
  }

  function refuse(bot: BotState, job: Job, why: RefusalReason, retryAfterS: number): void {
    bot.waiting--
    metrics.queueDepth(bot.name, bot.waiting)
    metrics.refused(bot.name, why)
    job.resolve({ kind: 'refused', retryAfterS, why })
    release(bot, job)
  }

  /** The job is done (or refused): the next call of its chat may go. */
  function release(bot: BotState, job: Job): void {
    const chat = job.call.chat
    if (chat === undefined) return
    const lane = bot.lanes.get(chat.id)
    if (lane === undefined) return
    lane.jobs.shift()
    lane.busy = false
    const next = lane.jobs[0]
    if (next === undefined) {
      bot.lanes.delete(chat.id)
      return
    }
    lane.busy = true
    admit(bot, next)
  }

  /**
   * Its turn in its chat has come: a message joins the bot's ready calls, which the dispatcher
   * paces; any other call only waits out a pause and goes, never behind the bot's budget.
   */
  function admit(bot: BotState, job: Job): void {
    if (!MESSAGE_METHODS.has(job.call.method)) {
      void direct(bot, job)
      return
    }
    bot.ready.push(job)
    pump(bot)
  }

  async function direct(bot: BotState, job: Job): Promise<void> {
    let paused: number
    try {
      paused = await pauseEnd(bot, job.call.chat?.id)
    } catch (error) {
      if (!(error instanceof StoreError)) throw error
      refuse(bot, job, 'store_unavailable', 1)
      return
    }
    if (closing) {
      // close() refused the calls it could see: those of a chat. This one it could not.
      if (job.call.chat === undefined) job.resolve({ kind: 'refused', retryAfterS: 1, why: 'closing' })
      return
    }
    const now = clock()
    if (paused > now) {
      if (paused > job.deadline) refuse(bot, job, 'wait_too_long', seconds(paused - now))
      else park(bot, job, paused)
      return
    }
    start(bot, job, now)
  }

  /** Hands the job to Telegram. */
  function start(bot: BotState, job: Job, now: number): void {
    bot.waiting--
    metrics.queueDepth(bot.name, bot.waiting)
    if (!job.started) {
      job.started = true
      metrics.sent(bot.name, now - job.enqueuedAt)
    }
    void execute(bot, job)
  }

  /** Takes the job out of the ready list until `at`, behind its chat's single timer. */
  function park(bot: BotState, job: Job, at: number): void {
    const chat = job.call.chat
    const lane = chat === undefined ? undefined : bot.lanes.get(chat.id)
    const wake = () => {
      if (lane !== undefined) lane.timer = undefined
      else parkedUnbound.delete(timer)
      if (closing) return
      admit(bot, job)
    }
    const timer = setTimeout(wake, Math.max(0, at - clock()))
    timer.unref()
    if (lane !== undefined) lane.timer = timer
    else parkedUnbound.set(timer, job)
  }
  /** Parked calls that are not chat-bound (no lane holds them). */
  const parkedUnbound = new Map<NodeJS.Timeout, Job>()

  async function pauseEnd(bot: BotState, chat: string | undefined): Promise<number> {
    let until = bot.pausedUntil
    if (chat !== undefined) until = Math.max(until, bot.chatPauses.get(chat) ?? 0)
    if (!shared) return until
    const [botMark, chatMark] = await Promise.all([
      store.read(pauseMark(bot.name, undefined)),
      chat === undefined ? undefined : store.read(pauseMark(bot.name, chat)),
    ])
    for (const mark of [botMark, chatMark]) if (mark !== undefined) until = Math.max(until, Number(mark) || 0)
    return until
  }

  function pump(bot: BotState): void {
    if (bot.pumping || bot.timer !== undefined) return
    bot.pumping = true
    dispatch(bot)
      .catch((error: unknown) =>
        deps.logger?.error({ err: error, bot: bot.name }, 'pacing dispatcher failed'),
      )
      .finally(() => {
        bot.pumping = false
        if (bot.ready.length > 0 && bot.timer === undefined && !closing) pump(bot)
      })
  }

  async function dispatch(bot: BotState): Promise<void> {
    while (!closing) {
      const job = bot.ready[0]
      if (job === undefined) return
      const chat = job.call.chat
      let paused: number
      let outcome: LimitOutcome
      try {
        paused = await pauseEnd(bot, chat?.id)
        const now = clock()
        if (paused > now) {
          bot.ready.shift()
          if (paused > job.deadline) refuse(bot, job, 'wait_too_long', seconds(paused - now))
          else park(bot, job, paused)
          continue
        }
        const keys: LimitKey[] = [{ spec: globalSpec, key: GLOBAL_KEY, replyKey: undefined }]
        if (chat !== undefined) {
          const spec = chat.kind === 'private' ? privateSpec : groupSpec
          keys.push({ spec, key: chatKey(chat.id), replyKey: undefined })
        }
        outcome = await store.limit(bot.name, keys)
      } catch (error) {
        bot.ready.shift()
        if (!(error instanceof StoreError)) throw error
        refuse(bot, job, 'store_unavailable', 1)
        continue
      }
      if (closing) return
      const now = clock()
      if (!outcome.allowed) {
        const at = now + Math.ceil(outcome.retryAfterUs / 1000)
        if (at > job.deadline) {
          bot.ready.shift()
          refuse(bot, job, 'wait_too_long', seconds(at - now))
          continue
        }
        if (outcome.denied.includes(0)) {
          // The bot's budget: everyone waits, behind one timer, in order.
          bot.timer = setTimeout(() => {
            bot.timer = undefined
            pump(bot)
          }, at - now)
          bot.timer.unref()
          return
        }
        bot.ready.shift()
        park(bot, job, at)
        continue
      }
      bot.ready.shift()
      start(bot, job, now)
    }
  }

  async function execute(bot: BotState, job: Job): Promise<void> {
    inFlight++
    try {
      let result: Attempt<unknown>
      job.flying = true
      try {
        result = await job.attempt()
      } catch (error) {
        job.reject(error)
        release(bot, job)
        return
      } finally {
        job.flying = false
      }
      const retryAfterS = result.retryAfterS
      if (retryAfterS === undefined) {
        const queuedMs = clock() - job.enqueuedAt
        job.resolve({ kind: 'sent', value: result.value, queuedMs, retries: job.retries })
        release(bot, job)
        return
      }
      metrics.tooMany(bot.name)
      const now = clock()
      const until = now + retryAfterS * 1000
      const chat = result.global === true ? undefined : job.call.chat?.id
      if (chat === undefined) bot.pausedUntil = Math.max(bot.pausedUntil, until)
      else bot.chatPauses.set(chat, Math.max(bot.chatPauses.get(chat) ?? 0, until))
      if (shared) {
        try {
          await store.put(pauseMark(bot.name, chat), String(until), retryAfterS * 1000)
        } catch (error) {
          deps.logger?.warn({ err: error, bot: bot.name }, 'pacing: could not share a pause')
        }
      }
      if (
        !job.call.retriable ||
        job.retries >= config.maxRetries ||
        retryAfterS * 1000 > config.maxWaitMs ||
        closing
      ) {
        job.resolve({
          kind: 'sent',
          value: result.value,
          queuedMs: now - job.enqueuedAt,
          retries: job.retries,
        })
        release(bot, job)
        return
      }
      job.retries++
      job.deadline = until + config.maxWaitMs
      metrics.retried(bot.name)
      bot.waiting++
      metrics.queueDepth(bot.name, bot.waiting)
      // Still the head of its chat (the lane stays busy): it goes again after the pause.
      park(bot, job, until)
    } finally {
      inFlight--
      if (inFlight === 0 && drained !== undefined) drained()
    }
  }

  function forget(now: number): void {
    for (const [name, bot] of bots) {
      for (const [chat, until] of bot.chatPauses) if (until <= now) bot.chatPauses.delete(chat)
      if (bot.waiting === 0 && bot.lanes.size === 0 && bot.chatPauses.size === 0 && bot.pausedUntil <= now) {
        if (!bot.pumping && bot.timer === undefined) bots.delete(name)
      }
    }
  }
  let lastSweep = 0

  return {
    run<T>(call: PacedCall, attempt: () => Promise<Attempt<T>>): Promise<Paced<T>> {
      if (closing) return Promise.resolve({ kind: 'refused', retryAfterS: 1, why: 'closing' })
      if (!config.enabled) {
        return attempt().then((result) => ({ kind: 'sent', value: result.value, queuedMs: 0, retries: 0 }))
      }
      const now = clock()
      if (now - lastSweep > 60_000) {
        lastSweep = now
        forget(now)
      }
      const bot = botState(call.bot)
      if (bot.waiting >= config.maxQueue) {
        metrics.refused(bot.name, 'queue_full')
        const drainMs = (bot.waiting * config.global.periodMs) / config.global.count
        return Promise.resolve({ kind: 'refused', retryAfterS: seconds(drainMs), why: 'queue_full' })
      }
      return new Promise<Paced<T>>((resolve, reject) => {
        const job: Job = {
          call,
          attempt,
          enqueuedAt: now,
          deadline: now + config.maxWaitMs,
          retries: 0,
          started: false,
          flying: false,
          resolve: resolve as (paced: Paced<unknown>) => void,
          reject,
        }
        bot.waiting++
        metrics.queueDepth(bot.name, bot.waiting)
        const chat = call.chat
        if (chat !== undefined) {
          let lane = bot.lanes.get(chat.id)
          if (lane === undefined) {
            lane = { jobs: [], busy: false, timer: undefined }
            bot.lanes.set(chat.id, lane)
          }
          lane.jobs.push(job)
          if (lane.busy) return
          lane.busy = true
        }
        admit(bot, job)
      })
    },

    async close(): Promise<void> {
      closing = true
      for (const bot of bots.values()) {
        if (bot.timer !== undefined) clearTimeout(bot.timer)
        bot.timer = undefined
        const waiting = new Set<Job>(bot.ready)
        for (const lane of bot.lanes.values()) {
          if (lane.timer !== undefined) clearTimeout(lane.timer)
          for (const job of lane.jobs) if (!job.flying) waiting.add(job)
        }
        bot.ready.length = 0
        bot.lanes.clear()
        for (const job of waiting) {
          metrics.refused(bot.name, 'closing')
          job.resolve({ kind: 'refused', retryAfterS: 1, why: 'closing' })
        }
        bot.waiting = 0
        metrics.queueDepth(bot.name, 0)
      }
      for (const [timer, job] of parkedUnbound) {
        clearTimeout(timer)
        metrics.refused(job.call.bot, 'closing')
        job.resolve({ kind: 'refused', retryAfterS: 1, why: 'closing' })
      }
      parkedUnbound.clear()
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve))
    },
  }
}
