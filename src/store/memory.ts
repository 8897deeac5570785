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
 * Each entry is a key and one number, its stamp: no object per entry. With 100,000 dedupe marks
 * (the default bound) that is about 4 MB less heap than a small object per mark, and fewer
 * objects for the garbage collector to copy and mark.
 *
 * - A mark's stamp is its expiry, in whole milliseconds since the store was created, times
 *   {@link VALUE_CODES}, plus a code for its value: the first values written (dedupe's `inflight`
 *   and `done`) are numbered, others are kept beside the map. The stamp stays a small integer,
 *   stored in the entry itself, for the first days after start; a larger one is a boxed number.
 * - A rate-limit state's stamp is its TAT in whole microseconds since the epoch, the unit of GCRA
 *   ({@link ./gcra.ts}), which is also exactly when it expires (from then on the key behaves as
 *   fresh). Its value is always empty.
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

/**
 * Entries looked at per new entry to drop expired ones: more than one, so the sweep goes round the
 * map faster than writes grow it, and every expired entry is dropped within a bounded number of
 * writes.
 */
const SWEEP_PER_WRITE = 2

/** Mark values numbered inside the stamp: codes 0 to 2 name the first three values written, 3 says "kept beside". */
const VALUE_CODES = 4
const VALUE_BESIDE = VALUE_CODES - 1

/**
 * A Map from keys to stamps (numbers that hold an expiry, see the module comment) in
 * least-recently-used order, bounded in size.
 *
 * Both walks over the entries (the sweep for expired ones, and eviction from the oldest end) use
 * iterators kept from one call to the next. A Map keeps deleted entries as holes until it is
 * rehashed, and a fresh iterator starts at its first slot: evicting with `keys().next()` stepped
 * over every hole left by earlier evictions, and at the entry cap cost tens of microseconds per
 * write. A kept iterator passes each hole once.
 */
class ExpiringMap {
  readonly #entries = new Map<string, number>()
  readonly #max: number
  readonly #expiryOf: (stamp: number) => number
  /** Told of every entry that leaves the map, whatever the reason. */
  readonly #dropped: ((key: string, stamp: number) => void) | undefined
  #sweep: IterableIterator<[string, number]> | undefined
  #oldest: IterableIterator<[string, number]> | undefined

  constructor(
    max: number,
    expiryOf: (stamp: number) => number,
    dropped?: (key: string, stamp: number) => void,
  ) {
    this.#max = max
    this.#expiryOf = expiryOf
    this.#dropped = dropped
  }

  get size(): number {
    return this.#entries.size
  }

