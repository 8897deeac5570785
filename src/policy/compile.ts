/**
 * @module
 * Compiles one bot's config and policy into its ready pipeline: every check created once, in the
 * order of SPEC section 3, so the request path only runs precomputed functions.
 *
 * The checks that depend on the policy alone (sources, schema, update types, the reply filter
 * unless `outbound.chats` ties it to the bot, the body limits) are compiled once per policy
 * object and shared by every bot that has it: the loader gives the bots that name one policy file
 * one object, so 10,000 bots sharing a policy compile it once. The rest (limits, dedupe,
 * commands, secret, blocks) name the bot.
 */

import { createHash, KeyObject } from 'node:crypto'
import type { Blocks } from '../blocks/index.js'
import { type BanEvent, type Bans, createBans } from '../checks/bans/index.js'
import { createBlockedCheck } from '../checks/blocked/index.js'
import { createChatsCheck } from '../checks/chats/index.js'
import { createCommandsCheck } from '../checks/commands/index.js'
import { createContentCheck } from '../checks/content/index.js'
import { createDedupeCheck } from '../checks/dedupe/index.js'
import { createIpLimitsCheck, createUpdateLimitsCheck, type LimitsDeps } from '../checks/limits/index.js'
import { isShadow } from '../checks/mode.js'
import { createChatLimits, heardFromTtlMs, usesHeardFrom } from '../checks/outbound/chats.js'
import { createHeardRecorder, type HeardRecorder } from '../checks/outbound/heard.js'
import { createReplyFilter } from '../checks/replies/index.js'
import { createSecretCheck } from '../checks/secret/index.js'
import { createSourcesCheck } from '../checks/sources/index.js'
import {
  bodyLimits,
  createSchemaCheck,
  createUpdateTypeCheck,
  DEFAULT_UPDATES,
} from '../checks/updates/index.js'
import { createUsersCheck } from '../checks/users/index.js'
import type { BotConfig } from '../config/load.js'
import type { ForwardTarget } from '../forward/index.js'
import { createSigner } from '../forward/sign.js'
import { Upstream, type UpstreamPools } from '../forward/upstream.js'
import type { Logger } from '../observe/logger.js'
import type { BotMetrics, GatewayMetrics } from '../observe/metrics.js'
import type { RequestCheck, UpdateCheck } from '../pipeline/check.js'
import type { Admission } from '../queue/admit.js'
import type { QueueService } from '../queue/index.js'
import type { Store } from '../store/index.js'
import type { Policy } from './schema.js'

export interface BotPipeline extends ForwardTarget {
  readonly config: BotConfig
  readonly name: string
  /** Checks 2-4 (sources, address bans, ip limits, secret): before a byte of body is read. */
  readonly requestChecks: readonly RequestCheck[]
  /** The `bans` section: counts each finished request's reason (undefined: no bans). */
  readonly bans: Bans | undefined
  /** Check 6: `limit` is the policy's; `readLimit` is larger only in shadow mode. */
  readonly body: { readonly limit: number; readonly readLimit: number }
  /** On the parsed update: the blocked check (operator blocks outrank policy), then checks 8-12; the chat, user and bot limits last. */
  readonly updateChecks: readonly UpdateCheck[]
  readonly metrics: BotMetrics
  /** Records the chat of an update about to be forwarded, when `outbound.chats` uses heard_from. */
  readonly heard: HeardRecorder | undefined
  /** Check 13 under `upstream.delivery: queued`: the update goes into the bot's queue instead. */
  readonly queue: Admission | undefined
}

/** What compiled pipelines share across bots and reloads. */
export interface CompileDeps {
  readonly metrics: GatewayMetrics
  readonly store: Store
  /** Runtime blocks (admin API); held by the gateway across reloads, like the store. */
  readonly blocks: Blocks
  /** Where store failures off the request path (dedupe marks not settled) are reported. */
  readonly logger: Logger
  /** The upstream connection pools, shared by bots with the same upstream origin. */
  readonly pools: UpstreamPools
  /** The process's queue; undefined without `store: redis` (the loader refuses queued bots then). */
  readonly queues: QueueService | undefined
}

/** What a pipeline compiles from its policy alone, shared by the bots with that policy object. */
interface PolicyChecks {
  readonly sources: RequestCheck
  readonly schema: UpdateCheck | undefined
  readonly updateType: UpdateCheck | undefined
  readonly content: UpdateCheck | undefined
  readonly body: BotPipeline['body']
  readonly replyFilter: BotPipeline['replyFilter']
  readonly replyShadow: boolean
}

const compiled = new WeakMap<Policy, PolicyChecks>()

function policyChecks(policy: Policy): PolicyChecks {
  const cached = compiled.get(policy)
  if (cached !== undefined) return cached
  const mode = policy.mode
  const updates = policy.updates ?? DEFAULT_UPDATES
  const updatesShadow = isShadow(mode, updates.mode)
  const checks: PolicyChecks = {
    sources: createSourcesCheck(
      policy.sources ?? { allow: ['telegram'] },
      isShadow(mode, policy.sources?.mode),
    ),
    schema: createSchemaCheck(updates, updatesShadow),
    updateType: createUpdateTypeCheck(updates, updatesShadow),
    // Its patterns are compiled once per policy, however many bots share it.
    content: createContentCheck(policy.content, isShadow(mode, policy.content?.mode)),
    body: bodyLimits(updates, updatesShadow),
    replyFilter: createReplyFilter(policy.replies, policy.outbound),
    replyShadow: isShadow(mode, policy.replies?.mode),
  }
  compiled.set(policy, checks)
  return checks
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}

const policyKeys = new WeakMap<Policy, string>()

