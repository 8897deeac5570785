/**
 * Real Redis for tests: the machine's server (`BOTGATE_TEST_REDIS`, default
 * redis://127.0.0.1:6379), used under a prefix of the test's own and cleaned up, and private
 * `redis-server` processes on free ports for the tests that kill, pause or cluster them.
 *
 * Without Redis the tests that need it are skipped with a notice on stderr; under `CI=true` a
 * missing Redis fails the run instead, so CI cannot pass by skipping.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import type { RedisStoreConfig } from '../../src/store/config.js'
import { freePort } from './upstream.js'

export const SHARED_REDIS_URL = process.env.BOTGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'

/** A prefix no other test run uses, so runs (and engineers) sharing one Redis never collide. */
export function testPrefix(name: string): string {
  return `botgate-test-${name}-${randomBytes(4).toString('hex')}:`
}

/** A `store: redis` config for a RedisStore on one server, as the config loader would build it. */
export function redisStoreConfig(url: string, prefix: string): RedisStoreConfig {
  const { hostname, port } = new URL(url)
  return {
    type: 'redis',
    topology: { mode: 'standalone', endpoint: { host: hostname, port: Number(port || 6379) } },
    username: undefined,
    password: undefined,
    db: 0,
    tls: false,
    prefix,
    timeoutMs: 1000,
    connectTimeoutMs: 2000,
    onError: 'closed',
    maxEntries: 100_000,
  }
}

/** A client for assertions and cleanup; fails fast when Redis is not there. */
export function client(url: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
  })
}

async function answers(url: string): Promise<boolean> {
  const redis = client(url)
  redis.on('error', () => {})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

function missing(what: string): false {
  const message = `${what} is not available`
  if (process.env.CI === 'true') throw new Error(`${message}: CI runs every Redis test (CI=true)`)
  console.warn(`\n[botgate tests] ${message}: SKIPPING the tests that need it\n`)
  return false
}

/** Whether the machine's Redis answers (see the module comment for what happens when not). */
export async function sharedRedisAvailable(): Promise<boolean> {
  return (await answers(SHARED_REDIS_URL)) || missing(`Redis at ${SHARED_REDIS_URL}`)
}

function hasBinary(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Whether `redis-server` (and `redis-cli`, for clusters) can be started here. */
export function redisServerAvailable(): boolean {
  return (hasBinary('redis-server') && hasBinary('redis-cli')) || missing('redis-server (and redis-cli)')
}

/** Every key under `prefix` and its PTTL (-1: no TTL), then deletes them. */
export async function keysAndCleanup(redis: Redis, prefix: string): Promise<Map<string, number>> {
  const found = new Map<string, number>()
  for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 1000 })) {
    for (const key of batch as string[]) found.set(key, await redis.pttl(key))
  }
  if (found.size > 0) await redis.del(...found.keys())
  return found
}

/** A private redis-server process on a free port, killed and restarted at will. */
export class RedisServer {
  readonly port: number
  readonly dir: string
  readonly #args: readonly string[]
  readonly #password: string | undefined
  #configFile: string | undefined
  #child: ChildProcess | undefined

  private constructor(port: number, args: readonly string[]) {
    this.port = port
    this.dir = mkdtempSync(path.join(tmpdir(), 'botgate-redis-'))
    this.#args = args
    const at = args.indexOf('--requirepass')
    this.#password = at < 0 ? undefined : args[at + 1]
  }

  /** Starts `redis-server` without persistence on a free port (extra `args` appended). */
  static async start(args: readonly string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), args)
    await server.restart()
    return server
  }

  /**
   * A Sentinel monitoring `master` as `name` (quorum 1); `--requirepass` in `args` protects the
   * Sentinel itself, `masterPassword` is what it uses to talk to the master.
   */
  static async startSentinel(
    name: string,
    master: RedisServer,
    options: { masterPassword?: string; args?: readonly string[] } = {},
  ): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options.args ?? [])
    const lines = [`sentinel monitor ${name} 127.0.0.1 ${master.port} 1`]
    if (options.masterPassword !== undefined)
      lines.push(`sentinel auth-pass ${name} ${options.masterPassword}`)
    server.#configFile = path.join(server.dir, 'sentinel.conf')
    writeFileSync(server.#configFile, `${lines.join('\n')}\n`)
    await server.restart()
    return server
  }

  /** The server's URL, with its password when it has one (`--requirepass`). */
  get url(): string {
    const auth = this.#password === undefined ? '' : `:${encodeURIComponent(this.#password)}@`
    return `redis://${auth}127.0.0.1:${this.port}`
  }

  /** (Re)starts the process on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        ...(this.#configFile === undefined ? [] : [this.#configFile, '--sentinel']),
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        ...(this.#configFile === undefined ? ['--save', '', '--appendonly', 'no'] : []),
        '--dir',
        this.dir,
        ...this.#args,
      ],
      { stdio: 'ignore' },
    )
    this.#child = child
    const deadline = Date.now() + 10_000
    while (!(await answers(this.url))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
      if (Date.now() > deadline) throw new Error('redis-server did not start')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** SIGKILL, as a crash: no goodbye to the clients. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }

  /** Runs one command on this server over a fresh connection. */
  async command(...args: (string | number)[]): Promise<unknown> {
    const redis = client(this.url)
    try {
      await redis.connect()
      const [name, ...rest] = args
      return await redis.call(String(name), ...rest)
    } finally {
      redis.disconnect()
    }
  }

  stop(): Promise<void> {
    return this.kill()
  }
}