  /** The stamp of `key` while it lives; an expired entry is dropped. */
  live(key: string, now: number): number | undefined {
    const stamp = this.#entries.get(key)
    if (stamp === undefined) return undefined
    if (this.#expiryOf(stamp) > now) return stamp
    this.#drop(key, stamp)
    return undefined
  }

  /** Sets `key` as the most recently used entry. */
  write(key: string, stamp: number, now: number): void {
    if (this.#entries.delete(key)) this.#entries.set(key, stamp)
    else this.insert(key, stamp, now)
  }

  /** Adds `key`, which is not in the map, as the newest entry; sweeps a little and evicts past the bound. */
  insert(key: string, stamp: number, now: number): void {
    this.#entries.set(key, stamp)
    this.#sweepSome(now)
    if (this.#entries.size > this.#max) this.#evictOldest()
  }

  /** Sets an entry's stamp and marks it as recently used. */
  touch(key: string, stamp: number): void {
    this.#entries.delete(key)
    this.#entries.set(key, stamp)
  }

  delete(key: string): void {
    const stamp = this.#entries.get(key)
    if (stamp !== undefined) this.#drop(key, stamp)
  }

  entries(): IterableIterator<[string, number]> {
    return this.#entries.entries()
  }

  clear(): void {
    this.#entries.clear()
  }

  #drop(key: string, stamp: number): void {
    this.#entries.delete(key)
    this.#dropped?.(key, stamp)
  }

  #evictOldest(): void {
    let next = this.#oldest?.next()
    if (next === undefined || next.done) {
      this.#oldest = this.#entries.entries()
      next = this.#oldest.next()
    }
    if (!next.done) this.#drop(next.value[0], next.value[1])
  }

  #sweepSome(now: number): void {
    for (let i = 0; i < SWEEP_PER_WRITE; i++) {
      this.#sweep ??= this.#entries.entries()
      const next = this.#sweep.next()
      if (next.done) {
        this.#sweep = undefined
        return
      }
      const [key, stamp] = next.value
      if (this.#expiryOf(stamp) <= now) this.#drop(key, stamp)
    }
  }
}

const markExpiry = (stamp: number): number => Math.floor(stamp / VALUE_CODES)
const limitExpiry = (stamp: number): number => stamp

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly #marks: ExpiringMap
  readonly #limits: ExpiringMap
  readonly #clock: Clock
  /** Milliseconds since the epoch when the store was created: marks' times count from here. */
  readonly #epochMs: number
  /** Mark values by code, and codes by value (see {@link VALUE_CODES}). */
  readonly #values: string[] = []
  readonly #codes = new Map<string, number>()
  /** Values of the marks whose stamp says {@link VALUE_BESIDE}. */
  readonly #beside = new Map<string, string>()
  // Scratch space for limit(): it runs synchronously, so one set of arrays serves every call.
  readonly #keys: string[] = []
  readonly #found: (number | undefined)[] = []
  readonly #next: number[] = []

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 100_000
    this.#marks = new ExpiringMap(maxEntries, markExpiry, (key, stamp) => {
      if (stamp % VALUE_CODES === VALUE_BESIDE) this.#beside.delete(key)
    })
    this.#limits = new ExpiringMap(maxEntries, limitExpiry)
    this.#clock = options.clock ?? systemClock
    this.#epochMs = this.#clock()
  }

  /** Marks held now, expired ones not yet swept included. */
  get size(): number {
    return this.#marks.size
  }

  /** Values of marks kept beside the map (a value other than the first three written); for tests. */
  get valuesKeptBeside(): number {
    return this.#beside.size
  }

  /** Rate-limit states (and reply-once marks) held now, expired ones not yet swept included. */
  get limitStates(): number {
    return this.#limits.size
  }

  /** Now for limit states: microseconds since the epoch. */
  #nowUs(): number {
    return Math.round(this.#clock() * 1000)
  }

  /** Now for marks: milliseconds since the store's creation (never below zero, should the clock step back). */
  #nowMs(): number {
    return Math.max(0, Math.round(this.#clock() - this.#epochMs))
  }

  /** The stamp of a mark of `key` with `value` that expires at `expiresAt` (ms since creation). */
  #stamp(key: string, value: string, expiresAt: number): number {
    let code = this.#codes.get(value)
    if (code === undefined && this.#values.length < VALUE_BESIDE) {
      code = this.#values.length
      this.#values.push(value)
      this.#codes.set(value, code)
    }
    if (code === undefined) {
      this.#beside.set(key, value)
      code = VALUE_BESIDE
    } else if (this.#beside.size > 0) {
      this.#beside.delete(key)
    }
    return expiresAt * VALUE_CODES + code
  }

  #value(key: string, stamp: number): string {
    const code = stamp % VALUE_CODES
    return (code === VALUE_BESIDE ? this.#beside.get(key) : this.#values[code]) as string
  }

  claim(key: string, value: string, ttlMs: number): string | undefined {
    const now = this.#nowMs()
    const existing = this.#marks.live(key, now)
    if (existing !== undefined) return this.#value(key, existing)
    this.#marks.insert(key, this.#stamp(key, value, now + Math.ceil(ttlMs)), now)
    return undefined
  }

  put(key: string, value: string, ttlMs: number): void {
    const now = this.#nowMs()
    this.#marks.write(key, this.#stamp(key, value, now + Math.ceil(ttlMs)), now)
  }

  read(key: string): string | undefined {
    const stamp = this.#marks.live(key, this.#nowMs())
    return stamp === undefined ? undefined : this.#value(key, stamp)
  }

  remove(key: string): void {
    this.#marks.delete(key)
  }

  async list(prefix: string): Promise<Entry[]> {
    const now = this.#nowMs()
    const entries: Entry[] = []
    for (const [key, stamp] of this.#marks.entries()) {
      const expiresAt = markExpiry(stamp)
      if (key.startsWith(prefix) && expiresAt > now)
        entries.push({ key, value: this.#value(key, stamp), ttlMs: expiresAt - now })
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
      // Joined rather than concatenated: the map keeps a flat string, not a rope (see the dedupe check).
      const full = [group, key].join(':')
      const state = table.live(full, now)
      const tat = nextTat(state, now, spec)
      keys[i] = full
      found[i] = state
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
      const state = found[i]
      const tat = next[i] as number
      if (!blocked && tat >= 0) {
        if (state === undefined) table.insert(key, tat, now)
        else table.touch(key, tat)
      } else if (state !== undefined) {
        // A key being denied is in use: keep it from being evicted by a flood of new keys.
        table.touch(key, state)
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
      this.#limits.insert(key, now + limit.spec.intervalUs, now)
      return index
    }
    return -1
  }

  async close(): Promise<void> {
    this.#marks.clear()
    this.#beside.clear()
    this.#limits.clear()
  }
}
