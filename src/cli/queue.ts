/**
 * @module
 * `botgate queue list|replay|drop BOT`: the queue of a bot with `upstream.delivery: queued`, read
 * from the Redis of the config's `store`: what waits in each shard, and the dead letters, which
 * can be sent again (replay: back into the bot's queue, delivered like a new update) or deleted.
 */

import { QueueKeys, type QueueRedis, queueClient, whenReady } from '../queue/streams.js'
import { connect } from '../store/redis.js'
import { CONFIG_OPTION, defaultConfigFile, parse, UsageError } from './args.js'
import { fail, namedBot } from './bot-api.js'

export const summary = "list a queued bot's backlog and dead letters; replay or drop dead letters"

export const help = `Usage: botgate queue list BOT [--limit N]
       botgate queue replay BOT (ID... | --all)
       botgate queue drop BOT (ID... | --all)

For a bot with upstream.delivery: queued (docs/queue.md), in the Redis of the config's store:
  list     each shard's length, pending deliveries and oldest update, then the dead letters
           (id, update, type, chat, attempts, why, when), oldest first
  replay   moves dead letters back into the bot's queue: delivered again, after the updates of
           their chat queued before the replay
  drop     deletes dead letters for good
  A named id that is not a dead letter (any more) is reported, and the exit code is 1.

Options:
  -c, --config FILE   the gateway config (default: $BOTGATE_CONFIG, else ./gateway.yaml)
  --limit N           dead letters listed (default: 50)
  --all               every dead letter there is when the command starts (replay, drop)
`

const ACTIONS = ['list', 'replay', 'drop'] as const
type Action = (typeof ACTIONS)[number]

/** Dead letters replayed or dropped per round with --all: bounded memory, whatever the count. */
const PAGE = 500

/** The largest part of a stream id: Redis's ids are two unsigned 64-bit numbers. */
const MAX_ID_PART = 2n ** 64n - 1n

function isStreamId(text: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(text)
  return (
    match !== null && BigInt(match[1] as string) <= MAX_ID_PART && BigInt(match[2] as string) <= MAX_ID_PART
  )
}

function age(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000))
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  return `${Math.round(seconds / 3600)}h`
}

export async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...CONFIG_OPTION, limit: { type: 'string' }, all: { type: 'boolean' } },
    true,
  )
  const [action, name, ...ids] = positionals
  if (action === undefined || !ACTIONS.includes(action as Action))
    throw new UsageError('say what to do: list, replay or drop')
  if (name === undefined) throw new UsageError(`name the bot, as in the config: botgate queue ${action} BOT`)
  const limit = values.limit === undefined ? 50 : Number(values.limit)
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new UsageError('--limit must be a positive whole number')
  const all = values.all === true
  if (action === 'list') {
    if (ids.length > 0) throw new UsageError(`unexpected: ${ids.join(' ')}`)
    if (all) throw new UsageError('--all is for replay and drop; list takes --limit')
  } else {
    if (ids.length === 0 && !all)
      throw new UsageError(
        `name the dead letters by id (botgate queue list ${name} shows them), or give --all`,
      )
    // Both would be a typo away from replaying or deleting every dead letter instead of a few.
    if (ids.length > 0 && all) throw new UsageError('give either dead letter ids or --all, not both')
    if (values.limit !== undefined) throw new UsageError('--limit is for list')
  }
  for (const id of ids) if (!isStreamId(id)) throw new UsageError(`not a dead letter id: ${id}`)

  const named = namedBot('queue', name, defaultConfigFile(values.config))
  if (typeof named === 'number') return named
  const { config, bot } = named
  const queue = bot.upstream.queue
  if (queue === undefined || config.store.type !== 'redis') {
    fail('queue', `bot ${name} has upstream.delivery: direct: it has no queue`)
    return 1
  }
  const client = connect(config.store)
  client.on('error', () => {})
  const redis = queueClient(client)
  const keys = new QueueKeys(config.store.prefix, name, queue.shards)
  try {
    if (!(await whenReady(client, config.store.connectTimeoutMs)))
      throw new Error(`no connection within store.connect_timeout (${config.store.connectTimeoutMs} ms)`)
    if (action === 'list') {
      await list(redis, keys, limit)
      return 0
    }
    return await change(redis, keys, action as 'replay' | 'drop', ids, all)
  } catch (error) {
    // The error's name and message: ioredis's say what failed (a refused connection), never the password.
    fail('queue', `Redis: ${(error as Error).message}`)
    return 1
  } finally {
    client.disconnect()
  }
}

async function list(redis: QueueRedis, keys: QueueKeys, limit: number): Promise<void> {
  const now = Date.now()
  const out: string[] = []
  let total = 0
  for (const [shard, stream] of keys.shards.entries()) {
    const stats = await redis.stats(stream)
    total += stats.length
    const oldest = stats.oldestAt === undefined ? '' : `, oldest ${age(now - stats.oldestAt)} ago`
    out.push(`shard ${shard}: ${stats.length} queued, ${stats.pending} being delivered${oldest}`)
  }
  out.unshift(`queued: ${total}`)
  const count = await redis.deadCount(keys)
  out.push(`dead letters: ${count}${count > limit ? ` (the oldest ${limit} below)` : ''}`)
  for (const letter of await redis.deadLetters(keys, limit)) {
    const chat = letter.chatId === undefined ? '' : ` chat ${letter.chatId}`
    out.push(
      `${letter.id} update ${letter.updateId} ${letter.type}${chat} attempts ${letter.attempts} ${letter.reason} ${age(now - letter.diedAt)} ago`,
    )
  }
  process.stdout.write(`${out.join('\n')}\n`)
}

/** Replays or drops dead letters: the exit code (1 when a named one is not there). */
async function change(
  redis: QueueRedis,
  keys: QueueKeys,
  action: 'replay' | 'drop',
  ids: readonly string[],
  all: boolean,
): Promise<number> {
  let done = 0
  const missing: string[] = []
  const apply = async (id: string) => {
    const found =
      action === 'replay' ? (await redis.replay(keys, id)) !== undefined : await redis.drop(keys, id)
    if (found) done++
    else missing.push(id)
  }
  if (all) {
    // The dead letters there are now, not those that die meanwhile: a replayed update the bot
    // fails again at once comes back as a new dead letter, and would be replayed again and again.
    const last = await redis.lastDead(keys)
    // Page by page from the oldest; each page leaves the dead letters, so the next starts anew.
    for (let round = 0; last !== undefined && round < 100_000; round++) {
      const page = await redis.deadLetters(keys, PAGE, last)
      if (page.length === 0) break
      for (const letter of page) await apply(letter.id)
    }
  } else for (const id of ids) await apply(id)
  const verb = action === 'replay' ? 'replayed' : 'dropped'
  process.stdout.write(`${verb} ${done}\n`)
  // With --all, one gone meanwhile (another operator's drop) is no error.
  if (all || missing.length === 0) return 0
  fail('queue', `no dead letter ${missing.join(', ')} (botgate queue list shows them)`)
  return 1
}
