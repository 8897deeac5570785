/**
 * @module
 * The in-process store: a Map of marks with expiry times, bounded in size.
 *
 * Expiry is checked when a mark is read (no timer per mark); a sweep on writes, limited in work
 * per call, drops expired marks so memory follows live marks. When `maxEntries` is reached the
 * least recently written mark goes first (the Map keeps insertion order, and a write re-inserts),
 * so a sender cycling through keys can only evict marks, never grow memory.
 */

import type { Clock, Entry, Store } from './index.js'
import { systemClock } from './index.js'

export interface MemoryStoreOptions {
  /**
   * Most marks kept at once.
   * @default 100000
   */
  readonly maxEntries?: number
  readonly clock?: Clock
}

interface Mark {
  value: string
  expiresAt: number
}

/** Marks looked at per write to drop expired ones. */
const SWEEP_PER_WRITE = 4

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly #marks = new Map<string, Mark>()
  readonly #maxEntries: number
  readonly #clock: Clock
  #sweep: IterableIterator<[string, Mark]> | undefined

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#clock = options.clock ?? systemClock
  }

  /** Marks held now, expired ones not yet swept included. */
  get size(): number {
    return this.#marks.size
  }

  #live(key: string, now: number): Mark | undefined {
    const mark = this.#marks.get(key)
    if (mark === undefined) return undefined
    if (mark.expiresAt > now) return mark
    this.#marks.delete(key)
    return undefined
  }

  #write(key: string, value: string, expiresAt: number, now: number): void {
    this.#marks.delete(key)
    this.#marks.set(key, { value, expiresAt })
    this.#sweepSome(now)
    if (this.#marks.size > this.#maxEntries) {
      const oldest = this.#marks.keys().next()
      if (!oldest.done) this.#marks.delete(oldest.value)
    }
  }

  #sweepSome(now: number): void {
    for (let i = 0; i < SWEEP_PER_WRITE; i++) {
      this.#sweep ??= this.#marks.entries()
      const next = this.#sweep.next()
      if (next.done) {
        this.#sweep = undefined
        return
      }
      const [key, mark] = next.value
      if (mark.expiresAt <= now) this.#marks.delete(key)
    }
  }

  claim(key: string, value: string, ttlMs: number): string | undefined {
    const now = this.#clock()
    const existing = this.#live(key, now)
    if (existing !== undefined) return existing.value
    this.#write(key, value, now + ttlMs, now)
    return undefined
  }

  put(key: string, value: string, ttlMs: number): void {
    const now = this.#clock()
    this.#write(key, value, now + ttlMs, now)
  }

  read(key: string): string | undefined {
    return this.#live(key, this.#clock())?.value
  }

  remove(key: string): void {
    this.#marks.delete(key)
  }

  async list(prefix: string): Promise<Entry[]> {
    const now = this.#clock()
    const entries: Entry[] = []
    for (const [key, mark] of this.#marks) {
      if (key.startsWith(prefix) && mark.expiresAt > now)
        entries.push({ key, value: mark.value, ttlMs: mark.expiresAt - now })
    }
    return entries
  }

  async close(): Promise<void> {
    this.#marks.clear()
  }
}
