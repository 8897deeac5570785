/**
 * @module
 * Loads a config in a worker thread, for reloads: reading, parsing and checking a config of
 * 10,000 bots takes seconds of CPU (its YAML alone, one synchronous parse, took about 1 s), and
 * on the main thread every request arriving meanwhile waited for all of it (SPEC section 7:
 * reloads happen off the request path). The worker runs the same synchronous {@link loadConfig}
 * and posts the result back; the main thread only rebuilds the few objects that cannot cross a
 * thread (URLs, the trusted proxies' CidrSet). Key objects cross as they are (node:crypto
 * KeyObjects are cloneable), and the objects bots share (one policy per policy file) stay shared:
 * the structured clone keeps references.
 *
 * A config the worker refuses comes back as the same {@link ConfigError}, issue for issue.
 */

import { existsSync } from 'node:fs'
import { setImmediate as turn } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads'
import type { Policy } from '../policy/schema.js'
import { type Cidr, CidrSet } from '../request/ip.js'
import type { BotConfig, UpstreamConfig } from './bots.js'
import { ConfigError, type ConfigIssue } from './errors.js'
import { type GatewayConfig, type LoadOptions, loadConfig } from './load.js'

/** A loaded config as it crosses to another thread, without its bots (they follow in chunks). */
export interface EncodedConfig extends Omit<GatewayConfig, 'bots' | 'trustedProxies'> {
  readonly trustedProxies: readonly Cidr[]
  /** The distinct policy objects; bots name theirs by index. */
  readonly policies: readonly Policy[]
  readonly botCount: number
}

export interface EncodedBot extends Omit<BotConfig, 'upstream' | 'policy'> {
  readonly upstream: Omit<UpstreamConfig, 'url'> & { readonly url: string }
  readonly policy: number
}

/** What the worker posts on its parent port once everything is on the data port. */
export type WorkerResult =
  | { readonly ok: true; readonly config: EncodedConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] }
  | { readonly ok: false; readonly message: string }

/** What the worker is started with. */
export interface WorkerInput {
  readonly file: string
  readonly env: Record<string, string | undefined>
  /** Where the bots go, {@link CHUNK_BOTS} per message. */
  readonly port: MessagePort
}

/**
 * Bots per message. Each message is deserialised in one piece on the main thread: 2,000 bots in
 * one took 37 ms there; 250 take about 5.
 */
export const CHUNK_BOTS = 250

/** The longest a load may take before the reload is given up (refused, the running config stays). */
const LOAD_TIMEOUT_MS = 120_000

const WORKER = new URL('./worker.js', import.meta.url)

/** Posts a loaded config: its bots in chunks on `port`, then the rest on `done`. */
export function postConfig(
  config: GatewayConfig,
  port: MessagePort,
  done: (result: WorkerResult) => void,
): void {
  const policies: Policy[] = []
  const index = new Map<Policy, number>()
  let chunk: EncodedBot[] = []
  for (const bot of config.bots) {
    let policy = index.get(bot.policy)
    if (policy === undefined) {
      policy = policies.push(bot.policy) - 1
      index.set(bot.policy, policy)
    }
    chunk.push({ ...bot, policy, upstream: { ...bot.upstream, url: bot.upstream.url.href } })
    if (chunk.length === CHUNK_BOTS) {
      port.postMessage(chunk)
      chunk = []
    }
  }
  if (chunk.length > 0) port.postMessage(chunk)
  const { bots, trustedProxies, ...rest } = config
  done({
    ok: true,
    config: { ...rest, trustedProxies: trustedProxies.cidrs, policies, botCount: bots.length },
  })
}

/** Takes the bots off `port` one chunk per turn of the event loop, so requests are answered between. */
async function receiveBots(
  port: MessagePort,
  encoded: EncodedConfig,
  deadline: number,
): Promise<BotConfig[]> {
  const bots: BotConfig[] = []
  while (bots.length < encoded.botCount) {
    const message = receiveMessageOnPort(port)
    if (message === undefined) {
      if (Date.now() > deadline) throw new Error(`loading the config took over ${LOAD_TIMEOUT_MS} ms`)
    } else {
      for (const bot of message.message as EncodedBot[]) {
        bots.push({
          ...bot,
          policy: encoded.policies[bot.policy] as Policy,
          upstream: { ...bot.upstream, url: new URL(bot.upstream.url) },
        })
      }
    }
    await turn()
  }
  return bots
}

/**
 * Loads and checks a config file in a worker thread; rejects with {@link ConfigError} like
 * {@link loadConfig}. Where the compiled worker is missing (the sources run by a TypeScript test
 * runner), it loads on the calling thread instead.
 */
export async function loadConfigOffThread(file: string, options: LoadOptions = {}): Promise<GatewayConfig> {
  if (!existsSync(fileURLToPath(WORKER))) return loadConfig(file, options)
  const deadline = Date.now() + LOAD_TIMEOUT_MS
  const { port1, port2 } = new MessageChannel()
  const input: WorkerInput = { file, env: { ...(options.env ?? process.env) }, port: port2 }
  const worker = new Worker(WORKER, {
    workerData: input,
    transferList: [port2],
    stdout: false,
    stderr: false,
  })
  let timer: NodeJS.Timeout | undefined
  try {
    const result = await new Promise<WorkerResult>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`loading the config took over ${LOAD_TIMEOUT_MS} ms`)),
        LOAD_TIMEOUT_MS,
      )
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`the config loader's thread exited with ${code}`)))
    })
    if (!result.ok) throw 'issues' in result ? new ConfigError(result.issues) : new Error(result.message)
    const { policies: _policies, botCount: _count, trustedProxies, ...rest } = result.config
    const config: GatewayConfig = {
      ...rest,
      trustedProxies: new CidrSet(trustedProxies),
      bots: await receiveBots(port1, result.config, deadline),
    }
    return options.adjust === undefined ? config : options.adjust(config)
  } finally {
    clearTimeout(timer)
    port1.close()
    void worker.terminate()
  }
}
