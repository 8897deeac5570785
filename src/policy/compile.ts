/**
 * @module
 * Compiles one bot's config and policy into its ready pipeline: every check created once, in the
 * order of SPEC section 3, so the request path only runs precomputed functions.
 */

import { createIpLimitsCheck, createUpdateLimitsCheck, type LimitsDeps } from '../checks/limits/index.js'
import { isShadow } from '../checks/mode.js'
import { createReplyFilter } from '../checks/replies/index.js'
import { createSecretCheck } from '../checks/secret/index.js'
import { createSourcesCheck } from '../checks/sources/index.js'
import { bodyLimits } from '../checks/updates/index.js'
import type { BotConfig } from '../config/load.js'
import type { ForwardTarget } from '../forward/index.js'
import { Upstream } from '../forward/upstream.js'
import type { BotMetrics, GatewayMetrics } from '../observe/metrics.js'
import type { RequestCheck, UpdateCheck } from '../pipeline/check.js'
import type { Store } from '../store/index.js'

export interface BotPipeline extends ForwardTarget {
  readonly config: BotConfig
  readonly name: string
  /** Checks 2-4 (sources, ip limits, secret): before a byte of body is read. */
  readonly requestChecks: readonly RequestCheck[]
  /** Check 6: `limit` is the policy's; `readLimit` is larger only in shadow mode. */
  readonly body: { readonly limit: number; readonly readLimit: number }
  /** Checks 8-12: on the parsed update; the chat, user and bot limits last. */
  readonly updateChecks: readonly UpdateCheck[]
  readonly metrics: BotMetrics
}

/** What compiled pipelines share across bots and reloads. */
export interface CompileDeps {
  readonly metrics: GatewayMetrics
  readonly store: Store
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
  const ipLimits = createIpLimitsCheck(policy.limits, limits)
  const requestChecks: RequestCheck[] = [
    createSourcesCheck(policy.sources ?? { allow: ['telegram'] }, isShadow(mode, policy.sources?.mode)),
    ...(ipLimits === undefined ? [] : [ipLimits]),
    createSecretCheck(bot.secretToken),
  ]
  const updateChecks: UpdateCheck[] = []
  // Check 12 stays last: it consumes a limit only for updates every other check let through.
  const updateLimits = createUpdateLimitsCheck(policy.limits, limits)
  if (updateLimits !== undefined) updateChecks.push(updateLimits)
  const updates = policy.updates ?? { max_body: '256KiB' }
  return {
    config: bot,
    name: bot.name,
    requestChecks,
    body: bodyLimits(updates, isShadow(mode, updates.mode)),
    updateChecks,
    upstream: new Upstream(bot.upstream, bot.maxInflight),
    maxInflight: bot.maxInflight,
    metrics: metrics.bot(bot.name),
    replyFilter: createReplyFilter(policy.replies),
    replyShadow: isShadow(mode, policy.replies?.mode),
  }
}
