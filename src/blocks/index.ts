/**
 * @module
 * Runtime blocks: a chat or a user of one bot, blocked for a while by an operator through the
 * admin API. Their updates are dropped with 200 and reason `blocked` (see checks/blocked).
 *
 * Blocks live in the store, so with `store: redis` every replica honours a block as soon as it is
 * written. Two kinds of keys:
 *
 *   block:<bot>:<chat|user>:<id>   {"until":ms,"at":ms,"note":...,"by":...}, expiring with the block
 *   blocks:<bot>                   the bot's generation: a fresh random value on every change
 *
 * The request path reads one key per update, the bot's generation, whatever the number of blocks:
 *
 * - no generation: the bot has had no block for a year (the generation outlives every block), so
 *   nothing is blocked; with the memory store this is one Map lookup, synchronous;
 * - the generation of the local snapshot: the answer comes from the snapshot (two Map lookups);
 * - another generation: a block was added or lifted, here or on another replica. This update reads
 *   its chat and user keys directly, so the change applies at once, and a refresh of the snapshot
 *   starts in the background (one `list`, off the request path).
 *
 * With a store that chains (Redis), the read is the first step of the update's chain
 * ({@link BotBlocks.matchOn}): the store applies the same rule, given the snapshot's generation and
 * verdict, in the round trip that also claims the dedupe mark and evaluates the limits.
 *
 * The generation is read on every update rather than cached: a cached "no blocks" would let a
 * replica miss a block written on another one. Writers write the block key first and the new
 * generation second, and a reader lists only after reading a generation, so a snapshot is never
 * older than the generation it is filed under, in whatever order concurrent writes land.
 */

import { randomBytes } from 'node:crypto'
import { isPromise } from '../pipeline/run.js'
import type { Chain, Clock, Maybe, Store } from '../store/index.js'
import { SKIPPED, systemClock } from '../store/index.js'

export type BlockKind = 'chat' | 'user'

export interface Block {
  readonly bot: string
  readonly kind: BlockKind
  readonly id: number
  /** Milliseconds since the epoch when the block ends. */
  readonly until: number
  /** When it was set. */
  readonly at: number
  readonly note: string | undefined
  /** The admin token's `sub`, when it had one. */
  readonly by: string | undefined
}

/** A block lasts at most this long; the generation lives this long after the last change. */
export const MAX_BLOCK_MS = 365 * 86_400_000
/** Blocks per bot: an admin API bound that also bounds each replica's snapshot. */
export const MAX_BLOCKS_PER_BOT = 10_000

interface StoredBlock {
  readonly until: number
  readonly at: number
  readonly note?: string | undefined
  readonly by?: string | undefined
}

const KEY = /^block:([a-z0-9_-]+):(chat|user):(-?[0-9]+)$/

function newGeneration(): string {
  return randomBytes(12).toString('base64url')
}

/** One bot's view for the request path: the generation key, the snapshot, the direct reads. */
export class BotBlocks {
  readonly #store: Store
  readonly #clock: Clock
  readonly #blocks: Blocks
  readonly #bot: string
  readonly #generationKey: string
  readonly #prefix: string
  /** The generation the snapshot below was listed under. */
  #generation: string | undefined
  #chats = new Map<number, number>()
  #users = new Map<number, number>()
  /** The generation a background refresh is listing for. */
  #refreshing: string | undefined

  constructor(blocks: Blocks, store: Store, clock: Clock, bot: string) {
    this.#blocks = blocks
    this.#store = store
    this.#clock = clock
    this.#bot = bot
    this.#generationKey = generationKey(bot)
    this.#prefix = `block:${bot}:`
  }

  /**
   * Whether the chat or the user of an update is blocked, and which. Synchronous with a store that
   * answers synchronously (memory); never rejects: when the store fails, the last snapshot decides.
   */
  match(chatId: number | undefined, userId: number | undefined): Maybe<BlockKind | undefined> {
    const generation = this.#store.read(this.#generationKey)
    if (isPromise(generation))
      return generation.then(
        (value) => this.#decide(value, chatId, userId),
        () => this.#fromSnapshot(chatId, userId),
      )
    return this.#decide(generation, chatId, userId)
  }

  /** The store the request path reads: the chain of an update is opened on it. */
  get store(): Store {
    return this.#store
  }

  /**
   * {@link match} as the first step of an update's chain: the store reads the generation and, when
   * it is not the snapshot's, the block keys, and applies the block in the same round trip as the
   * steps after it. Rejects with the chain when the store fails (the runner then calls `match`).
   */
  matchOn(
    chain: Chain,
    chatId: number | undefined,
    userId: number | undefined,
  ): Promise<BlockKind | undefined> {
    const keys: string[] = []
    if (chatId !== undefined) keys.push(`${this.#prefix}chat:${chatId}`)
    if (userId !== undefined) keys.push(`${this.#prefix}user:${userId}`)
    const known = this.#fromSnapshot(chatId, userId)
    const query = {
      generationKey: this.#generationKey,
      known: this.#generation,
      knownFound: known === undefined ? -1 : known === 'chat' ? 0 : keys.length - 1,
      keys,
    }
    return chain.blocks(query).then((answer) => {
      if (answer === SKIPPED) return undefined
      const { generation, found } = answer
      if (generation !== undefined && generation !== this.#generation) this.#refresh(generation)
      if (found < 0) return undefined
      return found === 0 && chatId !== undefined ? 'chat' : 'user'
    })
  }

  #decide(
    generation: string | undefined,
    chatId: number | undefined,
    userId: number | undefined,
  ): Maybe<BlockKind | undefined> {
    if (generation === undefined) return undefined
    if (generation === this.#generation) return this.#fromSnapshot(chatId, userId)
    this.#refresh(generation)
    return this.#direct(chatId, userId)
  }

  #fromSnapshot(chatId: number | undefined, userId: number | undefined): BlockKind | undefined {
    const chat = chatId === undefined ? undefined : this.#chats.get(chatId)
    const user = userId === undefined ? undefined : this.#users.get(userId)
    if (chat === undefined && user === undefined) return undefined
    const now = this.#clock()
    if (chat !== undefined && chat > now) return 'chat'
    if (user !== undefined && user > now) return 'user'
    return undefined
  }

