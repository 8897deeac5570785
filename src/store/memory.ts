/**
 * @module
 * The in-process store: maps of marks with expiry times, bounded in size. It serves `store:
 * memory` (one instance) and, under `store.on_error: local`, stands in for Redis while Redis
 * cannot answer.
 *
 * Expiry is checked when an entry is read (no timer per entry, none per request); a sweep on
 * writes, limited in work per call, drops expired entries so memory follows live entries. When
 * `maxEntries` is reached the least recently used entry goes first (the Map keeps insertion order,
 * and a write or a rate-limit evaluation re-inserts), so a sender cycling through keys can only
 * evict entries, never grow memory.
 *
 * Marks (dedupe, blocks) and rate-limit states live in two maps, each bounded by `maxEntries`:
 * limit keys are driven by senders (`key: ip` even before authentication), and a flood of them
 * must not evict the dedupe marks of genuine updates.
 *
 * Times: a mark's expiry is kept in whole milliseconds since the store was created, a small
 * integer V8 stores inside the entry (an absolute time would be a boxed double, one more heap
 * object per mark). A rate-limit state is kept in whole microseconds since the epoch, the unit of
 * GCRA ({@link ./gcra.ts}): it is its TAT, which is also exactly when it expires (from then on the
 * key behaves as fresh).
 */

import { conforms, nextTat, waitUs } from './gcra.js'
import type { Clock, Entry, LimitKey, LimitOutcome, Store } from './index.js'
import { ALLOWED, systemClock } from './index.js'

export interface MemoryStoreOptions {
  /**
   * Most marks kept at once, and separately most rate-limit states.
   * @default 100000
   */
  readonly maxEntries?: number
  readonly clock?: Clock
}

interface Mark {
  value: string
  /** In the unit of its map: milliseconds since the store's creation (marks), microseconds since the epoch (limit states). */
  expiresAt: number
}

/**
 * Entries looked at per new entry to drop expired ones: more than one, so the sweep goes round the
 * map faster than writes grow it, and every expired entry is dropped within a bounded number of
 * writes.
 */
const SWEEP_PER_WRITE = 2

/**
 * A Map of expiring entries in least-recently-used order, bounded in size.
 *
 * Both walks over the entries (the sweep for expired ones, and eviction from the oldest end) use
 * iterators kept from one call to the next. A Map keeps deleted entries as holes until it is
 * rehashed, and a fresh iterator starts at its first slot: evicting with `keys().next()` stepped
 * over every hole left by earlier evictions, and at the entry cap cost tens of microseconds per
 * write. A kept iterator passes each hole once.
 */
class ExpiringMap {
  readonly #entries = new Map<string, Mark>()
  readonly #max: number
  #sweep: IterableIterator<[string, Mark]> | undefined
  #oldest: IterableIterator<string> | undefined

  constructor(max: number) {
    this.#max = max
  }

  get size(): number {
    return this.#entries.size
  }

  /** The live entry of `key`; an expired one is dropped. */
  live(key: string, now: number): Mark | undefined {
    const mark = this.#entries.get(key)
    if (mark === undefined) return undefined
    if (mark.expiresAt > now) return mark
    this.#entries.delete(key)
    return undefined
  }

  /** Sets `key` as the most recently used entry. */
  write(key: string, value: string, expiresAt: number, now: number): void {
    const mark = this.#entries.get(key)
    if (mark === undefined) {
      this.insert(key, value, expiresAt, now)
    } else {
      mark.value = value
      mark.expiresAt = expiresAt
      this.touch(key, mark)
    }
  }

