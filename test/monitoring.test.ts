/**
 * deploy/monitoring against what botgate really exports: the real CLI, with the Redis store and
 * a rate limit, serves a few requests of every outcome (forwarded, dropped, rejected, failed, a
 * shadow verdict, a limited one) and, through its egress to a fake Bot API, Bot API calls of
 * every kind (sent after Telegram's 429, a guarded method refused, a wrong credential, a token
 * Telegram rejects, a group burst that pacing holds and then refuses), its /metrics is scraped, and every PromQL expression of the alert rules and the Grafana dashboard is parsed
 * with Prometheus' own grammar (lezer-promql) and checked: it is valid PromQL, each metric it
 * selects is a series botgate exports (histograms as _bucket, _sum, _count), each label it matches
 * or groups by is one of that metric's labels (or a target label Prometheus adds), and each
 * reason, outcome or result value it names exists. And the other way round: every metric botgate
 * exports appears on the dashboard.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parser } from '@prometheus-io/lezer-promql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { GUARDED_METHODS } from '../src/checks/outbound/index.js'
import { REASONS } from '../src/pipeline/verdict.js'
import { FakeBotApi, tooManyRequests } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { DEPLOY } from './helpers/deploy.js'
import { RunningGateway, secret } from './helpers/gateway.js'
import { RedisServer, redisServerAvailable } from './helpers/redis.js'
import { TestUpstream } from './helpers/upstream.js'

/** Labels Prometheus attaches to every scraped series (the target's). */
const TARGET_LABELS = new Set(['instance', 'job'])

interface Selector {
  readonly metric: string
  readonly matchers: { label: string; op: string; value: string }[]
}

interface Parsed {
  readonly expr: string
  readonly errors: string[]
  readonly selectors: Selector[]
  /** Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_left (...)`. */
  readonly grouping: string[]
}

/** Parses one PromQL expression with Prometheus' grammar. */
function parsePromql(expr: string): Parsed {
  const tree = parser.parse(expr)
  const errors: string[] = []
  const selectors: Selector[] = []
  const grouping: string[] = []
  const text = (node: { from: number; to: number }) => expr.slice(node.from, node.to)
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) errors.push(`syntax error at ${ref.from}: ${expr.slice(ref.from, ref.from + 30)}`)
      if (ref.name === 'VectorSelector') {
        const node = ref.node
        const identifier = node.getChild('Identifier')
        const matchers: Selector['matchers'] = []
        for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
          const label = matcher.getChild('LabelName')
          const value = matcher.getChild('StringLiteral')
          const op = matcher.getChild('MatchOp')
          if (label && value && op)
            matchers.push({ label: text(label), op: text(op), value: JSON.parse(text(value)) as string })
        }
        if (identifier) selectors.push({ metric: text(identifier), matchers })
        else errors.push(`a selector without a metric name: ${text(node)}`)
      }
      if (ref.name === 'GroupingLabels')
        for (const label of ref.node.getChildren('LabelName')) grouping.push(text(label))
    },
  })
  return { expr, errors, selectors, grouping }
}

/** Grafana's variables, replaced by values PromQL accepts (they are substituted before querying). */
function withoutGrafanaVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '6h')
}

interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

const rules = (
  parseYaml(readFileSync(path.join(DEPLOY, 'monitoring/alerts.yaml'), 'utf8')) as {
    groups: { name: string; rules: Rule[] }[]
  }
).groups.flatMap((group) => group.rules)

interface Panel {
  type: string
  title: string
  targets?: { expr: string }[]
  panels?: Panel[]
}
const dashboard = JSON.parse(
  readFileSync(path.join(DEPLOY, 'monitoring/grafana-dashboard.json'), 'utf8'),
) as {
  panels: Panel[]
  templating: { list: { name: string; query: unknown }[] }
}
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])])
const dashboardExprs = [
  ...panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ where: panel.title, expr: target.expr })),
  ),
  // label_values(<selector>, label): the selector is PromQL.
  ...dashboard.templating.list.flatMap((variable) => {
    const query = (variable.query as { query?: string } | undefined)?.query
    const selector = query && /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1]
    return selector ? [{ where: `variable ${variable.name}`, expr: selector }] : []
  }),
].map(({ where, expr }) => ({ where, parsed: parsePromql(withoutGrafanaVariables(expr)) }))
const ruleExprs = rules.map((rule) => ({
  where: rule.alert ?? rule.record ?? '?',
  parsed: parsePromql(rule.expr),
}))

