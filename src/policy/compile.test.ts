import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Blocks } from '../blocks/index.js'
import { type GatewayConfig, loadConfig } from '../config/load.js'
import { UpstreamPools } from '../forward/upstream.js'
import type { Logger } from '../observe/logger.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { MemoryStore } from '../store/memory.js'
import { compileBot, pipelineKey } from './compile.js'

const SECRET = 'A'.repeat(40)
const dir = mkdtempSync(path.join(tmpdir(), 'botgate-compile-'))

function load(bots: string, policy = 'sources: { allow: [any] }\n'): GatewayConfig {
  writeFileSync(path.join(dir, 'policy.yaml'), policy)
  const file = path.join(dir, 'gateway.yaml')
  writeFileSync(file, `bots:\n${bots}`)
  return loadConfig(file)
}

const bot = (name: string, timeout = '10s') =>
  `  - name: ${name}
    path: /tg/${name}-0123456789abcdef
    secret_token: ${SECRET}
    upstream: { url: "http://127.0.0.1:8081/", timeout: ${timeout} }
    policy: policy.yaml
`

describe('pipelineKey', () => {
  it('is the same for the same bot loaded twice, and differs when anything of it changes', () => {
    const [a, b] = load(bot('a') + bot('b')).bots
    const [again] = load(bot('a') + bot('b')).bots
    const [slower] = load(bot('a', '20s')).bots
    const [otherPolicy] = load(bot('a'), 'sources: { allow: [telegram] }\n').bots
    if (!a || !b || !again || !slower || !otherPolicy) throw new Error('bots missing')
    expect(pipelineKey(again)).toBe(pipelineKey(a))
    expect(pipelineKey(b)).not.toBe(pipelineKey(a))
    expect(pipelineKey(slower)).not.toBe(pipelineKey(a))
    expect(pipelineKey(otherPolicy)).not.toBe(pipelineKey(a))
    // A hash: the secret is not readable in it.
    expect(pipelineKey(a)).not.toContain(SECRET)
  })
})

describe('compileBot', () => {
  it('shares what it compiles from the policy alone among the bots of one policy file', () => {
    const config = load(bot('a') + bot('b'))
    const [a, b] = config.bots
    if (!a || !b) throw new Error('bots missing')
    expect(a.policy).toBe(b.policy) // the loader reads the file once
    const deps = {
      metrics: new GatewayMetrics('test'),
      store: new MemoryStore({ maxEntries: 100 }),
      blocks: new Blocks(new MemoryStore({ maxEntries: 100 })),
      logger: { warn: () => undefined } as unknown as Logger,
      pools: new UpstreamPools(),
      queues: undefined,
    }
    const first = compileBot(a, deps)
    const second = compileBot(b, deps)
    expect(second.requestChecks[0]).toBe(first.requestChecks[0]) // sources
    expect(second.body).toBe(first.body)
    expect(second.upstream).not.toBe(first.upstream)
    expect(second.upstream.poolKey).toBe(first.upstream.poolKey)
  })
})
