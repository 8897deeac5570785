/**
 * @module
 * The queue's Redis side: its keys, its scripts and the commands the admission, the delivery and
 * the CLI send. A bot's keys share the hash tag `{bot}`, so on a Redis Cluster they live in one
 * slot and a script may touch all of them:
 *
 * - `{bot}:queue:<shard>`: a stream per shard, read through the consumer group `botgate`. An
 *   update is appended once (XADD) and deleted once delivered (XACK and XDEL in one script), so a
 *   stream's length is what waits in it.
 * - `{bot}:queue:lease:<shard>`: which replica delivers the shard (its id, with a time to live).
 * - `{bot}:queue:attempts`: failed deliveries by entry id, so a replica that takes a shard over
 *   knows how often each update failed.
 * - `{bot}:queue:dead`: the dead letters, capped at `dead_max_len`.
 *
 * And one key outside any bot, `queue:replicas`: the live replicas (a sorted set by expiry), to
 * share the shards fairly.
 */

import type { Cluster, Redis } from 'ioredis'

/** The consumer group every replica reads through. */
export const GROUP = 'botgate'

/** One update in a stream: the exact bytes received and the facts the log line needs. */
export interface QueuedUpdate {
  /** The stream entry id (`<ms>-<seq>`). */
  readonly id: string
  readonly body: Buffer
  /** When botgate took it in, ms since the epoch. */
  readonly receivedAt: number
  readonly updateId: number
  readonly type: string
  readonly chatId: number | undefined
  readonly userId: number | undefined
  readonly command: string | undefined
  readonly requestId: string
  /** `X-Forwarded-For` and `X-Forwarded-Proto` of the forward, as direct delivery sends them. */
  readonly forwardedFor: string
  readonly forwardedProto: string
}

/** A dead letter: the update, why it died, and how often it failed. */
export interface DeadLetter extends QueuedUpdate {
  readonly reason: string
  readonly attempts: number
  /** When it became a dead letter, ms since the epoch. */
  readonly diedAt: number
}

/** The keys of one bot's queue under the store's prefix. */
export class QueueKeys {
  readonly shards: readonly string[]
  readonly leases: readonly string[]
  readonly attempts: string
  readonly dead: string

  constructor(prefix: string, bot: string, shards: number) {
    const base = `${prefix}{${bot}}:queue`
    this.shards = Array.from({ length: shards }, (_, shard) => `${base}:${shard}`)
    this.leases = Array.from({ length: shards }, (_, shard) => `${base}:lease:${shard}`)
    this.attempts = `${base}:attempts`
    this.dead = `${base}:dead`
  }
}

/** The key of the live replicas. */
export function replicasKey(prefix: string): string {
  return `${prefix}queue:replicas`
}

/** The shard of an update: by chat, else by user, so each chat's updates keep one stream's order. */
export function shardOf(chatId: number | undefined, userId: number | undefined, shards: number): number {
  const key = chatId ?? userId
  if (key === undefined || shards === 1) return 0
  // Chat ids reach 2^52 and are negative for groups: reduce the magnitude exactly.
  return Math.abs(key) % shards
}

/** The key that orders deliveries: one update of a chat (else of a user) at a time. */
export function orderKey(update: QueuedUpdate): string {
  if (update.chatId !== undefined) return `c${update.chatId}`
  if (update.userId !== undefined) return `u${update.userId}`
  return `i${update.id}`
}

/** ARGV[1] the shard (1-based), ARGV[2] max_len, then the entry's fields: the id, or false when full. */
const ADMIT = `
local total = 0
for i = 1, #KEYS do total = total + redis.call('XLEN', KEYS[i]) end
if total >= tonumber(ARGV[2]) then return false end
return redis.call('XADD', KEYS[tonumber(ARGV[1])], '*', unpack(ARGV, 3))
`

/**
 * KEYS stream, attempts; ARGV group, id: delivered. The XACK may fail (NOGROUP: Redis lost the
 * group, so nothing is pending in it); the entry is deleted all the same.
 */
const ACK = `
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
`

/**
 * KEYS stream, attempts, dead; ARGV group, id, max dead, then the dead letter's fields: moves an
 * entry to the dead letters (its fields as read, with why and when). The XADD comes first: a
 * script that fails half way keeps what it did, and a dead letter written twice (the burial tried
 * again) is better than an update deleted and not written.
 */
const BURY = `
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
`