/** What one /metrics scrape says: sample names, each with its label names and values. */
interface Scrape {
  readonly labels: Map<string, Map<string, Set<string>>>
}

function parseScrape(text: string): Scrape {
  const labels = new Map<string, Map<string, Set<string>>>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const name = match[1] as string
    const byLabel = labels.get(name) ?? new Map<string, Set<string>>()
    labels.set(name, byLabel)
    for (const [, label, value] of (match[2] ?? '').matchAll(
      /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g,
    )) {
      const values = byLabel.get(label as string) ?? new Set<string>()
      values.add(value as string)
      byLabel.set(label as string, values)
    }
  }
  return { labels }
}

let scrape: Scrape
let gateway: RunningGateway
let upstream: TestUpstream
let failing: TestUpstream
let redis: RedisServer
let api: FakeBotApi
const HAS_REDIS = redisServerAvailable()
const TOKEN = '8080:AAF-monitored-bot-token-0123456789abcdef'
const CREDENTIAL = '8080:monitored-bot-credential-ABCDEFGHIJKLMN'
const REVOKED_CREDENTIAL = '8081:revoked-bot-credential-ABCDEFGHIJKLMNO'

beforeAll(async () => {
  if (!HAS_REDIS) return
  redis = await RedisServer.start()
  upstream = await TestUpstream.start()
  failing = await TestUpstream.start()
  failing.respond = (_request, response) => {
    response.writeHead(500)
    response.end()
  }
  // Telegram: knows shop's token, not broken's (as if it had been revoked).
  api = await FakeBotApi.start([TOKEN])
  const SECRET = secret()
  const bot = (name: string, url: string, policy: string, egress = '') => `  - name: ${name}
    path: /tg/${name}-0123456789abcdef0123
    secret_token: ${SECRET}
    upstream: { url: ${url} }
    policy: ${policy}
${egress}`
  const egressOf = (token: string, credential: string) => `    token: "${token}"
    egress: { credential: "${credential}" }
`
  gateway = await RunningGateway.start({
    config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
store: { type: redis, url: "redis://127.0.0.1:${redis.port}", on_error: local }
egress:
  listen: 127.0.0.1:0
  api_base: "${api.url}"
  pacing: { group_chat: { rate: 1/s, burst: 1 }, max_wait: 2s }
bots:
${bot('shop', upstream.url, '{ sources: { allow: [any] }, updates: { allow: [message] }, limits: [{ name: per-chat, key: chat, rate: 1/min, burst: 1 }] }', egressOf(TOKEN, CREDENTIAL))}${bot('broken', failing.url, '{ sources: { allow: [any] } }', egressOf('8081:AAF-revoked-bot-token-0123456789abcdefg', REVOKED_CREDENTIAL))}${bot('shadowed', upstream.url, '{ mode: shadow, sources: { allow: [any] }, updates: { allow: [callback_query] } }')}${bot('telegram-only', upstream.url, '{ sources: { allow: [telegram] } }')}  - name: queued
    path: /tg/queued-0123456789abcdef0123
    secret_token: ${SECRET}
    upstream: { url: ${upstream.url}, delivery: queued, queue: { lease: 1s, poll: 50ms } }
    policy: { sources: { allow: [any] } }
`,
  })
  const send = (name: string, body: Record<string, unknown>, headers = telegramHeaders(SECRET)) =>
    post(`${gateway.webhook}/tg/${name}-0123456789abcdef0123`, JSON.stringify(body), headers)
  const statuses = [
    (await send('shop', messageUpdate())).status, // forwarded
    (await send('shop', messageUpdate())).status, // dropped: rate_limited (the same chat)
    (await send('shop', { update_id: 5, poll: { id: '1' } })).status, // dropped: invalid update / type
    (await send('shop', messageUpdate(), telegramHeaders(secret()))).status, // rejected: bad_secret
    (await send('telegram-only', messageUpdate())).status, // rejected: ip_not_allowed
    (await send('broken', messageUpdate())).status, // failed: upstream_error
    (await send('shadowed', messageUpdate())).status, // forwarded, with a shadow verdict
    (await post(`${gateway.webhook}/nowhere`, '{}', telegramHeaders(SECRET))).status, // unknown_route
  ]
  expect(statuses).toEqual([200, 200, 200, 401, 403, 502, 200, 404])
  // Queued: taken in, then delivered from the queue; the holder's gauges follow its next tick.
  expect((await send('queued', messageUpdate())).status).toBe(200)
  await gateway.waitFor((line) => line.msg === 'queued update delivered', 5000)
  for (let round = 0; round < 100; round++) {
    if ((await (await fetch(`${gateway.admin}/metrics`)).text()).includes('botgate_queue_dead_letters{'))
      break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const listening = await gateway.waitFor((line) => line.msg === 'botgate listening')
  const call = async (credential: string, method: string, params?: Record<string, unknown>) =>
    (
      await fetch(`http://${listening.egress as string}/bot${credential}/${method}`, {
        method: 'POST',
        ...(params && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) }),
      })
    ).status
  api.failNext('sendMessage', tooManyRequests(1))
  const egressStatuses = [
    await call(CREDENTIAL, 'sendMessage', { chat_id: 42, text: 'after a 429' }), // retried: 200
    await call(CREDENTIAL, 'deleteWebhook'), // a guarded method: 403 by botgate
    await call('1:no-bot-has-this-credential-0000000000000', 'getMe'), // 401 by botgate
    await call(REVOKED_CREDENTIAL, 'getMe'), // 401 by Telegram
  ]
  expect(egressStatuses).toEqual([200, 403, 401, 401])
  // One group, one message a second, at most 2 s of waiting: three go (two after waiting), the
  // rest are refused by pacing.
  const burst = await Promise.all(
    Array.from({ length: 5 }, (_, i) => call(CREDENTIAL, 'sendMessage', { chat_id: -100123, text: `g${i}` })),
  )
  expect(burst.filter((status) => status === 200).length).toBeGreaterThanOrEqual(2)
  expect(burst).toContain(429)
  const metrics = await fetch(`${gateway.admin}/metrics`)
  scrape = parseScrape(await metrics.text())
})

