import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the generator is a plain JavaScript script
import { generate, OUTPUT_DIR } from '../../scripts/gen-schema.mjs'

describe('src/telegram/generated', () => {
  it('is what npm run gen:schema writes from the vendored Bot API spec (run it if this fails)', () => {
    const files = generate() as Map<string, string>
    expect(readdirSync(OUTPUT_DIR as string).sort()).toEqual([...files.keys()].sort())
    for (const [name, content] of files) {
      expect(readFileSync(path.join(OUTPUT_DIR as string, name), 'utf8'), name).toBe(content)
    }
  })
})
