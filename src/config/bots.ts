/**
 * @module
 * The `bots` list: each bot's secret, upstream (URL, timeout, its own secret, signing) and policy
 * (a file relative to the config, the shipped default, or inline), resolved into a
 * {@link BotConfig}; and the rules across bots (unique names and paths) and the warnings their
 * policies call for.
 */

import {
  checkPolicy,
  DEFAULT_POLICY_FILE,
  loadPolicyFile,
  type PolicyOrigin,
  policyPath,
} from '../policy/load.js'
import type { Policy } from '../policy/schema.js'
import { compileQueue, type QueueConfig } from '../queue/schema.js'
import { errorCode } from './errors.js'
import { resolveSign, type SignConfig } from './keys.js'
import type { RawBot, RawConfig } from './schema.js'
import { MIN_SECRET_LENGTH, type SecretReader } from './secrets.js'
import { displayName, type Segment, type YamlSource } from './source.js'
import { parseDuration } from './units.js'

export interface UpstreamConfig {
  readonly url: URL
  readonly timeoutMs: number
  readonly secretToken: string | undefined
  /** `upstream.sign`: a JWT on every forward. */
  readonly sign: SignConfig | undefined
  /** `delivery: queued`: the queue the update waits in (docs/queue.md); undefined: direct. */
  readonly queue: QueueConfig | undefined
}

export interface BotConfig {
  readonly name: string
  readonly username: string | undefined
  readonly path: string
  readonly secretToken: string
  readonly maxInflight: number
  readonly upstream: UpstreamConfig
  readonly policy: Policy
  readonly policyOrigin: PolicyOrigin
  /** The bot's own Bot API token: the Bot API commands (set-webhook ...) and the egress read it. */
  readonly token: string | undefined
  /** `egress`: the bot's local credential for the egress listener and the methods it may call. */
  readonly egress: BotEgressConfig | undefined
}

export interface BotEgressConfig {
  readonly credential: string
}

/** Telegram gives up on a webhook answer after 60 s (SPEC section 1). */
const TELEGRAM_TIMEOUT_MS = 60_000

/** Resolves the bots of one config load. */
export class BotResolver {
  readonly #reader: SecretReader
  readonly #env: NodeJS.ProcessEnv
  readonly #warnings: string[]
  /** The policy files read, whose problems are reported with the config's. */
  readonly policySources: YamlSource[] = []
  /**
   * Each policy file is read, parsed and checked once per load, however many bots name it: with
   * 10,000 bots sharing one file, reading it per bot was two thirds of a load. The bots that share
   * it share one {@link Policy} object too, which lets the pipelines share what they compile
   * from it.
   */
  readonly #policyFiles = new Map<
    string,
    { readonly policy: Policy | undefined; readonly origin: PolicyOrigin } | { readonly error: string }
  >()

  constructor(reader: SecretReader, env: NodeJS.ProcessEnv, warnings: string[]) {
    this.#reader = reader
    this.#env = env
    this.#warnings = warnings
  }