afterAll(async () => {
  if (!HAS_REDIS) return
  expect(await gateway.stop()).toBe(0)
  await upstream.close()
  await failing.close()
  await api.close()
  await redis.kill()
})

describe.skipIf(!HAS_REDIS)('deploy/monitoring/alerts.yaml', () => {
  it('is a rule file of named, documented alerts with a severity', () => {
    expect(rules.length).toBeGreaterThan(5)
    const names = rules.map((rule) => rule.alert)
    expect(new Set(names).size).toBe(names.length)
    for (const rule of rules) {
      expect(rule.alert, rule.expr).toMatch(/^Botgate[A-Za-z]+$/)
      expect(['critical', 'warning']).toContain(rule.labels?.severity)
      expect(rule.annotations?.summary).toBeTruthy()
      expect(rule.annotations?.description).toBeTruthy()
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/)
    }
  })

  it('is each listed in docs/monitoring.md', () => {
    const docs = readFileSync(path.join(DEPLOY, '../docs/monitoring.md'), 'utf8')
    for (const rule of rules) expect(docs).toContain(`| \`${rule.alert}\` | ${rule.labels?.severity} |`)
  })

  it('covers what an operator must hear about', () => {
    const text = rules.map((rule) => rule.expr).join('\n')
    for (const needed of [
      'reason="bad_secret"',
      'reason="ip_not_allowed"',
      'upstream_unreachable',
      'upstream_timeout',
      'botgate_config_reloads_total{result="failure"}',
      'botgate_upstream_duration_seconds_bucket',
      'botgate_request_duration_seconds_bucket',
      'absent(botgate_build_info)',
      'botgate_store_up',
      'botgate_store_errors_total',
      'botgate_store_fallbacks_total',
      'botgate_egress_calls_total{bot!="", status="401"}',
      'botgate_egress_calls_total{bot="", status="401"}',
      'botgate_egress_telegram_429_total',
      'botgate_egress_refused_total',
      'botgate_egress_queue_wait_seconds_bucket',
    ])
      expect(text).toContain(needed)
    // Every method that would take the bot's updates away is watched, by its metric label.
    const guarded = rules.find((rule) => rule.alert === 'BotgateEgressGuardedMethodRefused')?.expr ?? ''
    const watched = /method=~"([^"]+)"/.exec(guarded)?.[1]?.split('|')
    expect(watched?.sort()).toEqual([...GUARDED_METHODS].sort())
  })
})

