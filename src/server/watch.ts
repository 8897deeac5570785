/**
 * @module
 * Watches the config, policy and secret files and calls back when their content changes.
 *
 * Folders are watched rather than files: editors save by writing a new file and renaming it over
 * the old one, and Kubernetes updates ConfigMaps and Secrets by swapping a symlinked folder; both
 * replace the inode a file watch would be attached to. Any event in a watched folder schedules a
 * debounced comparison of the files' contents, so only real changes trigger a reload.
 */

import { createHash } from 'node:crypto'
import { type FSWatcher, readFileSync, watch } from 'node:fs'
import path from 'node:path'

const DEBOUNCE_MS = 250

function fingerprint(files: readonly string[]): string {
  const hash = createHash('sha256')
  for (const file of files) {
    hash.update(file)
    try {
      hash.update(readFileSync(file))
    } catch {
      hash.update('\u0000missing')
    }
  }
  return hash.digest('hex')
}

export class FileWatcher {
  readonly #watchers: FSWatcher[] = []
  readonly #onChange: () => void
  #files: readonly string[] = []
  #fingerprint = ''
  #timer: NodeJS.Timeout | undefined

  constructor(onChange: () => void) {
    this.#onChange = onChange
  }

  /** Watches exactly these files from now on (the list changes when a reload adds a policy file). */
  watch(files: readonly string[]): void {
    this.close()
    this.#files = files
    this.#fingerprint = fingerprint(files)
    for (const folder of new Set(files.map((file) => path.dirname(file)))) {
      try {
        const watcher = watch(folder, { persistent: false }, () => this.#schedule())
        watcher.on('error', () => undefined)
        this.#watchers.push(watcher)
      } catch {
        // A folder that cannot be watched (gone, no permission) still reloads on SIGHUP.
      }
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      const current = fingerprint(this.#files)
      if (current === this.#fingerprint) return
      this.#fingerprint = current
      this.#onChange()
    }, DEBOUNCE_MS)
    this.#timer.unref()
  }

  close(): void {
    clearTimeout(this.#timer)
    for (const watcher of this.#watchers.splice(0)) watcher.close()
  }
}