  #policy(bot: RawBot, at: readonly Segment[]): { policy: Policy; origin: PolicyOrigin } | undefined {
    if (typeof bot.policy === 'object') {
      checkPolicy(bot.policy, this.#reader.source, [...at, 'policy'])
      return { policy: bot.policy, origin: { file: undefined, label: 'inline' } }
    }
    const file =
      bot.policy === undefined ? DEFAULT_POLICY_FILE : policyPath(this.#reader.source.file, bot.policy)
    const label = bot.policy === undefined ? 'the shipped default (policies/default.yaml)' : undefined
    this.#reader.files.add(file)
    let loaded = this.#policyFiles.get(file)
    if (loaded === undefined) {
      try {
        const read = loadPolicyFile(file, this.#env)
        this.policySources.push(read.source)
        loaded =
          read.policy === undefined
            ? { policy: undefined, origin: read.origin }
            : { policy: read.policy, origin: label === undefined ? read.origin : { file, label } }
      } catch (error) {
        loaded = { error: errorCode(error) }
      }
      this.#policyFiles.set(file, loaded)
    }
    if ('error' in loaded) {
      this.#reader.source.issue(
        [...at, 'policy'],
        `cannot read policy file ${displayName(file)}: ${loaded.error}`,
      )
      return undefined
    }
    // The policy's problems are reported once, on its own file (policySources).
    return loaded.policy === undefined ? undefined : { policy: loaded.policy, origin: loaded.origin }
  }

  #upstream(bot: RawBot, at: readonly Segment[]): UpstreamConfig | undefined {
    let url: URL | undefined
    try {
      url = new URL(bot.upstream.url)
    } catch {
      this.#reader.source.issue([...at, 'upstream', 'url'], 'must be an http(s) URL')
    }
    if (url && (!['http:', 'https:'].includes(url.protocol) || url.hostname === '')) {
      this.#reader.source.issue([...at, 'upstream', 'url'], 'must be an http(s) URL')
      url = undefined
    }
    const timeoutMs = parseDuration(bot.upstream.timeout)
    if (timeoutMs === 0) this.#reader.source.issue([...at, 'upstream', 'timeout'], 'must be more than 0')
    if (timeoutMs >= TELEGRAM_TIMEOUT_MS) {
      this.#warnings.push(
        `bot ${bot.name}: upstream.timeout ${bot.upstream.timeout} is not under Telegram's 60 s: Telegram will resend before the gateway answers`,
      )
    }
    const secretAt = [...at, 'upstream', 'secret_token']
    const secretToken = this.#reader.secret(
      bot.upstream as Record<string, unknown>,
      [...at, 'upstream'],
      'secret_token',
      undefined,
    )
    if (secretToken !== undefined) this.#reader.secretRules(secretToken, secretAt, 1)
    const sign =
      bot.upstream.sign === undefined
        ? undefined
        : resolveSign(this.#reader, bot.upstream.sign, [...at, 'upstream', 'sign'], {
            name: bot.name,
            urlHasCredentials: url !== undefined && url.username !== '',
          })
    if (bot.upstream.delivery !== 'queued' && bot.upstream.queue !== undefined)
      this.#reader.source.issue([...at, 'upstream', 'queue'], 'is read only with delivery: queued')
    const queue = bot.upstream.delivery === 'queued' ? compileQueue(bot.upstream.queue) : undefined
    if (queue !== undefined && queue.retryMinMs > queue.retryMaxMs)
      this.#reader.source.issue([...at, 'upstream', 'queue', 'retry_min'], 'must not be more than retry_max')
    if (queue !== undefined && (queue.leaseMs < 1000 || queue.pollMs === 0))
      this.#reader.source.issue(
        [...at, 'upstream', 'queue', queue.pollMs === 0 ? 'poll' : 'lease'],
        queue.pollMs === 0 ? 'must be more than 0' : 'must be at least 1s',
      )
    return url === undefined ? undefined : { url, timeoutMs, secretToken, sign, queue }
  }

  /** One `bots[]` entry; undefined when it has problems (reported). */
  bot(bot: RawBot, index: number): BotConfig | undefined {
    const at: Segment[] = ['bots', index]
    const secretToken = this.#reader.secret(
      bot as Record<string, unknown>,
      at,
      'secret_token',
      '(or give secret_token_file): without it anyone who finds the path could post updates',
    )
    const secretOk =
      secretToken !== undefined &&
      this.#reader.secretRules(
        secretToken,
        [...at, bot.secret_token_file ? 'secret_token_file' : 'secret_token'],
        MIN_SECRET_LENGTH,
      )
    const upstream = this.#upstream(bot, at)
    const policy = this.#policy(bot, at)
    const token = this.#reader.botToken(bot as Record<string, unknown>, at, undefined)
    const egress = this.#egress(bot, at, token)
    if (!secretOk || !upstream || !policy || secretToken === undefined) return undefined
    const segment = bot.path.split('/').pop() ?? ''
    if (segment.length < 16) {
      this.#warnings.push(
        `bot ${bot.name}: path ${bot.path} has no long random segment: put one in it (botgate secret prints one)`,
      )
    }
    return {
      name: bot.name,
      username: bot.username,
      path: bot.path,
      secretToken,
      maxInflight: bot.max_inflight,
      upstream,
      policy: policy.policy,
      policyOrigin: policy.origin,
      token,
      egress,
    }
  }

  /** `bots[].egress`: a token-shaped credential that is not the token, and the token itself. */
  #egress(bot: RawBot, at: readonly Segment[], token: string | undefined): BotEgressConfig | undefined {
    if (bot.egress === undefined) return undefined
    const egressAt = [...at, 'egress']
    const raw = bot.egress as Record<string, unknown>
    const key = raw.credential_file === undefined ? 'credential' : 'credential_file'
    const credential = this.#reader.secret(raw, egressAt, 'credential', 'a credential (or credential_file)')
    if (credential === undefined) return undefined
    if (!EGRESS_CREDENTIAL.test(credential)) {
      this.#reader.source.issue(
        [...egressAt, key],
        'must look like a bot token (digits, a colon, then at least 30 of A-Z a-z 0-9 _ -): e.g. 1: followed by what botgate secret prints',
      )
      return undefined
    }
    if (token === undefined) {
      this.#reader.source.issue(
        egressAt,
        'needs the bot token (token or token_file): the egress calls the Bot API with it',
      )
      return undefined
    }
    if (credential === token) {
      this.#reader.source.issue(
        [...egressAt, key],
        'must not be the bot token: the bot holds the credential, never the token',
      )
      return undefined
    }
    return { credential }
  }
}

