/**
 * The lock file holds what `npm ci` needs on every platform. npm 11, updating a lock in place on
 * one machine, can record only that machine's optional packages (Biome's, Rolldown's native
 * binaries); `npm ci` elsewhere then stops with "package.json and package-lock.json are not in
 * sync". CI runs `npm ci` itself, so a lock out of step with package.json fails there; this test
 * catches the platform gap on any machine, before a build on another platform meets it.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(import.meta.dirname, '..')

interface LockedPackage {
  version?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
}

const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
  lockfileVersion: number
  packages: Record<string, LockedPackage>
}
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as LockedPackage

/** Where npm would resolve `name` from the package installed at `from`: nearest node_modules up. */
function resolves(from: string, name: string): boolean {
  let dir = from
  for (;;) {
    if (lock.packages[`${dir === '' ? '' : `${dir}/`}node_modules/${name}`] !== undefined) return true
    if (dir === '') return false
    const up = dir.lastIndexOf('/node_modules/')
    dir = up < 0 ? '' : dir.slice(0, up)
  }
}

describe('package-lock.json', () => {
  it('is a version 3 lock whose root matches package.json', () => {
    expect(lock.lockfileVersion).toBe(3)
    const root = lock.packages[''] as LockedPackage
    expect(root.dependencies).toEqual(manifest.dependencies)
    expect(root.devDependencies).toEqual(manifest.devDependencies)
  })

  it("holds every locked package's optional dependencies, for every platform", () => {
    const missing: string[] = []
    for (const [at, pkg] of Object.entries(lock.packages)) {
      for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
        if (!resolves(at, name)) missing.push(`${at || '(root)'} -> ${name}`)
      }
    }
    expect(missing).toEqual([])
  })
})
