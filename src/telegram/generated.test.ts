import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the generator is a plain JavaScript script
import { generate, OUTPUT_DIR, SPEC_FILE, stale } from '../../scripts/gen-schema.mjs'

describe('src/telegram/generated', () => {
  it('is what npm run gen:schema writes from the vendored Bot API spec (run it if this fails)', () => {
    const files = generate() as Map<string, string>
    expect(readdirSync(OUTPUT_DIR as string).sort()).toEqual([...files.keys()].sort())
    for (const [name, content] of files) {
      expect(readFileSync(path.join(OUTPUT_DIR as string, name), 'utf8'), name).toBe(content)
    }
  })
})

describe('scripts/gen-schema.mjs --check (run by CI)', () => {
  it('finds nothing stale in the committed output', () => {
    expect(stale()).toEqual([])
  })

  it('names a generated file that differs, one that is missing, and one that should not be there', () => {
    // What another spec could generate: validators.ts differs, a new file is not written yet, and
    // update-types.ts is no longer generated.
    const files = new Map(generate() as Map<string, string>)
    files.set('validators.ts', '// another spec\n')
    files.set('new-types.ts', '')
    files.delete('update-types.ts')
    expect(stale(files)).toEqual(['new-types.ts', 'update-types.ts', 'validators.ts'])
  })
})

/** `Bot API 10.1` -> [10, 1]. */
function version(file: string): number[] {
  const text = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  const match = /^Bot API (\d+)\.(\d+)$/.exec(text)
  if (match === null) throw new Error(`${file}: unexpected version ${text}`)
  return [Number(match[1]), Number(match[2])]
}

describe('vendor/telegram-bot-api/api.json', () => {
  // The workspace's reference copy (../shared/telegram) is the newest machine-readable spec that
  // could be fetched; the vendored one must not fall behind it. Outside the workspace it is absent.
  const reference = path.resolve(import.meta.dirname, '../../../shared/telegram/api.json')

  it.runIf(existsSync(reference))('is not older than the reference copy of the spec', () => {
    const [major = 0, minor = 0] = version(SPEC_FILE as string)
    const [refMajor = 0, refMinor = 0] = version(reference)
    expect(major * 1000 + minor).toBeGreaterThanOrEqual(refMajor * 1000 + refMinor)
  })
})
