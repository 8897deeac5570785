/**
 * @module
 * The Redis store: shared state for replicas, on one server, a Cluster, or a master found through
 * Sentinel (ioredis connects to all three).
 *
 * Configured to fail fast rather than wait, because a webhook must be answered and `on_error`
 * decides what happens without Redis (src/store/guard.ts):
 * - a timeout per operation (`store.timeout`, default 50 ms), measured so that a busy event loop
 *   cannot fake one: when the timer fires, the decision waits for the loop's poll phase
 *   (`setImmediate` runs after it), so a reply that arrived while the process was busy with other
 *   requests is read first. ioredis's own `commandTimeout` would fire in the timers phase, before
 *   the reply is read, and turn every CPU spike into store errors;
 * - no offline queue: while disconnected, commands are rejected at once instead of queued
 *   (ioredis `enableOfflineQueue: false`), and none is retried or resent after a reconnect;
 * - a socket that owes replies and stays silent for `connect_timeout` is closed and reconnected
 *   (ioredis `socketTimeout`), so a half-open connection cannot hold commands for ever;
 * - reconnection with exponential backoff and jitter, capped at {@link MAX_BACKOFF_MS}.
 *
 * The operations asked for in one event-loop iteration, by the requests read in it, go out
 * together: one command per kind and bot ({@link ./batch.ts}): claims and puts in one script,
 * limits in one script, reads of one key in one GET. Each Redis command costs the gateway
 * more CPU than the work it carries, so this took the benchmark from four commands sent per
 * update to 0.4. The batches of one iteration flush together, with the socket corked
 * ({@link corked}), so their commands leave in one write. ioredis's own auto-pipelining is off: on top of these batches it only added a
 * pipeline object per command (measured: about a fifth of the gateway's CPU per update with
 * `store: redis`).
 *
 * Every key is `prefix + key`; rate-limit keys are `prefix + "{" + group + "}:" + key`, where the
 * `{group}` hash tag (the bot's name) puts one request's keys in one Cluster slot (Redis Cluster
 * specification, "Hash tags": only the part inside the first `{...}` is hashed). Every key is
 * written with a TTL. Every failure rejects with {@link StoreError}, whose message never carries
 * credentials.
 */

import { Cluster, Redis } from 'ioredis'
import { IterationBatch, IterationFlush, SharedReads } from './batch.js'
import type { Endpoint, RedisStoreConfig } from './config.js'
import {
  ALLOWED,
  type BlocksAnswer,
  type BlocksQuery,
  type Chain,
  type Clock,
  type Entry,
  keyText,
  type LimitKey,
  type LimitOutcome,
  type MarkKey,
  SKIPPED,
  type Skipped,
  type Store,
  StoreError,
} from './index.js'
import { CHAIN_SCRIPT, LIMIT_SCRIPT, MARKS_SCRIPT } from './lua.js'

/** Longest wait between reconnection attempts. */
export const MAX_BACKOFF_MS = 2000

/** Exponential backoff from 50 ms with up to 100 ms of jitter, so replicas do not reconnect in step. */
export function backoff(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt - 1, 10), MAX_BACKOFF_MS) + Math.floor(Math.random() * 100)
}

/** Connection events, for the guard's view of the store's health. */
export interface RedisEvents {
  /** The connection is ready for commands (also after a reconnect). */
  ready(): void
  /** The connection was lost or could not be made; `error` when Redis or the socket said why. */
  lost(error: Error | undefined): void
  /** Redis refused a script over keys of two slots: the store sends no chains from now on. */
  unchained?(): void
}

export interface RedisStoreOptions {
  readonly config: RedisStoreConfig
  /** Tests only: limits use this clock instead of the server's `TIME`. */
  readonly clock?: Clock
  readonly events?: RedisEvents
}

interface Scripts {
  botgateLimit(...args: (string | number)[]): Promise<number[]>
  botgateMarks(...args: (string | number)[]): Promise<(string | null)[]>
  botgateChain(...args: (string | number)[]): Promise<StepAnswer[][]>
}

