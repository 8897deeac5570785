/**
 * The README, the guides in docs/, the examples' and deploy/'s READMEs link to files and sections
 * that exist (the README is short and points into docs/ for the depth, so its links must hold):
 * every relative Markdown link resolves to a file or folder of the repository, and every `#anchor`
 * into a Markdown file names one of its headings (GitHub's slugs).
 */

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers/gateway.js'

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const file = path.join(dir, entry)
    if (entry === 'node_modules') return []
    if (statSync(file).isDirectory()) return markdownFiles(file)
    return entry.endsWith('.md') ? [file] : []
  })
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const slugs = new Set<string>()
  for (const [, heading] of markdown.matchAll(/^#{1,6} (.+)$/gm))
    slugs.add(
      (heading as string)
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    )
  return slugs
}

const FILES = [
  path.join(ROOT, 'README.md'),
  ...markdownFiles(path.join(ROOT, 'docs')),
  ...markdownFiles(path.join(ROOT, 'examples')),
  ...markdownFiles(path.join(ROOT, 'deploy')),
]

describe('links in the documentation', () => {
  it.each(FILES.map((file) => [path.relative(ROOT, file), file]))('%s', (_name, file) => {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue // http(s), mailto
      const [relative, anchor] = (target as string).split('#')
      const resolved = relative ? path.resolve(path.dirname(file), relative) : file
      expect(existsSync(resolved), `${target}`).toBe(true)
      if (anchor && resolved.endsWith('.md'))
        expect(anchors(readFileSync(resolved, 'utf8')), target).toContain(anchor)
    }
  })
})