  /** Adds `key`, which is not in the map, as the newest entry; sweeps a little and evicts past the bound. */
  insert(key: string, value: string, expiresAt: number, now: number): void {
    this.#entries.set(key, { value, expiresAt })
    this.#sweepSome(now)
    if (this.#entries.size > this.#max) this.#evictOldest()
  }

  /** Marks an entry as recently used without changing it. */
  touch(key: string, mark: Mark): void {
    this.#entries.delete(key)
    this.#entries.set(key, mark)
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  entries(): IterableIterator<[string, Mark]> {
    return this.#entries.entries()
  }

  clear(): void {
    this.#entries.clear()
  }

  #evictOldest(): void {
    let next = this.#oldest?.next()
    if (next === undefined || next.done) {
      this.#oldest = this.#entries.keys()
      next = this.#oldest.next()
    }
    if (!next.done) this.#entries.delete(next.value)
  }

  #sweepSome(now: number): void {
    for (let i = 0; i < SWEEP_PER_WRITE; i++) {
      this.#sweep ??= this.#entries.entries()
      const next = this.#sweep.next()
      if (next.done) {
        this.#sweep = undefined
        return
      }
      const [key, mark] = next.value
      if (mark.expiresAt <= now) this.#entries.delete(key)
    }
  }
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly #marks: ExpiringMap
  readonly #limits: ExpiringMap
  readonly #clock: Clock
  /** Milliseconds since the epoch when the store was created: marks' times count from here. */
  readonly #epochMs: number
  // Scratch space for limit(): it runs synchronously, so one set of arrays serves every call.
  readonly #keys: string[] = []
  readonly #found: (Mark | undefined)[] = []
  readonly #next: number[] = []

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 100_000
    this.#marks = new ExpiringMap(maxEntries)
    this.#limits = new ExpiringMap(maxEntries)
    this.#clock = options.clock ?? systemClock
    this.#epochMs = this.#clock()
  }

  /** Marks held now, expired ones not yet swept included. */
  get size(): number {
    return this.#marks.size
  }

  /** Rate-limit states (and reply-once marks) held now, expired ones not yet swept included. */
  get limitStates(): number {
    return this.#limits.size
  }

  /** Now for limit states: microseconds since the epoch. */
  #nowUs(): number {
    return Math.round(this.#clock() * 1000)
  }

  /** Now for marks: milliseconds since the store's creation. */
  #nowMs(): number {
    return Math.round(this.#clock() - this.#epochMs)
  }

  claim(key: string, value: string, ttlMs: number): string | undefined {
    const now = this.#nowMs()
    const existing = this.#marks.live(key, now)
    if (existing !== undefined) return existing.value
    this.#marks.insert(key, value, now + Math.ceil(ttlMs), now)
    return undefined
  }

  put(key: string, value: string, ttlMs: number): void {
    const now = this.#nowMs()
    this.#marks.write(key, value, now + Math.ceil(ttlMs), now)
  }

  read(key: string): string | undefined {
    return this.#marks.live(key, this.#nowMs())?.value
  }

  remove(key: string): void {
    this.#marks.delete(key)
  }

  async list(prefix: string): Promise<Entry[]> {
    const now = this.#nowMs()
    const entries: Entry[] = []
    for (const [key, mark] of this.#marks.entries()) {
      if (key.startsWith(prefix) && mark.expiresAt > now)
        entries.push({ key, value: mark.value, ttlMs: mark.expiresAt - now })
    }
    return entries
  }

  limit(group: string, limits: readonly LimitKey[]): LimitOutcome {
    const now = this.#nowUs()
    const table = this.#limits
    const keys = this.#keys
    const found = this.#found
    const next = this.#next
    let denied: number[] | undefined
    let blocked = false
    let retry = 0
    for (let i = 0; i < limits.length; i++) {
      const { spec, key } = limits[i] as LimitKey
      const full = `${group}:${key}`
      const mark = table.live(full, now)
      const tat = nextTat(mark?.expiresAt, now, spec)
      keys[i] = full
      found[i] = mark
      if (conforms(tat, now, spec)) {
        next[i] = tat
      } else {
        next[i] = -1
        if (denied === undefined) denied = [i]
        else denied.push(i)
        if (!spec.shadow) {
          blocked = true
          retry = Math.max(retry, waitUs(tat, now, spec))
        }
      }
    }
    let reply = -1
    if (blocked && denied !== undefined) reply = this.#replyOnce(group, limits, denied, now)
    for (let i = 0; i < limits.length; i++) {
      const key = keys[i] as string
      const mark = found[i]
      const tat = next[i] as number
      if (!blocked && tat >= 0) {
        if (mark === undefined) table.insert(key, '', tat, now)
        else {
          mark.expiresAt = tat
          table.touch(key, mark)
        }
      } else if (mark !== undefined) {
        // A key being denied is in use: keep it from being evicted by a flood of new keys.
        table.touch(key, mark)
      }
      found[i] = undefined
    }
    if (denied === undefined) return ALLOWED
    return { allowed: !blocked, denied, retryAfterUs: blocked ? retry : 0, reply }
  }

  /** The first denying enforcing limit with a reply sets its reply-once mark, unless it is set. */
  #replyOnce(group: string, limits: readonly LimitKey[], denied: readonly number[], now: number): number {
    for (const index of denied) {
      const limit = limits[index] as LimitKey
      if (limit.spec.shadow || limit.replyKey === undefined) continue
      const key = `${group}:${limit.replyKey}`
      if (this.#limits.live(key, now) !== undefined) return -1
      this.#limits.insert(key, '', now + limit.spec.intervalUs, now)
      return index
    }
    return -1
  }

  async close(): Promise<void> {
    this.#marks.clear()
    this.#limits.clear()
  }
}