/** What the chain script answers for one step (see CHAIN_SCRIPT); empty: skipped. */
type StepAnswer = (string | number | null)[]

type Client = (Redis | Cluster) & Scripts

function node({ host, port }: Endpoint): { host: string; port: number } {
  return { host, port }
}

/** Redis's nil (null in ioredis) as undefined, the store interface's "not set". */
function orUndefined(value: string | null): string | undefined {
  return value ?? undefined
}

/**
 * A claim or put waiting for its batch: key (prefixed), value, time to live in ms, and the script's
 * mode for it ({@link CLAIM}: set unless set already; {@link PUT}: set).
 */
type Mark = readonly [string, string, number, typeof CLAIM | typeof PUT]

const CLAIM = '1'
const PUT = '0'

/** The marks script's arguments: the number of keys, the keys, then each key's value, ttl and mode. */
function markArgs(marks: readonly Mark[]): (string | number)[] {
  const args: (string | number)[] = [marks.length]
  for (const [key] of marks) args.push(key)
  for (const [, value, ttlMs, mode] of marks) args.push(value, ttlMs, mode)
  return args
}

/** One request's part of a limit script: its KEYS and its arguments (see LIMIT_SCRIPT). */
interface LimitRequest {
  readonly keys: readonly string[]
  readonly args: readonly (string | number)[]
}

/** The limit script's part for `limits`, whose keys start with `base` (the prefix and the hash tag). */
function limitRequest(base: string, limits: readonly LimitKey[]): LimitRequest {
  const n = limits.length
  const keys: string[] = new Array<string>(n)
  const args: (string | number)[] = [n, 0]
  for (let i = 0; i < n; i++) {
    const { spec, key, replyKey } = limits[i] as LimitKey
    keys[i] = base + key
    let mark = 0
    if (replyKey !== undefined) mark = keys.push(base + replyKey)
    args.push(spec.intervalUs, spec.toleranceUs, spec.shadow ? '1' : '0', mark)
  }
  args[1] = keys.length
  return { keys, args }
}

/**
 * One update's chain (src/store/index.ts), collected as CHAIN_SCRIPT reads it: its KEYS, and its
 * shape (the count of its steps, then each step's kind and arguments). Its first step puts it in
 * the iteration's batch; its steps are all added before the batch is sent (the checks of one
 * update add them in one synchronous pass, and the batch leaves in the check phase).
 */
class RedisChain implements Chain {
  readonly keys: string[] = []
  readonly args: (string | number)[] = [0]
  #steps = 0
  #answers: Promise<StepAnswer[]> | undefined
  #sent = false
  readonly #prefix: string
  readonly #batch: IterationBatch<RedisChain, StepAnswer[]>

  constructor(prefix: string, batch: IterationBatch<RedisChain, StepAnswer[]>) {
    this.#prefix = prefix
    this.#batch = batch
  }

  /** The batch is being sent: a step added from now on would be a bug. */
  seal(): void {
    this.#sent = true
    this.args[0] = this.#steps
  }

  /** Counts a step; the answers of all of them, in order. */
  #step(): Promise<StepAnswer[]> {
    if (this.#sent) throw new Error('a step was added to a chain already sent')
    this.#steps++
    this.#answers ??= this.#batch.add(this)
    return this.#answers
  }

  blocks(query: BlocksQuery): Promise<BlocksAnswer | Skipped> {
    const at = this.#steps
    const answers = this.#step()
    const prefix = this.#prefix
    this.keys.push(prefix + query.generationKey)
    for (const key of query.keys) this.keys.push(prefix + key)
    this.args.push('b', query.known ?? '', query.knownFound, query.keys.length)
    return answers.then((all) => {
      const answer = all[at] as StepAnswer
      if (answer.length === 0) return SKIPPED
      return { generation: orUndefined(answer[0] as string | null), found: answer[1] as number }
    })
  }

