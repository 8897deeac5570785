/**
 * @module
 * Store operations asked for during one event-loop iteration, sent to Redis together at its end.
 *
 * The requests read in one iteration (its poll phase) each ask the store for the same kinds of
 * things: the bot's blocks generation, a dedupe claim, a rate-limit evaluation, a done mark. Each
 * Redis command costs the gateway about as much CPU as the rest of a request's checks together,
 * whatever it carries, so the operations of one iteration go out as one command per kind:
 * identical reads as one GET, claims, puts and limits as one script each. The command is sent in
 * the iteration's check phase (`setImmediate`), after the poll phase has handed over every request
 * it read, so every operation in a batch was asked for before the command reached Redis: a read
 * still sees every write completed before its request arrived (a block set on another replica
 * applies at once), and a claim is as atomic as alone.
 * Each operation still has its own outcome, and times out with its command.
 *
 * Every batch of one store flushes in the same check-phase callback ({@link IterationFlush}), which
 * lets the store write all of an iteration's commands to its socket at once: one `write` system
 * call instead of one per command (a system call on a small write cost the gateway as much as the
 * JavaScript that built the command; see docs/redis-performance.md).
 */

/**
 * Most operations in one command. A flood read in one iteration is sent in several commands, each
 * of a bounded size (a command's arguments are a function call's arguments in ioredis).
 */
export const MAX_BATCH = 256

/**
 * The flushes asked for during one event-loop iteration, run together in its check phase
 * (`setImmediate`), inside `around`: the store's chance to hold its socket's writes until all of
 * them are done (`socket.cork()`), so they leave in one system call.
 */
export class IterationFlush {
  readonly #around: (flushAll: () => void) => void
  #pending: (() => void)[] = []

  /** `around` runs the iteration's flushes (the function it is given) exactly once, synchronously. */
  constructor(around: (flushAll: () => void) => void = (flushAll) => flushAll()) {
    this.#around = around
  }

  /** Runs `flush` in this iteration's check phase, with every other flush scheduled before then. */
  schedule(flush: () => void): void {
    if (this.#pending.length === 0) setImmediate(this.#run)
    this.#pending.push(flush)
  }

  readonly #run = (): void => {
    const pending = this.#pending
    this.#pending = []
    this.#around(() => {
      for (const flush of pending) flush()
    })
  }
}

interface Waiter<R> {
  resolve(value: R): void
  reject(error: unknown): void
}

/** Operations of one kind, collected until the check phase, then sent with one call of `send`. */
export class IterationBatch<T, R> {
  readonly #send: (items: readonly T[]) => Promise<readonly R[]>
  readonly #flusher: IterationFlush
  #items: T[] = []
  #waiters: Waiter<R>[] = []
  readonly #flushNow = (): void => this.#flush()

  /**
   * `send` answers one result per item, in order; when it rejects, every operation does.
   * `flusher`: shared by the batches whose commands should leave together (default: its own).
   */
  constructor(send: (items: readonly T[]) => Promise<readonly R[]>, flusher = new IterationFlush()) {
    this.#send = send
    this.#flusher = flusher
  }

  add(item: T): Promise<R> {
    if (this.#items.length >= MAX_BATCH) this.#flush()
    if (this.#items.length === 0) this.#flusher.schedule(this.#flushNow)
    this.#items.push(item)
    return new Promise<R>((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
    })
  }

  #flush(): void {
    const items = this.#items
    const waiters = this.#waiters
    if (items.length === 0) return
    this.#items = []
    this.#waiters = []
    let sent: Promise<readonly R[]>
    try {
      sent = this.#send(items)
    } catch (error) {
      sent = Promise.reject(error)
    }
    sent.then(
      (results) => {
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter<R>).resolve(results[i] as R)
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error)
      },
    )
  }
}

/** Reads of the same key in one iteration share one command (see {@link IterationBatch}). */
export class SharedReads<R> {
  readonly #send: (key: string) => Promise<R>
  readonly #flusher: IterationFlush
  readonly #pending = new Map<string, Waiter<R> & { readonly read: Promise<R> }>()
  readonly #flushNow = (): void => this.#flush()

  /** `flusher`: as for {@link IterationBatch}. */
  constructor(send: (key: string) => Promise<R>, flusher = new IterationFlush()) {
    this.#send = send
    this.#flusher = flusher
  }

  read(key: string): Promise<R> {
    const shared = this.#pending.get(key)
    if (shared !== undefined) return shared.read
    if (this.#pending.size === 0) this.#flusher.schedule(this.#flushNow)
    let waiter!: Waiter<R>
    const read = new Promise<R>((resolve, reject) => {
      waiter = { resolve, reject }
    })
    this.#pending.set(key, { ...waiter, read })
    return read
  }

  #flush(): void {
    const pending = [...this.#pending]
    this.#pending.clear()
    for (const [key, { resolve, reject }] of pending) {
      let sent: Promise<R>
      try {
        sent = this.#send(key)
      } catch (error) {
        sent = Promise.reject(error)
      }
      sent.then(resolve, reject)
    }
  }
}
