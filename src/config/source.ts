/**
 * @module
 * A YAML file kept as a document, so any key path can be traced back to its line and column, and
 * environment references (./env.ts) can be replaced inside values while positions stay true.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from 'yaml'
import { expandReferences, missingVariable } from './env.js'
import type { ConfigIssue } from './errors.js'
import { formatPath } from './errors.js'

/** Re-exported for the JSON Schema command (`botgate schema`), which imports it from here. */
export { REFERENCE_PATTERN } from './env.js'

export type Segment = string | number

/** The file name as a user would type it: relative to the working directory when it is inside it. */
export function displayName(file: string): string {
  const relative = path.relative(process.cwd(), file)
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file
}

export class YamlSource {
  readonly file: string
  readonly name: string
  readonly #doc: ReturnType<typeof parseDocument>
  readonly #lines = new LineCounter()
  readonly issues: ConfigIssue[] = []

  private constructor(file: string, text: string) {
    this.file = file
    this.name = displayName(file)
    this.#doc = parseDocument(text, {
      lineCounter: this.#lines,
      uniqueKeys: true,
      prettyErrors: false,
      strict: true,
    })
    for (const error of this.#doc.errors) {
      const { line, col } = this.#lines.linePos(error.pos[0])
      this.issues.push({
        file: this.name,
        line,
        col,
        path: '',
        message: `YAML: ${error.message.split('\n')[0]}`,
      })
    }
  }

  /** Reads and parses a file. Throws the file system's error when it cannot be read: the caller knows where to report it. */
  static read(file: string): YamlSource {
    return new YamlSource(file, readFileSync(file, 'utf8'))
  }

  /** Replaces environment references in every value (never in keys), recording unset names as issues. */
  substitute(env: NodeJS.ProcessEnv): void {
    visit(this.#doc, {
      Scalar: (key, node, ancestors) => {
        if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
        const { value, missing } = expandReferences(node.value, env)
        node.value = value
        for (const name of missing) this.issue(pathOf(ancestors, node), missingVariable(name))
      },
    })
  }

  /** The plain value of the document (or undefined for an empty file). */
  value(): unknown {
    return this.#doc.toJS({ maxAliasCount: 100 })
  }

  /** Line and column of the value at `segments`, of its key (`at: 'key'`), or of the nearest existing ancestor. */
  position(segments: readonly Segment[], at: 'key' | 'value' = 'value'): { line: number; col: number } {
    let node: unknown = this.#doc.contents
    let offset = (node as Node | null)?.range?.[0] ?? 0
    for (const [index, segment] of segments.entries()) {
      const last = index === segments.length - 1
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && item.key.value === segment)
        if (!pair) break
        const keyNode = pair.key as Node
        offset =
          last && at === 'key'
            ? (keyNode.range?.[0] ?? offset)
            : ((pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset)
        node = pair.value
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment] as Node | undefined
        if (!item) break
        offset = item.range?.[0] ?? offset
        node = item
      } else {
        break
      }
    }
    return this.#lines.linePos(offset)
  }

  /** Records an issue at a key path (from this document's root). */
  issue(segments: readonly Segment[], message: string, at: 'key' | 'value' = 'value'): void {
    const { line, col } = this.position(segments, at)
    this.issues.push({ file: this.name, line, col, path: formatPath(segments), message })
  }
}

function pathOf(ancestors: readonly unknown[], node: unknown): Segment[] {
  const segments: Segment[] = []
  const chain = [...ancestors, node]
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i]
    const child = chain[i + 1]
    if (isSeq(parent)) segments.push(parent.items.indexOf(child as never))
    else if (isMap(parent)) {
      // visit() passes Pair nodes between a map and its value
    } else if (child !== undefined && typeof parent === 'object' && parent !== null && 'key' in parent) {
      const key = (parent as { key: unknown }).key
      segments.push(isScalar(key) ? String(key.value) : String(key))
    }
  }
  return segments
}
