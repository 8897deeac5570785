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
 * Marks and rate-limit states live apart, each bounded by `maxEntries`: limit keys are driven by
 * senders (`key: ip` even before authentication), and a flood of them must not evict the dedupe
 * marks of genuine updates. Marks with a {@link NumberedKey} (dedupe's, one per update) live in a
 * map of their space's own, keyed by the number, with no string per mark; each space is bounded
 * by `maxEntries` too, so one bot's updates never evict another's marks, and its marks leave in
 * the order they were first written (a rewrite keeps a numbered mark's place).
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
import type { Clock, Entry, LimitKey, LimitOutcome, MarkKey, NumberedKey, Store } from './index.js'
import { ALLOWED, keyText, systemClock } from './index.js'

export interface MemoryStoreOptions {
  /**
   * Most marks kept at once (and as many again per space of numbered marks), and separately most
   * rate-limit states.
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
class ExpiringMap<K> {
  readonly #entries = new Map<K, number>()
  readonly #max: number
  readonly #expiryOf: (stamp: number) => number
  /** Told of every entry that leaves the map, whatever the reason. */
  readonly #dropped: ((key: K, stamp: number) => void) | undefined
  #sweep: IterableIterator<[K, number]> | undefined
  #oldest: IterableIterator<[K, number]> | undefined

  constructor(max: number, expiryOf: (stamp: number) => number, dropped?: (key: K, stamp: number) => void) {
    this.#max = max
    this.#expiryOf = expiryOf
    this.#dropped = dropped
  }

  get size(): number {
    return this.#entries.size
  }

  /** The stamp of `key` while it lives; an expired entry is dropped. */
  live(key: K, now: number): number | undefined {
    const stamp = this.#entries.get(key)
    if (stamp === undefined) return undefined
    if (this.#expiryOf(stamp) > now) return stamp
    this.#drop(key, stamp)
    return undefined
  }

  /** Sets `key` as the most recently used entry. */
  write(key: K, stamp: number, now: number): void {
    if (this.#entries.delete(key)) this.#entries.set(key, stamp)
    else this.insert(key, stamp, now)
  }

  /** Sets `key`'s stamp, keeping its place in the order; adds it as the newest entry when absent. */
  update(key: K, stamp: number, now: number): void {
    if (this.#entries.has(key)) this.#entries.set(key, stamp)
    else this.insert(key, stamp, now)
  }

  /** Adds `key`, which is not in the map, as the newest entry; sweeps a little and evicts past the bound. */
  insert(key: K, stamp: number, now: number): void {
    this.#entries.set(key, stamp)
    this.#sweepSome(now)
    if (this.#entries.size > this.#max) this.#evictOldest()
  }

  /** Sets an entry's stamp and marks it as recently used. */
  touch(key: K, stamp: number): void {
    this.#entries.delete(key)
    this.#entries.set(key, stamp)
  }

  delete(key: K): void {
    const stamp = this.#entries.get(key)
    if (stamp !== undefined) this.#drop(key, stamp)
  }

  entries(): IterableIterator<[K, number]> {
    return this.#entries.entries()
  }

  clear(): void {
    this.#entries.clear()
  }

  #drop(key: K, stamp: number): void {
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

/** Mark values by code, and codes by value (see {@link VALUE_CODES}), for all of a store's tables. */
class ValueCodes {
  readonly #values: string[] = []
  readonly #codes = new Map<string, number>()

  /** The code of `value`, numbering it if there is a code left; undefined: keep it beside. */
  codeOf(value: string): number | undefined {
    let code = this.#codes.get(value)
    if (code === undefined && this.#values.length < VALUE_BESIDE) {
      code = this.#values.length
      this.#values.push(value)
      this.#codes.set(value, code)
    }
    return code
  }

  valueOf(code: number): string {
    return this.#values[code] as string
  }
}

/**
 * Marks by key of type K (strings, or the numbers of one space), with their values. With
 * `keepPlace`, rewriting a mark keeps its place in the eviction order instead of making it the
 * newest: numbered marks are written twice each, claimed and then settled a few milliseconds
 * later, and a re-insertion leaves a hole in the Map's table for every update until it is rehashed
 * (100,000 dedupe marks: 3.7 MB of table in place, 7.4 MB re-inserted).
 */
class MarkTable<K> {
  readonly #entries: ExpiringMap<K>
  readonly #codes: ValueCodes
  readonly #keepPlace: boolean
  /** Values of the marks whose stamp says {@link VALUE_BESIDE}. */
  readonly #beside = new Map<K, string>()

  constructor(max: number, codes: ValueCodes, keepPlace: boolean) {
    this.#codes = codes
    this.#keepPlace = keepPlace
    this.#entries = new ExpiringMap<K>(max, markExpiry, (key, stamp) => {
      if (stamp % VALUE_CODES === VALUE_BESIDE) this.#beside.delete(key)
    })
  }

  get size(): number {
    return this.#entries.size
  }

  get valuesKeptBeside(): number {
    return this.#beside.size
  }

  /** The stamp of a mark of `key` with `value` that expires at `expiresAt` (ms since creation). */
  #stamp(key: K, value: string, expiresAt: number): number {
    let code = this.#codes.codeOf(value)
    if (code === undefined) {
      this.#beside.set(key, value)
      code = VALUE_BESIDE
    } else if (this.#beside.size > 0) {
      this.#beside.delete(key)
    }
    return expiresAt * VALUE_CODES + code
  }

  #value(key: K, stamp: number): string {
    const code = stamp % VALUE_CODES
    return code === VALUE_BESIDE ? (this.#beside.get(key) as string) : this.#codes.valueOf(code)
  }

  claim(key: K, value: string, expiresAt: number, now: number): string | undefined {
    const existing = this.#entries.live(key, now)
    if (existing !== undefined) return this.#value(key, existing)
    this.#entries.insert(key, this.#stamp(key, value, expiresAt), now)
    return undefined
  }

  put(key: K, value: string, expiresAt: number, now: number): void {
    const stamp = this.#stamp(key, value, expiresAt)
    if (this.#keepPlace) this.#entries.update(key, stamp, now)
    else this.#entries.write(key, stamp, now)
  }

  read(key: K, now: number): string | undefined {
    const stamp = this.#entries.live(key, now)
    return stamp === undefined ? undefined : this.#value(key, stamp)
  }

  remove(key: K): void {
    this.#entries.delete(key)
  }

  /** Live marks whose text form (`textOf(key)`) starts with `prefix`. */
  list(prefix: string, now: number, textOf: (key: K) => string, into: Entry[]): void {
    for (const [key, stamp] of this.#entries.entries()) {
      const expiresAt = markExpiry(stamp)
      const text = textOf(key)
      if (text.startsWith(prefix) && expiresAt > now)
        into.push({ key: text, value: this.#value(key, stamp), ttlMs: expiresAt - now })
    }
  }

  clear(): void {
    this.#entries.clear()
    this.#beside.clear()
  }
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly #maxEntries: number
  readonly #codes = new ValueCodes()
  /** Marks with a string key. */
  readonly #marks: MarkTable<string>
  /** Marks with a {@link NumberedKey}, by space, then by number. */
  readonly #numbered = new Map<string, MarkTable<number>>()
  readonly #limits: ExpiringMap<string>
  readonly #clock: Clock
  /** Milliseconds since the epoch when the store was created: marks' times count from here. */
  readonly #epochMs: number
  // Scratch space for limit(): it runs synchronously, so one set of arrays serves every call.
  readonly #keys: string[] = []
  readonly #found: (number | undefined)[] = []
  readonly #next: number[] = []

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#marks = new MarkTable<string>(this.#maxEntries, this.#codes, false)
    this.#limits = new ExpiringMap(this.#maxEntries, limitExpiry)
    this.#clock = options.clock ?? systemClock
    this.#epochMs = this.#clock()
  }

  /** Marks held now (numbered ones included), expired ones not yet swept included. */
  get size(): number {
    let size = this.#marks.size
    for (const table of this.#numbered.values()) size += table.size
    return size
  }

  /** Values of marks kept beside the map (a value other than the first three written); for tests. */
  get valuesKeptBeside(): number {
    let size = this.#marks.valuesKeptBeside
    for (const table of this.#numbered.values()) size += table.valuesKeptBeside
    return size
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

  /** The table of a space of numbered marks; created on its first write. */
  #space(space: string): MarkTable<number> {
    let table = this.#numbered.get(space)
    if (table === undefined) {
      table = new MarkTable<number>(this.#maxEntries, this.#codes, true)
      this.#numbered.set(space, table)
    }
    return table
  }

  claim(key: MarkKey, value: string, ttlMs: number): string | undefined {
    const now = this.#nowMs()
    const expiresAt = now + Math.ceil(ttlMs)
    return typeof key === 'string'
      ? this.#marks.claim(key, value, expiresAt, now)
      : this.#space(key.space).claim(key.id, value, expiresAt, now)
  }

  put(key: MarkKey, value: string, ttlMs: number): void {
    const now = this.#nowMs()
    const expiresAt = now + Math.ceil(ttlMs)
    if (typeof key === 'string') this.#marks.put(key, value, expiresAt, now)
    else this.#space(key.space).put(key.id, value, expiresAt, now)
  }

  read(key: MarkKey): string | undefined {
    const now = this.#nowMs()
    return typeof key === 'string'
      ? this.#marks.read(key, now)
      : this.#numbered.get(key.space)?.read(key.id, now)
  }

  remove(key: MarkKey): void {
    if (typeof key === 'string') this.#marks.remove(key)
    else this.#numbered.get(key.space)?.remove(key.id)
  }

  async list(prefix: string): Promise<Entry[]> {
    const now = this.#nowMs()
    const entries: Entry[] = []
    this.#marks.list(prefix, now, (key) => key, entries)
    for (const [space, table] of this.#numbered) {
      // A space some of whose keys can start with the prefix: it starts with it, or is a start of it.
      if (space.startsWith(prefix) || prefix.startsWith(space))
        table.list(prefix, now, (id) => keyText({ space, id }), entries)
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
      // Joined rather than concatenated: V8 keeps a concatenation as a rope plus the flat string it
      // hashes to, which the map would keep for as long as it holds the key.
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
    for (const table of this.#numbered.values()) table.clear()
    this.#numbered.clear()
    this.#limits.clear()
  }
}