/** Token-shaped, so frameworks that check a token's shape accept it, and long enough not to guess. */
const EGRESS_CREDENTIAL = /^[0-9]{1,20}:[A-Za-z0-9_-]{30,200}$/

/** Names and paths are unique across bots (SPEC section 2). */
export function uniqueBots(raw: RawConfig, source: YamlSource): void {
  for (const key of ['name', 'path'] as const) {
    const seen = new Map<string, number>()
    raw.bots.forEach((bot, index) => {
      const first = seen.get(bot[key])
      if (first === undefined) seen.set(bot[key], index)
      else
        source.issue(['bots', index, key], `duplicates bots[${first}].${key}: each bot needs its own ${key}`)
    })
  }
}

/** Legal policy choices that weaken a protection: shadow modes, ip limits in front of Telegram, any source. */
export function shadowWarnings(bots: readonly BotConfig[], warnings: string[]): void {
  for (const bot of bots) {
    const { mode, ...sections } = bot.policy
    if (mode === 'shadow')
      warnings.push(`bot ${bot.name}: policy mode is shadow: policy verdicts are logged, not enforced`)
    for (const [name, section] of Object.entries(sections)) {
      if ((section as { mode?: string } | undefined)?.mode === 'shadow') {
        warnings.push(
          `bot ${bot.name}: section ${name} is in shadow mode: its verdicts are logged, not enforced`,
        )
      }
    }
    const telegramSources = (bot.policy.sources?.allow ?? ['telegram']).includes('telegram')
    for (const rule of bot.policy.limits ?? []) {
      if (rule.mode === 'shadow' && mode !== 'shadow')
        warnings.push(
          `bot ${bot.name}: limit ${rule.name} is in shadow mode: its verdicts are logged, not enforced`,
        )
      if (rule.key === 'ip' && telegramSources) {
        warnings.push(
          `bot ${bot.name}: limit ${rule.name} keys on ip and sources allow Telegram, which delivers every update from a few addresses: size it for all of the bot's traffic, or Telegram itself is answered 429`,
        )
      }
    }
    if (bot.policy.sources?.allow.includes('any')) {
      warnings.push(
        `bot ${bot.name}: sources.allow includes any: every address may deliver updates (the secret still applies)`,
      )
    }
  }
}
