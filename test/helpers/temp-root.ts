/**
 * Vitest's global setup: every temporary file of a test run (configs, logs, the private Redis
 * servers' folders, whatever the CLI under test writes) goes under one folder of its own, removed
 * when the run ends. Test files, and the processes they start, inherit it as TMPDIR, which
 * `os.tmpdir()` reads.
 */

import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

export default function setup(): () => void {
  const root = mkdtempSync(path.join(tmpdir(), 'botgate-tests-'))
  // Traversable by other users, as /tmp is: the container test runs botgate as an unprivileged
  // user on a config in a folder under it (each test's own folders stay 0700 unless it opens them).
  chmodSync(root, 0o755)
  process.env.TMPDIR = root
  return () => rmSync(root, { recursive: true, force: true })
}
