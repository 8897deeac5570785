/**
 * The shape of src/: no module imports itself back through others. A cycle makes the load order
 * decide what a module sees at its top level, and hides which unit depends on which; the folders
 * are meant to read in the order a request travels (STYLE.md).
 */

import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = path.resolve(import.meta.dirname, '../src')

/** Every module of src/ (tests and generated code included), by path relative to src/. */
function modules(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) return modules(file)
    return entry.name.endsWith('.ts') ? [path.relative(SRC, file)] : []
  })
}

/** Relative imports and re-exports, type-only ones included: those are dependencies too. */
const IMPORT = /^\s*(?:import|export)\s[^'"]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms

function imports(module: string): string[] {
  const text = readFileSync(path.join(SRC, module), 'utf8')
  return [...text.matchAll(IMPORT)].map((match) =>
    path.join(path.dirname(module), (match[1] as string).replace(/\.js$/, '.ts')),
  )
}

/** The cycles of the graph, each once, as found by a depth-first walk. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next])
      else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (!state.has(node)) visit(node)
  return found
}

describe('src/', () => {
  const graph = new Map(modules().map((module) => [module, imports(module)]))

  it('has modules that import one another (the walk sees the graph)', () => {
    expect(graph.size).toBeGreaterThan(50)
    expect(graph.get('main.ts')).toContain('cli/index.ts')
  })

  it('has no import cycles', () => {
    expect(cycles(graph).map((cycle) => cycle.join(' -> '))).toEqual([])
  })
})