  claim(
    key: MarkKey,
    value: string,
    ttlMs: number,
    passTaken: boolean,
  ): Promise<string | undefined | Skipped> {
    const index = this.#steps
    const answers = this.#step()
    this.keys.push(this.#prefix + keyText(key))
    this.args.push('c', value, ttlMs, passTaken ? '1' : '0')
    return answers.then((all) => {
      const answer = all[index] as StepAnswer
      return answer.length === 0 ? SKIPPED : orUndefined(answer[0] as string | null)
    })
  }

  limit(group: string, limits: readonly LimitKey[]): Promise<LimitOutcome | Skipped> {
    const index = this.#steps
    const answers = this.#step()
    const request = limitRequest(`${this.#prefix}{${group}}:`, limits)
    this.keys.push(...request.keys)
    this.args.push('l', ...request.args)
    return answers.then((all) => {
      const answer = all[index] as StepAnswer
      return answer.length === 0 ? SKIPPED : outcome(answer as number[])
    })
  }
}

/**
 * How many of an iteration's chain shapes a chain is compared with: the first ones (a bot's
 * updates come in one or two shapes); a chain like none of them brings its own, which bounds
 * the comparisons of a batch of many unlike chains.
 */
const SHAPES_SEARCHED = 8

/** Whether two chains' arguments are the same, value for value. */
function sameArgs(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The hash tag of a key (Redis Cluster specification, "Hash tags"): what is between the first
 * `{` and the next `}`, when that is not empty. Keys with the same tag share a Cluster slot.
 */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{')
  if (open < 0) return undefined
  const close = key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : undefined
}

/**
 * Runs `send` with the connection's socket corked (Node.js `writable.cork()`): the commands it
 * writes are buffered and leave in one `writev` when it returns, instead of one `write` system
 * call each. A Cluster writes to one socket per node; its commands are sent as they come.
 */
function corked(client: Redis | Cluster, send: () => void): void {
  const stream = client instanceof Redis ? client.stream : undefined
  if (stream === undefined || !stream.writable) {
    send()
    return
  }
  stream.cork()
  try {
    send()
  } finally {
    stream.uncork()
  }
}

/** Redis's glob syntax: `*`, `?`, `[` and `\` in a prefix must match themselves in SCAN MATCH. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/** A client for `config` (standalone, Sentinel or Cluster), with no offline queue and no retries of its own. */
export function connect(config: RedisStoreConfig): Redis | Cluster {
  const common = {
    connectTimeout: config.connectTimeoutMs,
    socketTimeout: config.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectionName: 'botgate',
    // RESP2: what every Redis version, managed service and proxy speaks; our replies are plain
    // integers, arrays and strings, the same in RESP3.
    protocol: 2 as const,
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(config.tls ? { tls: {} } : {}),
  }
  const topology = config.topology
  if (topology.mode === 'cluster') {
    return new Cluster(topology.nodes.map(node), {
      enableOfflineQueue: false,
      enableAutoPipelining: false,
      clusterRetryStrategy: backoff,
      redisOptions: common,
      // With TLS, connect by the names the certificates carry, not by resolved addresses
      // (ioredis README, "Special note: AWS ElastiCache Clusters with TLS").
      ...(config.tls
        ? {
            dnsLookup: (address: string, callback: (error: null, address: string) => void) =>
              callback(null, address),
          }
        : {}),
    })
  }
  const options = {
    ...common,
    db: config.db,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    retryStrategy: backoff,
    // After a failover the old master answers writes with READONLY: reconnect, which (through
    // Sentinel) finds the new master (ioredis README, "Reconnect on Error").
    reconnectOnError: (error: Error) => error.message.startsWith('READONLY'),
  }
  if (topology.mode === 'standalone') return new Redis({ ...options, ...node(topology.endpoint) })
  return new Redis({
    ...options,
    name: topology.master,
    sentinels: topology.sentinels.map(node),
    sentinelRetryStrategy: backoff,
    ...(topology.sentinelPassword === undefined ? {} : { sentinelPassword: topology.sentinelPassword }),
    ...(topology.sentinelTls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
  })
}

export class RedisStore implements Store {
  readonly kind = 'redis'
  readonly #client: Client
  readonly #prefix: string
  readonly #clock: Clock | undefined
  readonly #secrets: readonly string[]
  readonly #timeoutMs: number
  readonly #timedOut: string
  /** Every batch below flushes through this: one check-phase callback, one socket write. */
  readonly #flusher: IterationFlush
  /** Reads of one key in one event-loop iteration share a GET ({@link SharedReads}). */
  readonly #reads: SharedReads<string | undefined>
  /**
   * Claims and puts of one event-loop iteration, together, in the order they were asked for: one
   * script per hash tag ({@link IterationBatch}).
   */
  readonly #marks = new Map<string, IterationBatch<Mark, string | undefined>>()
  /** Limits of one event-loop iteration, one script per bot ({@link IterationBatch}). */
  readonly #limits = new Map<string, IterationBatch<LimitRequest, LimitOutcome>>()
  /**
   * The chains of one event-loop iteration, of every bot, in one script; none on a Cluster, nor
   * behind an endpoint that refuses a script over keys of several slots ({@link #probeSlots}).
   */
  #chains: IterationBatch<RedisChain, StepAnswer[]> | undefined
  /** The slot probe of the connection made last, once it is ready. */
  #probed: Promise<void> = Promise.resolve()
  #closed = false

  constructor(options: RedisStoreOptions) {
    const { config } = options
    this.#prefix = config.prefix
    this.#clock = options.clock
    this.#timeoutMs = config.timeoutMs
    this.#timedOut = `redis: no answer within ${config.timeoutMs} ms`
    this.#secrets = [
      config.password,
      config.topology.mode === 'sentinel' ? config.topology.sentinelPassword : undefined,
    ].filter((secret): secret is string => secret !== undefined && secret !== '')
    const client = connect(config) as Client
    client.defineCommand('botgateLimit', { lua: LIMIT_SCRIPT })
    client.defineCommand('botgateMarks', { lua: MARKS_SCRIPT })
    client.defineCommand('botgateChain', { lua: CHAIN_SCRIPT })
    const events = options.events
    // An 'error' listener is required: without one ioredis prints every connection error itself.
    client.on('error', (error: Error) => {
      if (!this.#closed) events?.lost(this.#storeError(error))
    })
    client.on('close', () => {
      if (!this.#closed) events?.lost(undefined)
    })
    client.on('ready', () => {
      this.#probed = this.#probeSlots(events)
      events?.ready()
    })
    this.#client = client
    this.#flusher = new IterationFlush((flushAll) => corked(client, flushAll))
    this.#reads = new SharedReads((key) => this.#timed(client.get(key)).then(orUndefined), this.#flusher)
    // A chain touches block keys, which carry no hash tag, beside the bot's keys: on a Cluster
    // they live in other slots, and one script cannot reach both (CROSSSLOT).
    this.#chains = client instanceof Cluster ? undefined : new IterationBatch(this.#chainAll, this.#flusher)
  }

  /** Whether the connection is ready for commands now. */
  get connected(): boolean {
    return this.#client.status === 'ready'
  }

  /**
   * Resolves when the connection is first ready and its slot probe answered, or with false after
   * `timeoutMs` (startup only).
   */
  waitReady(timeoutMs: number): Promise<boolean> {
    const ready = this.connected
      ? Promise.resolve(true)
      : new Promise<boolean>((resolve) => {
          const done = (ready: boolean) => {
            clearTimeout(timer)
            this.#client.off('ready', onReady)
            resolve(ready)
          }
          const onReady = () => done(true)
          const timer = setTimeout(() => done(false), timeoutMs)
          this.#client.on('ready', onReady)
        })
    return ready.then((up) => (up ? this.#probed.then(() => true) : false))
  }

  /**
   * Whether Redis runs a script over keys of two slots, as the chain script needs: a proxy that
   * presents a cluster as one endpoint and enforces slots (a clustered Redis Enterprise database
   * without the OSS Cluster API) answers CROSSSLOT. Then every operation goes alone, batched by
   * hash tag as on a Cluster. The keys are made as the store's are, so a prefix with a hash tag of
   * its own (one slot for everything) keeps the chains. Any other failure keeps them too: the
   * chains' own failures are handled as every store failure is.
   */
  async #probeSlots(events: RedisEvents | undefined): Promise<void> {
    if (this.#chains === undefined) return
    try {
      await this.#timed(this.#client.eval('return 1', 2, `${this.#prefix}{a}`, `${this.#prefix}{b}`))
    } catch (error) {
      if (!(error instanceof StoreError) || !error.message.includes('CROSSSLOT')) return
      this.#chains = undefined
      events?.unchained?.()
    }
  }

  /** A StoreError that says what failed, with any credential blanked out. */
  #storeError(error: unknown): StoreError {
    let message = error instanceof Error ? error.message : String(error)
    for (const secret of this.#secrets) message = message.split(secret).join('****')
    return new StoreError(`redis: ${message}`)
  }

  /**
   * `operation` within the timeout, or a StoreError. The timer's verdict is deferred to the check
   * phase of the same loop iteration, after the poll phase has read whatever Redis already sent.
   */
  #timed<T>(operation: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (settled) return
          settled = true
          reject(new StoreError(this.#timedOut))
        })
      }, this.#timeoutMs)
      operation.then(
        (value) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve(value)
        },
        (error: unknown) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          reject(this.#storeError(error))
        },
      )
    })
  }

  /**
   * A claim in one round trip. Claims and puts of keys with a hash tag (dedupe marks: `{bot}:...`)
   * made in one event-loop iteration share one script; others go alone (the same script, one
   * key), as Redis Cluster requires.
   */
  claim(key: MarkKey, value: string, ttlMs: number): Promise<string | undefined> {
    const prefixed = this.#prefix + keyText(key)
    const tag = hashTag(prefixed)
    const mark: Mark = [prefixed, value, ttlMs, CLAIM]
    if (tag !== undefined) return this.#batch(this.#marks, tag, this.#markAll).add(mark)
    return this.#markAll([mark]).then((existing) => existing[0])
  }

  /** Like {@link claim}: puts of keys with a hash tag (dedupe's done marks) ride in the same script. */
  put(key: MarkKey, value: string, ttlMs: number): Promise<void> {
    const prefixed = this.#prefix + keyText(key)
    const tag = hashTag(prefixed)
    // A put's result is always undefined (the script answers nil for it).
    if (tag !== undefined)
      return this.#batch(this.#marks, tag, this.#markAll).add([prefixed, value, ttlMs, PUT]) as Promise<void>
    return this.#timed(this.#client.set(prefixed, value, 'PX', ttlMs)).then(() => undefined)
  }

  readonly #markAll = (marks: readonly Mark[]) =>
    this.#timed(this.#client.botgateMarks(...markArgs(marks))).then((existing) => existing.map(orUndefined))

  /** The batch of `batches` for `tag`, made on first use. */
  #batch<T, R>(
    batches: Map<string, IterationBatch<T, R>>,
    tag: string,
    send: (items: readonly T[]) => Promise<readonly R[]>,
  ): IterationBatch<T, R> {
    let batch = batches.get(tag)
    if (batch === undefined) {
      batch = new IterationBatch(send, this.#flusher)
      batches.set(tag, batch)
    }
    return batch
  }

  /** Reads of one key in one event-loop iteration (the blocks generation) share one GET. */
  read(key: MarkKey): Promise<string | undefined> {
    return this.#reads.read(this.#prefix + keyText(key))
  }

  remove(key: MarkKey): Promise<void> {
    return this.#timed(this.#client.del(this.#prefix + keyText(key))).then(() => undefined)
  }

  /** One PING: whether Redis answers within the timeout now. */
  ping(): Promise<void> {
    return this.#timed(this.#client.ping()).then(() => undefined)
  }

  async list(prefix: string): Promise<Entry[]> {
    const match = `${escapeGlob(this.#prefix + prefix)}*`
    const client = this.#client
    const servers = client instanceof Cluster ? client.nodes('master') : [client as Redis]
    try {
      const keys: string[] = []
      for (const server of servers) {
        for await (const batch of server.scanStream({ match, count: 500 })) keys.push(...(batch as string[]))
      }
      const entries: Entry[] = []
      for (const key of new Set(keys)) {
        const [value, ttlMs] = await Promise.all([client.get(key), client.pttl(key)])
        if (value !== null && ttlMs > 0) entries.push({ key: key.slice(this.#prefix.length), value, ttlMs })
      }
      return entries
    } catch (error) {
      throw this.#storeError(error)
    }
  }

  /**
   * Every limit of one request in one script. The requests of one bot (one hash tag) in one
   * event-loop iteration share the script: each is still evaluated as if alone.
   */
  limit(group: string, limits: readonly LimitKey[]): Promise<LimitOutcome> {
    const request = limitRequest(`${this.#prefix}{${group}}:`, limits)
    return this.#batch(this.#limits, group, this.#limitAll).add(request)
  }

  readonly #limitAll = (requests: readonly LimitRequest[]): Promise<LimitOutcome[]> => {
    const keys: string[] = []
    const args: (string | number)[] = [this.#now(), requests.length]
    for (const request of requests) {
      keys.push(...request.keys)
      args.push(...request.args)
    }
    return this.#timed(this.#client.botgateLimit(keys.length, ...keys, ...args)).then((reply) => {
      const outcomes: LimitOutcome[] = []
      let at = 0
      while (at < reply.length) {
        const count = reply[at] as number
        outcomes.push(outcome(reply.slice(at + 1, at + 1 + count)))
        at += 1 + count
      }
      return outcomes
    })
  }

  /**
   * A chain for one update's steps, sent in the iteration's chain script with every other chain
   * of the iteration (one round trip for all of them); undefined on a Cluster.
   */
  chain(): Chain | undefined {
    const chains = this.#chains
    return chains === undefined ? undefined : new RedisChain(this.#prefix, chains)
  }

  #now(): string | number {
    return this.#clock === undefined ? '' : Math.round(this.#clock() * 1000)
  }

  /**
   * The chains of one iteration in one script. Their arguments go once per distinct list (a
   * shape: the chains of one bot and policy share one), and each chain names its own by index:
   * 7 arguments per update instead of 25 with the bench's policy, which took the client's CPU per
   * update from 16.5 to 14.1 us (docs/redis-performance.md).
   */
  readonly #chainAll = (chains: readonly RedisChain[]): Promise<StepAnswer[][]> => {
    const keys: string[] = []
    const shapes: (readonly (string | number)[])[] = []
    const picks: number[] = []
    for (const chain of chains) {
      chain.seal()
      keys.push(...chain.keys)
      const searched = Math.min(shapes.length, SHAPES_SEARCHED)
      let index = 0
      while (index < searched && !sameArgs(shapes[index] as (string | number)[], chain.args)) index++
      if (index === searched) index = shapes.push(chain.args) - 1
      picks.push(index + 1)
    }
    const args: (string | number)[] = [this.#now(), shapes.length]
    for (const shape of shapes) args.push(shape.length, ...shape)
    args.push(chains.length, ...picks)
    return this.#timed(this.#client.botgateChain(keys.length, ...keys, ...args))
  }

  async close(): Promise<void> {
    this.#closed = true
    try {
      await this.#client.quit()
    } catch {
      this.#client.disconnect()
    }
  }
}

/** The script's reply `{ retry, reply, denied... }` as an outcome. */
function outcome(reply: number[]): LimitOutcome {
  if (reply.length === 2) return ALLOWED
  const retryAfterUs = reply[0] as number
  return { allowed: retryAfterUs === 0, denied: reply.slice(2), retryAfterUs, reply: reply[1] as number }
}