/**
 * KEYS lease; ARGV me, ttl ms: 1 when the lease was ours and is renewed, 2 when it was free and is
 * ours now, 0 when another replica has it. A holder told 2 lost the lease meanwhile (it lapsed, or
 * Redis lost it): another replica may have delivered, claimed or read the shard in between.
 */
const HOLD = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
`

/** KEYS lease; ARGV me: lets the shard go, if it is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`

/** KEYS replicas; ARGV me, ttl ms: this replica is alive; how many are (Redis time, so no skew). */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`

/** KEYS dead, then the shards; ARGV the dead letter's id, the shard count: moves it back to its shard. */
const REPLAY = `
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields = found[1][2]
local keep = {}
local chat, user = nil, nil
for i = 1, #fields, 2 do
  local name = fields[i]
  if name ~= 'why' and name ~= 'n' and name ~= 'died' then
    table.insert(keep, name)
    table.insert(keep, fields[i + 1])
  end
  if name == 'c' then chat = tonumber(fields[i + 1]) end
  if name == 'u' then user = tonumber(fields[i + 1]) end
end
local key = chat or user
local shard = 0
local shards = tonumber(ARGV[2])
if key and shards > 1 then shard = math.fmod(math.abs(key), shards) end
local id = redis.call('XADD', KEYS[2 + shard], '*', unpack(keep))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`

type Client = (Redis | Cluster) & {
  botgateAdmit(...args: (string | number | Buffer)[]): Promise<string | null>
  botgateAck(...args: (string | number)[]): Promise<number>
  botgateBury(...args: (string | number | Buffer)[]): Promise<number>
  botgateHold(...args: (string | number)[]): Promise<number>
  botgateRelease(...args: (string | number)[]): Promise<number>
  botgateHeartbeat(...args: (string | number)[]): Promise<number>
  botgateReplay(...args: (string | number)[]): Promise<string | null>
}

/** Resolves when `client` is ready for commands, or with false after `timeoutMs`. */
export function whenReady(client: Redis | Cluster, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer)
      client.off('ready', onReady)
      resolve(ready)
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), timeoutMs)
    client.on('ready', onReady)
  })
}

/** Defines the queue's scripts on a client (EVALSHA, loaded again after a Redis restart). */
export function queueClient(client: Redis | Cluster): QueueRedis {
  const typed = client as Client
  typed.defineCommand('botgateAdmit', { lua: ADMIT })
  typed.defineCommand('botgateAck', { numberOfKeys: 2, lua: ACK })
  typed.defineCommand('botgateBury', { numberOfKeys: 3, lua: BURY })
  typed.defineCommand('botgateHold', { numberOfKeys: 1, lua: HOLD })
  typed.defineCommand('botgateRelease', { numberOfKeys: 1, lua: RELEASE })
  typed.defineCommand('botgateHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT })
  typed.defineCommand('botgateReplay', { lua: REPLAY })
  return new QueueRedis(typed)
}

/** An entry's fields as stored: short names, the body as bytes. */
function fieldsOf(update: Omit<QueuedUpdate, 'id'>): (string | Buffer)[] {
  const fields: (string | Buffer)[] = [
    'b',
    update.body,
    't',
    String(update.receivedAt),
    'i',
    String(update.updateId),
    'y',
    update.type,
    'r',
    update.requestId,
    'f',
    update.forwardedFor,
    'p',
    update.forwardedProto,
  ]
  if (update.chatId !== undefined) fields.push('c', String(update.chatId))
  if (update.userId !== undefined) fields.push('u', String(update.userId))
  if (update.command !== undefined) fields.push('m', update.command)
  return fields
}

/** The fields of a read entry, by name; undefined for an entry deleted under its id. */
function fieldMap(raw: Buffer[] | null): Map<string, Buffer> | undefined {
  if (raw === null || raw.length === 0) return undefined
  const map = new Map<string, Buffer>()
  for (let i = 0; i + 1 < raw.length; i += 2)
    map.set((raw[i] as Buffer).toString('latin1'), raw[i + 1] as Buffer)
  return map
}

function numberOr(value: Buffer | undefined): number | undefined {
  if (value === undefined) return undefined
  const parsed = Number(value.toString('latin1'))
  return Number.isFinite(parsed) ? parsed : undefined
}

function updateOf(id: string, fields: Map<string, Buffer>): QueuedUpdate {
  return {
    id,
    body: fields.get('b') ?? Buffer.alloc(0),
    receivedAt: numberOr(fields.get('t')) ?? 0,
    updateId: numberOr(fields.get('i')) ?? 0,
    type: fields.get('y')?.toString('utf8') ?? '',
    chatId: numberOr(fields.get('c')),
    userId: numberOr(fields.get('u')),
    command: fields.get('m')?.toString('utf8'),
    requestId: fields.get('r')?.toString('utf8') ?? '',
    forwardedFor: fields.get('f')?.toString('utf8') ?? '',
    forwardedProto: fields.get('p')?.toString('utf8') ?? 'https',
  }
}

function deadOf(id: string, fields: Map<string, Buffer>): DeadLetter {
  return {
    ...updateOf(id, fields),
    reason: fields.get('why')?.toString('utf8') ?? '',
    attempts: numberOr(fields.get('n')) ?? 0,
    diedAt: numberOr(fields.get('died')) ?? 0,
  }
}

/** Entries as XREADGROUP and XRANGE answer them (Buffer replies). */
type RawEntries = [Buffer, Buffer[] | null][]

/** What a shard holds: its length, the pending entries (read, not acknowledged) and the oldest's time. */
export interface ShardStats {
  readonly length: number
  readonly pending: number
  /** ms since the epoch of the oldest entry (its id's time); undefined when empty. */
  readonly oldestAt: number | undefined
}

/** The queue's commands, on one client. */
export class QueueRedis {
  readonly #client: Client

  constructor(client: Client) {
    this.#client = client
  }

  get client(): Redis | Cluster {
    return this.#client
  }

  /** Appends an update to its shard unless the queue holds `maxLen`: its id, or undefined when full. */
  async admit(
    keys: QueueKeys,
    shard: number,
    maxLen: number,
    update: Omit<QueuedUpdate, 'id'>,
  ): Promise<string | undefined> {
    const id = await this.#client.botgateAdmit(
      keys.shards.length,
      ...keys.shards,
      shard + 1,
      maxLen,
      ...fieldsOf(update),
    )
    return id ?? undefined
  }

  /** Creates the consumer group of a shard (and the stream), from its first entry; fine if it exists. */
  async ensureGroup(stream: string): Promise<void> {
    try {
      await this.#client.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM')
    } catch (error) {
      if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error
    }
  }

  /**
   * Takes over the entries other consumers read and did not acknowledge (a replica that died or
   * let the shard go), at most `limit` of them.
   */
  async claimAll(stream: string, consumer: string, limit: number): Promise<void> {
    let cursor = '0-0'
    let taken = 0
    // Each round takes up to 100; the cursor comes back to 0-0 once the whole list was scanned.
    while (taken < limit) {
      const answer = (await this.#client.xautoclaim(
        stream,
        GROUP,
        consumer,
        0,
        cursor,
        'COUNT',
        100,
        'JUSTID',
      )) as [string, string[]]
      taken += answer[1]?.length ?? 0
      cursor = answer[0]
      if (cursor === '0-0') return
    }
  }

  /**
   * Entries of `stream` for `consumer`: after `from` in its own pending list (`from` an id), or
   * never delivered to the group yet (`from` '>'). Entries whose data is gone (deleted under a
   * pending id) are acknowledged and left out.
   */
  async read(stream: string, consumer: string, from: string, count: number): Promise<QueuedUpdate[]> {
    const answer = (await this.#client.xreadgroupBuffer(
      'GROUP',
      GROUP,
      consumer,
      'COUNT',
      count,
      'STREAMS',
      stream,
      from,
    )) as [Buffer, RawEntries][] | null
    const entries = answer?.[0]?.[1] ?? []
    const updates: QueuedUpdate[] = []
    for (const [rawId, rawFields] of entries) {
      const id = rawId.toString('latin1')
      const fields = fieldMap(rawFields)
      if (fields === undefined) await this.#client.xack(stream, GROUP, id)
      else updates.push(updateOf(id, fields))
    }
    return updates
  }

  /** Failed deliveries of these entries so far. */
  async attempts(keys: QueueKeys, ids: readonly string[]): Promise<number[]> {
    if (ids.length === 0) return []
    const values = await this.#client.hmget(keys.attempts, ...ids)
    return values.map((value) => Number(value ?? 0))
  }

  /** One more failed delivery of an entry; how many now. */
  failed(keys: QueueKeys, id: string): Promise<number> {
    return this.#client.hincrby(keys.attempts, id, 1)
  }

  /** The entry was delivered: acknowledged and deleted. */
  async ack(keys: QueueKeys, shard: number, id: string): Promise<void> {
    await this.#client.botgateAck(keys.shards[shard] as string, keys.attempts, GROUP, id)
  }

  /** The entry becomes a dead letter. */
  async bury(
    keys: QueueKeys,
    shard: number,
    update: QueuedUpdate,
    why: string,
    attempts: number,
    maxDead: number,
  ): Promise<void> {
    await this.#client.botgateBury(
      keys.shards[shard] as string,
      keys.attempts,
      keys.dead,
      GROUP,
      update.id,
      maxDead,
      ...fieldsOf(update),
      'why',
      why,
      'n',
      String(attempts),
      'died',
      String(Date.now()),
    )
  }

  /**
   * Takes or keeps a shard's lease: `renewed` (it was this replica's), `taken` (it was free, it is
   * this replica's now) or `other` (another replica has it).
   */
  async hold(lease: string, me: string, ttlMs: number): Promise<'renewed' | 'taken' | 'other'> {
    const answer = await this.#client.botgateHold(lease, me, ttlMs)
    return answer === 1 ? 'renewed' : answer === 2 ? 'taken' : 'other'
  }

  async release(lease: string, me: string): Promise<void> {
    await this.#client.botgateRelease(lease, me)
  }

  /** This replica is alive for `ttlMs` more; the number of live replicas. */
  heartbeat(key: string, me: string, ttlMs: number): Promise<number> {
    return this.#client.botgateHeartbeat(key, me, ttlMs)
  }

  async leaveReplicas(key: string, me: string): Promise<void> {
    await this.#client.zrem(key, me)
  }

  /** Consumers of the group with nothing pending and idle longer than `idleMs` are removed. */
  async forgetConsumers(stream: string, idleMs: number, me: string): Promise<void> {
    const consumers = (await this.#client.xinfo('CONSUMERS', stream, GROUP)) as unknown[][]
    for (const row of consumers) {
      const info = new Map<string, unknown>()
      for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1])
      const name = String(info.get('name'))
      if (name !== me && Number(info.get('pending')) === 0 && Number(info.get('idle')) > idleMs)
        await this.#client.xgroup('DELCONSUMER', stream, GROUP, name)
    }
  }

  /** Length, pending count and oldest entry of a shard. */
  async stats(stream: string): Promise<ShardStats> {
    const [length, oldest, pending] = await Promise.all([
      this.#client.xlen(stream),
      this.#client.xrange(stream, '-', '+', 'COUNT', 1),
      this.#client.xpending(stream, GROUP).catch(() => [0]) as Promise<unknown[]>,
    ])
    const first = oldest[0]?.[0]
    return {
      length,
      pending: Number(pending[0] ?? 0),
      oldestAt: first === undefined ? undefined : Number(first.split('-')[0]),
    }
  }

  /** The dead letters, oldest first, at most `limit`, up to the id `last` (inclusive). */
  async deadLetters(keys: QueueKeys, limit: number, last = '+'): Promise<DeadLetter[]> {
    const entries = (await this.#client.xrangeBuffer(keys.dead, '-', last, 'COUNT', limit)) as RawEntries
    const letters: DeadLetter[] = []
    for (const [rawId, rawFields] of entries) {
      const fields = fieldMap(rawFields)
      if (fields !== undefined) letters.push(deadOf(rawId.toString('latin1'), fields))
    }
    return letters
  }

  /** The id of the newest dead letter; undefined when there is none. */
  async lastDead(keys: QueueKeys): Promise<string | undefined> {
    const newest = await this.#client.xrevrange(keys.dead, '+', '-', 'COUNT', 1)
    return newest[0]?.[0]
  }

  deadCount(keys: QueueKeys): Promise<number> {
    return this.#client.xlen(keys.dead)
  }

  /** Moves a dead letter back into its shard's stream: its new id, or undefined when there is none. */
  async replay(keys: QueueKeys, id: string): Promise<string | undefined> {
    const answer = await this.#client.botgateReplay(
      1 + keys.shards.length,
      keys.dead,
      ...keys.shards,
      id,
      keys.shards.length,
    )
    return answer ?? undefined
  }

  /** Deletes a dead letter: whether there was one. */
  async drop(keys: QueueKeys, id: string): Promise<boolean> {
    return (await this.#client.xdel(keys.dead, id)) === 1
  }
}