/** Key material in the key: a hash of its JWK, so two loads of the same key compare equal. */
function keyReplacer(_key: string, value: unknown): unknown {
  return value instanceof KeyObject ? sha256(JSON.stringify(value.export({ format: 'jwk' }))) : value
}

/**
 * A hash of everything a bot's pipeline is compiled from: two loads of the same bot config give
 * the same key, so a reload keeps the compiled pipeline of a bot whose key did not change (its
 * checks, and their in-process state such as reply throttles). Each policy object is hashed once,
 * however many bots share it; URLs hash as their href (JSON), keys as their JWK. A hash, so the
 * key holds no secret in readable form and takes 43 characters per bot.
 */
export function pipelineKey(bot: BotConfig): string {
  let policy = policyKeys.get(bot.policy)
  if (policy === undefined) {
    policy = sha256(JSON.stringify(bot.policy))
    policyKeys.set(bot.policy, policy)
  }
  return sha256(JSON.stringify({ ...bot, policy }, keyReplacer))
}

function present<T>(checks: readonly (T | undefined)[]): T[] {
  return checks.filter((check): check is T => check !== undefined)
}

/** One ban: a log line, the metric and the alert count (the alert says how many, never who). */
function reportBan(event: BanEvent, deps: CompileDeps): void {
  const mode = event.shadow ? 'shadow' : 'enforce'
  deps.metrics.bans.labels(event.bot, event.kind, mode).inc()
  if (!event.shadow) deps.metrics.bot(event.bot).alerts.bans++
  deps.logger.warn(
    {
      bot: event.bot,
      kind: event.kind,
      [event.kind === 'ip' ? 'ip' : 'user_id']: event.kind === 'ip' ? event.subject : Number(event.subject),
      cause: event.cause,
      ban_ms: event.durationMs,
      mode,
    },
    event.shadow ? 'would ban (shadow)' : 'banned',
  )
}

export function compileBot(bot: BotConfig, deps: CompileDeps): BotPipeline {
  const { metrics } = deps
  const policy = bot.policy
  const mode = policy.mode
  const limits: LimitsDeps = {
    bot: bot.name,
    username: bot.username?.toLowerCase(),
    store: deps.store,
    metrics,
    policyMode: mode,
  }
  const shared = policyChecks(policy)
  const ipLimits = createIpLimitsCheck(policy.limits, limits)
  const bans = createBans(policy.bans, isShadow(mode, policy.bans?.mode), {
    bot: bot.name,
    store: deps.store,
    blocks: deps.blocks,
    onBan: (event) => reportBan(event, deps),
    onError: (error) => deps.logger.warn({ bot: bot.name, err: error }, 'ban not counted'),
  })
  // Check 2: the source list first (no store operation), then a banned address is refused before
  // its ip limits are consumed and before its secret is compared.
  const requestChecks = present([shared.sources, bans?.check, ipLimits, createSecretCheck(bot.secretToken)])
  const dedupe = policy.dedupe ?? { ttl: '24h' }
  // SPEC section 3's order. A check with nothing to do under this policy is left out entirely.
  const updateChecks = present([
    // Blocks first: an operator's block outranks every policy verdict (see checks/blocked).
    createBlockedCheck(deps.blocks.forBot(bot.name)),
    /* 8 */ shared.schema,
    /* 9 */ shared.updateType,
    /* 10 */ createDedupeCheck(dedupe, isShadow(mode, dedupe === false ? undefined : dedupe.mode), {
      store: deps.store,
      bot: bot.name,
      upstreamTimeoutMs: bot.upstream.timeoutMs,
      onError: (error) => deps.logger.warn({ bot: bot.name, err: error }, 'dedupe mark not settled'),
    }),
    // 11: who may talk to the bot, then which commands, then what the message carries. Chats and
    // users first: a refused sender learns nothing from a command or content verdict.
    /* 11 */ createChatsCheck(policy.chats, isShadow(mode, policy.chats?.mode), {
      store: deps.store,
      bot: bot.name,
    }),
    /* 11 */ createUsersCheck(policy.users, policy.roles, isShadow(mode, policy.users?.mode), {
      store: deps.store,
      bot: bot.name,
    }),
    /* 11 */ createCommandsCheck(
      policy.commands,
      policy.roles,
      isShadow(mode, policy.commands?.mode),
      bot.username,
    ),
    /* 11 */ shared.content,
    // 12 stays last: it consumes a limit only for updates every other check let through.
    /* 12 */ createUpdateLimitsCheck(policy.limits, limits),
  ])
  return {
    config: bot,
    name: bot.name,
    requestChecks,
    bans,
    body: shared.body,
    updateChecks,
    upstream: new Upstream(bot.upstream, deps.pools),
    maxInflight: bot.maxInflight,
    metrics: metrics.bot(bot.name),
    // outbound.chats names the bot (its heard_from marks): its filter is the bot's own.
    replyFilter:
      policy.outbound?.chats === undefined
        ? shared.replyFilter
        : createReplyFilter(
            policy.replies,
            policy.outbound,
            createChatLimits(policy.outbound.chats, { store: deps.store, bot: bot.name }),
          ),
    replyShadow: shared.replyShadow,
    sign: bot.upstream.sign === undefined ? undefined : createSigner(bot.upstream.sign),
    heard: usesHeardFrom(policy.outbound?.chats)
      ? createHeardRecorder(heardFromTtlMs(policy.outbound?.chats), {
          store: deps.store,
          bot: bot.name,
          logger: deps.logger,
        })
      : undefined,
    queue:
      bot.upstream.queue === undefined ? undefined : deps.queues?.admission(bot.name, bot.upstream.queue),
  }
}
