/**
 * @module
 * The worker thread of {@link ../config/off-thread.ts}: loads one config and posts it back, or
 * the problems that refuse it. Never a secret in an error: the loader's messages quote none.
 */

import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { ConfigError } from './errors.js'
import { loadConfig } from './load.js'
import { postConfig, type WorkerInput, type WorkerResult } from './off-thread.js'

const input = workerData as WorkerInput
const done = (result: WorkerResult) => parentPort?.postMessage(result)

// On a busy machine this thread would take a core from the one that answers requests: it runs
// at a lower priority. On Linux, setpriority() with pid 0 applies to the calling thread only.
try {
  setPriority(0, 10)
} catch {
  // not permitted here: the load runs at the usual priority
}
try {
  postConfig(loadConfig(input.file, { env: input.env }), input.port, done)
} catch (error) {
  done(
    error instanceof ConfigError
      ? { ok: false, issues: error.issues }
      : { ok: false, message: (error as Error).message },
  )
}
