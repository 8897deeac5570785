/**
 * Runs a program that is not botgate (an example bot in another language) as a child process:
 * waits until it prints that it listens, collects its output, and stops it.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'

/** Whether `command` can be run here (`command --version` or the given arguments succeed). */
export function available(command: string, args: readonly string[] = ['--version']): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 })
  return result.error === undefined && result.status === 0
}

export class RunningProcess {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly #exit: Promise<number | null>

  private constructor(child: ChildProcess) {
    this.child = child
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk
    })
    this.#exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  }

  /** Starts `command` and resolves once its stdout matches `ready` (bounded by `timeoutMs`). */
  static async start(
    command: string,
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; ready?: RegExp; timeoutMs?: number } = {},
  ): Promise<RunningProcess> {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const running = new RunningProcess(child)
    try {
      await running.waitFor(() => (options.ready ?? /listening on/).test(running.stdout), options.timeoutMs)
    } catch (error) {
      child.kill('SIGKILL')
      throw new Error(`${command} ${args.join(' ')}: ${(error as Error).message}\n${running.stderr}`)
    }
    return running
  }

  /** Resolves once `condition` holds, polling every 20 ms; rejects on exit or after `timeoutMs`. */
  async waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (this.child.exitCode !== null) throw new Error(`exited with ${this.child.exitCode}`)
      if (Date.now() > deadline) throw new Error('timed out')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Resolves with the exit code once the process exits on its own. */
  exited(): Promise<number | null> {
    return this.#exit
  }

  /** Sends SIGTERM and resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.#exit
  }
}