describe.skipIf(!HAS_REDIS).each([
  ['the alert rules', ruleExprs],
  ['the Grafana dashboard', dashboardExprs],
])('%s against a real /metrics scrape', (_name, exprs) => {
  it('are valid PromQL', () => {
    expect(exprs.length).toBeGreaterThan(5)
    for (const { where, parsed } of exprs) {
      expect(parsed.errors, `${where}: ${parsed.expr}`).toEqual([])
      expect(parsed.selectors.length, where).toBeGreaterThan(0)
    }
  })

  it('select only metrics botgate exports, by labels they have, with values that exist', () => {
    for (const { where, parsed } of exprs) {
      const labelsInExpr = new Set<string>(TARGET_LABELS)
      for (const { metric, matchers } of parsed.selectors) {
        const labels = scrape.labels.get(metric)
        expect(labels, `${where}: ${metric} is not in botgate's /metrics`).toBeDefined()
        for (const label of labels?.keys() ?? []) labelsInExpr.add(label)
        for (const { label, op, value } of matchers) {
          expect(
            TARGET_LABELS.has(label) || labels?.has(label),
            `${where}: ${metric} has no label ${label}`,
          ).toBe(true)
          if (!['reason', 'outcome', 'result'].includes(label) || value.startsWith('$')) continue
          // Literal values, or a plain alternation of them: each must be a value botgate uses.
          expect(op === '=' || op === '=~', `${where}: ${label}${op}`).toBe(true)
          const known =
            label === 'reason' ? new Set<string>(REASONS) : (labels?.get(label) ?? new Set<string>())
          for (const alternative of value.split('|'))
            expect(known.has(alternative), `${where}: ${label}="${alternative}" is never exported`).toBe(true)
        }
      }
      for (const label of parsed.grouping)
        expect(labelsInExpr.has(label), `${where}: groups by ${label}, which its metrics lack`).toBe(true)
    }
  })
})

describe.skipIf(!HAS_REDIS)('the dashboard', () => {
  it('shows every metric botgate exports', () => {
    const shown = new Set(dashboardExprs.flatMap(({ parsed }) => parsed.selectors.map((s) => s.metric)))
    const families = new Set(
      [...scrape.labels.keys()].map((name) => name.replace(/_(bucket|sum|count)$/, '')).filter(Boolean),
    )
    for (const family of families) {
      const series = [...scrape.labels.keys()].filter((name) => name.startsWith(family))
      expect(
        series.some((name) => shown.has(name)),
        `${family} is on no panel`,
      ).toBe(true)
    }
  })

  it('has the panels the issue asks for', () => {
    const titles = panels.map((panel) => panel.title)
    for (const title of [
      'Requests by outcome',
      'Requests by reason',
      'Requests by bot',
      'Answer time to Telegram',
      "The bot's answer time",
      'Upstream failures by reason',
      'Config reloads',
      'In flight by bot',
      'Store up',
      'Store errors by operation',
      'Store fallbacks',
      'Rate limits denied',
      'Egress calls by method',
      'Egress calls by status',
      'Egress queue depth',
      'Egress queue wait',
      'Telegram 429s and retries',
      'Egress refused by pacing',
      'Token rejected, wrong credentials',
      'Guarded methods refused',
      'Webhook answers withheld',
    ])
      expect(titles).toContain(title)
  })
})
