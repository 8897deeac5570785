/**
 * Runs the real CLI (`node dist/main.js`) as a child process, the way users run botgate, with a
 * config written to a temporary folder. Collects its JSON log lines for assertions.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const MAIN = path.join(ROOT, 'dist/main.js')

export function secret(): string {
  return randomBytes(48).toString('base64url')
}

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'botgate-test-'))
}

export type LogLine = Record<string, unknown> & { msg?: string }

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a CLI command to completion. */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`botgate ${args.join(' ')} did not finish`))
    }, options.timeoutMs ?? 15_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

export interface GatewayOptions {
  /** The config file's content (YAML). */
  readonly config: string
  /** Other files to write next to it (policies, secrets). */
  readonly files?: Readonly<Record<string, string>>
  readonly env?: NodeJS.ProcessEnv
}

/** A running `botgate serve`. */
export class RunningGateway {
  readonly child: ChildProcess
  readonly dir: string
  readonly lines: LogLine[] = []
  stdout = ''
  stderr = ''
  webhook = ''
  admin = ''
  readonly #exit: Promise<number | null>

  private constructor(child: ChildProcess, dir: string) {
    this.child = child
    this.dir = dir
    let buffer = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk
      buffer += chunk
      let newline = buffer.indexOf('\n')
      while (newline >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        try {
          this.lines.push(JSON.parse(line) as LogLine)
        } catch {
          // not a log line (the demo's banner)
        }
        newline = buffer.indexOf('\n')
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk
    })
    this.#exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  }

  /** Writes the config (and files) to a fresh folder and starts `botgate serve` on it. */
  static async start(
    options: GatewayOptions,
    args: readonly string[] = ['serve', '--config', 'gateway.yaml'],
  ): Promise<RunningGateway> {
    const dir = tempDir()
    writeFileSync(path.join(dir, 'gateway.yaml'), options.config)
    for (const [name, content] of Object.entries(options.files ?? {}))
      writeFileSync(path.join(dir, name), content)
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: dir,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const gateway = new RunningGateway(child, dir)
    const started = await gateway
      .waitFor((line) => line.msg === 'botgate listening', 15_000)
      .catch(async (error: Error) => {
        child.kill('SIGKILL')
        throw new Error(`${error.message}\nstderr: ${gateway.stderr}\nstdout: ${gateway.stdout}`)
      })
    gateway.webhook = `http://${started.webhook as string}`
    gateway.admin = `http://${started.admin as string}`
    return gateway
  }

  /** Resolves with the first log line (past or future) that matches. */
  async waitFor(match: (line: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const line = this.lines.find(match)
      if (line) return line
      if (this.child.exitCode !== null) throw new Error(`botgate exited with ${this.child.exitCode}`)
      if (Date.now() > deadline) throw new Error('timed out waiting for a log line')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** The Prometheus text of the admin listener's /metrics. */
  async metrics(): Promise<string> {
    return (await fetch(`${this.admin}/metrics`)).text()
  }

  /** The request log line of a request id (request lines are flushed in batches; this waits). */
  requestLine(requestId: string | null): Promise<LogLine> {
    return this.waitFor((line) => line.msg === 'request' && line.request_id === requestId)
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal)
    return this.#exit
  }

  exited(): Promise<number | null> {
    return this.#exit
  }
}

/** A minimal config with one bot named `bot`; `extra` is appended at the bot's level. */
export function botConfig(options: {
  upstream: string
  secret: string
  path?: string
  policy?: string
  top?: string
  bot?: string
}): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
${options.top ?? ''}
bots:
  - name: bot
    path: ${options.path ?? '/tg/hook-0123456789abcdef'}
    secret_token: ${options.secret}
    upstream:
      url: ${options.upstream}
${options.bot ?? ''}
    policy:
${(options.policy ?? 'sources: { allow: [any] }').replace(/^/gm, '      ')}
`
}