  #direct(chatId: number | undefined, userId: number | undefined): Maybe<BlockKind | undefined> {
    const chat = chatId === undefined ? undefined : this.#store.read(`${this.#prefix}chat:${chatId}`)
    const user = userId === undefined ? undefined : this.#store.read(`${this.#prefix}user:${userId}`)
    if (isPromise(chat) || isPromise(user)) {
      return Promise.all([chat, user]).then(
        ([c, u]) => (c !== undefined ? 'chat' : u !== undefined ? 'user' : undefined),
        () => this.#fromSnapshot(chatId, userId),
      )
    }
    return chat !== undefined ? 'chat' : user !== undefined ? 'user' : undefined
  }

  #refresh(generation: string): void {
    if (this.#refreshing === generation) return
    this.#refreshing = generation
    this.#blocks.list(this.#bot).then(
      (blocks) => {
        if (this.#refreshing !== generation) return // a newer generation is being listed
        const now = this.#clock()
        const chats = new Map<number, number>()
        const users = new Map<number, number>()
        for (const block of blocks) (block.kind === 'chat' ? chats : users).set(block.id, now + block.ttlMs)
        this.#chats = chats
        this.#users = users
        this.#generation = generation
        this.#refreshing = undefined
      },
      () => {
        if (this.#refreshing === generation) this.#refreshing = undefined
      },
    )
  }
}

function generationKey(bot: string): string {
  return `blocks:${bot}`
}

function blockKey(bot: string, kind: BlockKind, id: number): string {
  return `block:${bot}:${kind}:${id}`
}

/** All blocks of the gateway: the per-bot views (held across reloads) and the admin operations. */
export interface BlocksOptions {
  readonly clock?: Clock
  /**
   * Most blocks per bot.
   * @default MAX_BLOCKS_PER_BOT
   */
  readonly maxPerBot?: number
}

export class Blocks {
  readonly #store: Store
  readonly #clock: Clock
  readonly #maxPerBot: number
  readonly #bots = new Map<string, BotBlocks>()

  constructor(store: Store, options: BlocksOptions = {}) {
    this.#store = store
    this.#clock = options.clock ?? systemClock
    this.#maxPerBot = options.maxPerBot ?? MAX_BLOCKS_PER_BOT
  }

  /** The request path's view of one bot; the same object across reloads, so its snapshot carries over. */
  forBot(bot: string): BotBlocks {
    let view = this.#bots.get(bot)
    if (view === undefined) {
      view = new BotBlocks(this, this.#store, this.#clock, bot)
      this.#bots.set(bot, view)
    }
    return view
  }

  /**
   * Blocks `kind` `id` of `bot` for `durationMs` (at most {@link MAX_BLOCK_MS}), replacing any block
   * of it. Undefined when the bot already has its most blocks ({@link MAX_BLOCKS_PER_BOT}).
   */
  async block(
    bot: string,
    kind: BlockKind,
    id: number,
    durationMs: number,
    meta: { readonly note?: string | undefined; readonly by?: string | undefined } = {},
  ): Promise<Block | undefined> {
    const key = blockKey(bot, kind, id)
    if ((await this.#store.read(key)) === undefined) {
      const count = (await this.#store.list(`block:${bot}:`)).length
      if (count >= this.#maxPerBot) return undefined
    }
    const at = this.#clock()
    const duration = Math.min(durationMs, MAX_BLOCK_MS)
    const stored: StoredBlock = { until: at + duration, at, note: meta.note, by: meta.by }
    await this.#store.put(key, JSON.stringify(stored), duration)
    // After the block itself: a replica that sees the new generation and lists will find it.
    await this.#store.put(generationKey(bot), newGeneration(), MAX_BLOCK_MS)
    return { bot, kind, id, until: stored.until, at, note: meta.note, by: meta.by }
  }

  /** Lifts a block; false when there was none. */
  async unblock(bot: string, kind: BlockKind, id: number): Promise<boolean> {
    const key = blockKey(bot, kind, id)
    if ((await this.#store.read(key)) === undefined) return false
    await this.#store.remove(key)
    await this.#store.put(generationKey(bot), newGeneration(), MAX_BLOCK_MS)
    return true
  }

  /** Live blocks, of one bot or of all, sorted by bot, kind and id; `ttlMs` is what is left. */
  async list(bot?: string): Promise<(Block & { readonly ttlMs: number })[]> {
    const entries = await this.#store.list(bot === undefined ? 'block:' : `block:${bot}:`)
    const blocks: (Block & { readonly ttlMs: number })[] = []
    for (const entry of entries) {
      const match = KEY.exec(entry.key)
      if (match === null) continue
      let stored: StoredBlock
      try {
        stored = JSON.parse(entry.value) as StoredBlock
      } catch {
        continue
      }
      blocks.push({
        bot: match[1] as string,
        kind: match[2] as BlockKind,
        id: Number(match[3]),
        until: stored.until,
        at: stored.at,
        note: stored.note,
        by: stored.by,
        ttlMs: entry.ttlMs,
      })
    }
    return blocks.sort((a, b) => a.bot.localeCompare(b.bot) || a.kind.localeCompare(b.kind) || a.id - b.id)
  }
}
