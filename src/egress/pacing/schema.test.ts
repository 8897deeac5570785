/**
 * The pacing section: defaults are Telegram's limits, rates and durations compile to numbers,
 * bad values are refused by the schema; the list of message methods follows its rule over the
 * Bot API spec; chat_id tells private chats from groups.
 */

import { readFileSync } from 'node:fs'
import { Value } from '@sinclair/typebox/value'
import { describe, expect, it } from 'vitest'
import { Registry } from '../../observe/prometheus.js'
import { chatTarget, MESSAGE_METHODS } from './methods.js'
import { pacingMetrics } from './metrics.js'
import { compilePacing, pacingSchema } from './schema.js'

describe('pacing config', () => {
  it("defaults to Telegram's flood limits", () => {
    expect(compilePacing(undefined)).toEqual({
      enabled: true,
      global: { count: 30, periodMs: 1000, burst: 1 },
      privateChat: { count: 1, periodMs: 1000, burst: 3 },
      groupChat: { count: 20, periodMs: 60_000, burst: 1 },
      maxQueue: 1000,
      maxWaitMs: 30_000,
      maxRetries: 3,
    })
  })

  it('compiles rates, bursts and durations', () => {
    const raw = {
      global: '10/s',
      private_chat: { rate: '2/s', burst: 5 },
      group_chat: { rate: '20/min' },
      max_wait: '2s',
    }
    expect(Value.Check(pacingSchema, raw)).toBe(true)
    expect(compilePacing(raw)).toMatchObject({
      global: { count: 10, periodMs: 1000, burst: 1 },
      privateChat: { count: 2, periodMs: 1000, burst: 5 },
      groupChat: { count: 20, periodMs: 60_000, burst: 1 },
      maxWaitMs: 2000,
    })
  })

  it('refuses bad values and unknown keys', () => {
    for (const bad of [
      { global: '30 per s' },
      { group_chat: { rate: '20/min', burst: 0 } },
      { max_wait: '5' },
      { max_retries: 11 },
      { speed: 1 },
    ]) {
      expect(Value.Check(pacingSchema, bad), JSON.stringify(bad)).toBe(false)
    }
  })
})

describe('message methods', () => {
  it('are the send/copy/forward methods that return the sent message', () => {
    const api = JSON.parse(readFileSync('/work/shared/telegram/api.json', 'utf8')) as {
      methods: Record<string, { name: string; returns?: string[] }>
    }
    const rule = Object.values(api.methods)
      .filter((m) => /^(send|copy|forward)/.test(m.name))
      .filter((m) =>
        (m.returns ?? []).some((r) => /^(Message|MessageId|Array of (Message|MessageId))$/.test(r)),
      )
      .map((m) => m.name)
    expect([...MESSAGE_METHODS].sort()).toEqual(rule.sort())
    expect(MESSAGE_METHODS.has('sendChatAction')).toBe(false)
  })
})

describe('chatTarget', () => {
  it('tells private chats from groups and channels', () => {
    expect(chatTarget(42)).toEqual({ id: '42', kind: 'private' })
    expect(chatTarget('42')).toEqual({ id: '42', kind: 'private' })
    expect(chatTarget(-1001234)).toEqual({ id: '-1001234', kind: 'group' })
    expect(chatTarget('-1001234')).toEqual({ id: '-1001234', kind: 'group' })
    expect(chatTarget('@MyChannel')).toEqual({ id: '@mychannel', kind: 'group' })
    for (const none of [undefined, 0, '0', 1.5, 'abc', '@', {}, Number.MAX_VALUE])
      expect(chatTarget(none)).toBeUndefined()
  })
})

describe('pacing metrics', () => {
  it('render on the registry', () => {
    const registry = new Registry()
    const metrics = pacingMetrics(registry)
    metrics.queueDepth('b', 3)
    metrics.sent('b', 250)
    metrics.tooMany('b')
    metrics.retried('b')
    metrics.refused('b', 'queue_full')
    const text = registry.render()
    expect(text).toContain('botgate_egress_queue_depth{bot="b"} 3')
    expect(text).toContain('botgate_egress_queue_wait_seconds_count{bot="b"} 1')
    expect(text).toContain('botgate_egress_telegram_429_total{bot="b"} 1')
    expect(text).toContain('botgate_egress_retries_total{bot="b"} 1')
    expect(text).toContain('botgate_egress_refused_total{bot="b",reason="queue_full"} 1')
  })
})
