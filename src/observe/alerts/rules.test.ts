import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../config/errors.js'
import { AlertCounts, type CountSnapshot } from './counts.js'
import { AlertRules, type RuleSettings, safeDetail, safeKeyPath } from './rules.js'

const MINUTE = 60_000
const SETTINGS: RuleSettings = {
  intervalMs: MINUTE,
  thresholds: {
    badSecret: 5,
    ipNotAllowed: 10,
    upstreamFailures: 3,
    bans: 2,
    egressTokenRejected: 1,
    egressFlood: 3,
    deadLetters: 1,
  },
  storeOutage: true,
  reloadRefused: true,
  instance: 'gw-1',
}

function snapshot(
  fields: Partial<Omit<CountSnapshot, 'upstream'>> & { upstream?: Partial<CountSnapshot['upstream']> },
) {
  return {
    badSecret: fields.badSecret ?? 0,
    ipNotAllowed: fields.ipNotAllowed ?? 0,
    forwarded: fields.forwarded ?? 0,
    upstream: {
      upstream_unreachable: 0,
      upstream_timeout: 0,
      upstream_error: 0,
      upstream_busy: 0,
      ...fields.upstream,
    },
    bans: fields.bans ?? 0,
    egressRejected: fields.egressRejected ?? 0,
    egressFlood: fields.egressFlood ?? 0,
    deadLetters: fields.deadLetters ?? 0,
  }
}

describe('AlertCounts', () => {
  it('counts the reasons alerts read, ignores the others, and drains to zero', () => {
    const counts = new AlertCounts()
    for (const reason of [
      'bad_secret',
      'bad_secret',
      'ip_not_allowed',
      'forwarded',
      'upstream_timeout',
    ] as const)
      counts.count(reason)
    counts.count('unknown_route')
    counts.count('duplicate_update')
    expect(counts.drain()).toEqual(
      snapshot({ badSecret: 2, ipNotAllowed: 1, forwarded: 1, upstream: { upstream_timeout: 1 } }),
    )
    expect(counts.drain()).toEqual(snapshot({}))
  })
})

describe('counted alerts', () => {
  it("reports the egress's revoked token and Telegram's flood control, by bot", () => {
    const rules = new AlertRules(SETTINGS)
    rules.observe(0, [['shop', snapshot({ egressRejected: 2, egressFlood: 2 })]])
    const due = rules.observe(MINUTE, [['news', snapshot({ egressFlood: 1 })]])
    expect(due.map((alert) => alert.kind).sort()).toEqual(['egress_flood', 'egress_token_rejected'])
    expect(due.find((alert) => alert.kind === 'egress_token_rejected')?.text).toContain(
      '2 egress calls answered 401 by Telegram in 1m (threshold 1): the bot token is revoked or wrong.',
    )
    expect(due.find((alert) => alert.kind === 'egress_flood')?.text).toContain('By bot: shop 2, news 1')
  })

  it('reports queued updates moved to the dead letters, by bot', () => {
    const rules = new AlertRules(SETTINGS)
    expect(rules.observe(0, [['shop', snapshot({ deadLetters: 2 })]])).toEqual([])
    const due = rules.observe(MINUTE, [['news', snapshot({})]])
    expect(due.map((alert) => alert.kind)).toEqual(['dead_letters'])
    expect(due[0]?.text).toContain('2 queued updates moved to the dead letters in 1m (threshold 1)')
    expect(due[0]?.text).toContain('By bot: shop 2')
  })

  it('reports automatic bans by bot, never who was banned', () => {
    const rules = new AlertRules(SETTINGS)
    expect(rules.observe(0, [['shop', snapshot({ bans: 1 })]])).toEqual([])
    expect(rules.observe(MINUTE, [['news', snapshot({ bans: 1 })]])).toEqual([
      {
        kind: 'bans',
        text: 'botgate alert on gw-1: bans\n2 automatic bans raised in 1m (threshold 2): addresses refused 403 banned, users blocked. The log names them; the admin API lists and lifts user bans.\nBy bot: news 1, shop 1',
      },
    ])
    // Under the threshold: nothing.
    rules.observe(2 * MINUTE, [['shop', snapshot({ bans: 1 })]])
    expect(rules.observe(3 * MINUTE, [])).toEqual([])
  })

  it('reports a burst in one message when its window ends, with counts by bot', () => {
    const rules = new AlertRules(SETTINGS)
    expect(
      rules.observe(0, [
        ['shop', snapshot({ badSecret: 4 })],
        ['news', snapshot({ badSecret: 1 })],
      ]),
    ).toEqual([])
    expect(rules.observe(10_000, [['shop', snapshot({ badSecret: 30 })]])).toEqual([])
    expect(rules.observe(MINUTE - 1, [])).toEqual([])
    expect(rules.observe(MINUTE, [])).toEqual([
      {
        kind: 'bad_secret',
        text: [
          'botgate alert on gw-1: bad_secret',
          '35 requests with a wrong or missing secret token in 1m (threshold 5), answered 401.',
          'By bot: shop 34, news 1',
        ].join('\n'),
      },
    ])
  })

  it('stays quiet below the threshold, and starts afresh with the next window', () => {
    const rules = new AlertRules(SETTINGS)
    rules.observe(0, [['shop', snapshot({ badSecret: 4 })]])
    expect(rules.observe(MINUTE, [])).toEqual([])
    rules.observe(MINUTE + 1, [['shop', snapshot({ badSecret: 4 })]])
    expect(rules.observe(2 * MINUTE + 1, [])).toEqual([])
  })

  it('sends at most one message per kind per interval during a sustained attack', () => {
    const rules = new AlertRules(SETTINGS)
    const sent: number[] = []
    for (let t = 0; t <= 5 * MINUTE; t += 1000) {
      const due = rules.observe(t, [['shop', snapshot({ ipNotAllowed: 1, badSecret: 1 })]])
      for (const alert of due) if (alert.kind === 'ip_not_allowed') sent.push(t)
    }
    expect(sent.length).toBeGreaterThanOrEqual(4)
    for (let i = 1; i < sent.length; i++)
      expect((sent[i] as number) - (sent[i - 1] as number)).toBeGreaterThanOrEqual(MINUTE)
  })

  it('sums upstream failures of every kind, by reason and bot, with the forwards beside them', () => {
    const rules = new AlertRules(SETTINGS)
    rules.observe(0, [
      ['shop', snapshot({ forwarded: 7, upstream: { upstream_unreachable: 2, upstream_timeout: 1 } })],
      ['news', snapshot({ forwarded: 3, upstream: { upstream_busy: 1 } })],
    ])
    const [alert] = rules.observe(MINUTE, [])
    expect(alert?.text).toBe(
      [
        'botgate alert on gw-1: upstream_failures',
        '4 forwards to the upstream failed in 1m (threshold 3); 10 forwarded.',
        'By reason: upstream_unreachable 2, upstream_timeout 1, upstream_busy 1',
        'By bot: shop 3, news 1',
      ].join('\n'),
    )
  })

  it('opens no window for a kind that is off, and closes open ones when a reload turns it off', () => {
    const rules = new AlertRules({
      ...SETTINGS,
      thresholds: { ...SETTINGS.thresholds, badSecret: undefined },
    })
    rules.observe(0, [['shop', snapshot({ badSecret: 100, ipNotAllowed: 100 })]])
    rules.configure({
      ...SETTINGS,
      thresholds: {
        badSecret: undefined,
        ipNotAllowed: undefined,
        upstreamFailures: 3,
        bans: undefined,
        egressTokenRejected: undefined,
        egressFlood: undefined,
        deadLetters: undefined,
      },
    })
    expect(rules.observe(MINUTE, [])).toEqual([])
  })

  it('lists ten bots and sums up the rest', () => {
    const rules = new AlertRules(SETTINGS)
    rules.observe(
      0,
      Array.from(
        { length: 12 },
        (_, i) => [`bot${String(i).padStart(2, '0')}`, snapshot({ badSecret: 12 - i })] as const,
      ),
    )
    const [alert] = rules.observe(MINUTE, [])
    expect(alert?.text.split('\n')[2]).toBe(
      'By bot: bot00 12, bot01 11, bot02 10, bot03 9, bot04 8, bot05 7, bot06 6, bot07 5, bot08 4, bot09 3, and 2 more bots (3)',
    )
  })
})

describe('event alerts', () => {
  it('sends a refused reload at once, then holds the next ones for the rest of the interval', () => {
    const rules = new AlertRules(SETTINGS)
    const error = new ConfigError([
      {
        file: '/etc/botgate/gateway.yaml',
        line: 3,
        col: 5,
        path: 'bots[0].secret_token',
        message: 'is too weak',
      },
      { file: '/etc/botgate/gateway.yaml', line: 9, col: 1, path: '', message: 'YAML: bad' },
    ])
    const first = rules.reloadRefused(
      0,
      'file change',
      error.issues.map((issue) => issue.path),
    )
    expect(first).toEqual([
      {
        kind: 'reload_refused',
        text: [
          'botgate alert on gw-1: reload_refused',
          'A config reload was refused (trigger: file change): 2 problems at bots[0].secret_token, (the file).',
          'The running config stays in effect. botgate check shows the details.',
        ].join('\n'),
      },
    ])
    expect(first[0]?.text).not.toContain('/etc/botgate')
    expect(rules.reloadRefused(1000, 'SIGHUP', ['listen'])).toEqual([])
    expect(rules.reloadRefused(2000, 'SIGHUP', ['listen'])).toEqual([])
    expect(rules.observe(MINUTE - 1, [])).toEqual([])
    expect(rules.observe(MINUTE, [])).toEqual([
      {
        kind: 'reload_refused',
        text: [
          'botgate alert on gw-1: reload_refused',
          '2 config reloads refused since the last alert; the latest (trigger: SIGHUP): 1 problem at listen.',
          'The running config stays in effect. botgate check shows the details.',
        ].join('\n'),
      },
    ])
    // Quiet for an interval: the next refusal goes out at once again.
    expect(rules.observe(2 * MINUTE, [])).toEqual([])
    expect(rules.reloadRefused(2 * MINUTE + 1, 'SIGHUP', [])).toHaveLength(1)
  })

  it('reports a store outage once, counts errors during it, and reports the recovery', () => {
    const rules = new AlertRules(SETTINGS)
    const [down] = rules.storeDown(Date.UTC(2026, 0, 1, 12), 'ECONNREFUSED')
    expect(down?.text).toBe(
      [
        'botgate alert on gw-1: store_outage',
        'The store has been unreachable since 2026-01-01T12:00:00.000Z (ECONNREFUSED): 1 failed operation, 0ms so far. Limits and dedupe follow store.on_error meanwhile.',
      ].join('\n'),
    )
    expect(rules.storeDown(Date.UTC(2026, 0, 1, 12) + 5000, 'ECONNREFUSED')).toEqual([])
    // The recovery comes within the interval: held, then sent when it ends.
    expect(rules.storeUp(Date.UTC(2026, 0, 1, 12) + 42_000)).toEqual([])
    const [up] = rules.observe(Date.UTC(2026, 0, 1, 12) + MINUTE, [])
    expect(up?.text).toBe(
      ['botgate alert on gw-1: store_outage', 'The store is reachable again, after an outage of 42s.'].join(
        '\n',
      ),
    )
  })

  it('sums up a flapping store', () => {
    const rules = new AlertRules(SETTINGS)
    rules.storeDown(0, 'timeout')
    for (let t = 1000; t < 10_000; t += 2000) {
      rules.storeUp(t)
      rules.storeDown(t + 1000, 'timeout')
    }
    const [summary] = rules.observe(MINUTE, [])
    expect(summary?.text).toContain('The store has been unreachable since 1970-01-01T00:00:10.000Z (timeout)')
    expect(summary?.text).toContain('5 outages since the last alert.')
  })

  it('keeps quiet when the kind is off', () => {
    const rules = new AlertRules({ ...SETTINGS, storeOutage: false, reloadRefused: false })
    expect(rules.storeDown(0, 'x')).toEqual([])
    expect(rules.reloadRefused(0, 'SIGHUP', ['listen'])).toEqual([])
  })
})

describe('what reaches a message', () => {
  it('keeps store details to short codes: no URL, no credentials', () => {
    expect(safeDetail('ECONNREFUSED')).toBe('ECONNREFUSED')
    expect(safeDetail('redis://:hunter2@10.0.0.1:6379')).toBeUndefined()
    expect(safeDetail('connect ECONNREFUSED 10.0.0.1:6379')).toBeUndefined()
    const rules = new AlertRules(SETTINGS)
    const [alert] = rules.storeDown(0, 'redis://:hunter2@10.0.0.1:6379')
    expect(alert?.text).not.toContain('hunter2')
    expect(alert?.text).not.toContain('10.0.0.1')
  })

  it('keeps config key paths, withholds anything else', () => {
    expect(safeKeyPath('bots[0].upstream.secret_token')).toBe('bots[0].upstream.secret_token')
    expect(safeKeyPath('bots[0].123456:AAH-token')).toBeUndefined()
    const rules = new AlertRules(SETTINGS)
    const [alert] = rules.reloadRefused(0, 'SIGHUP', ['bots[0].123456:AAH-token'])
    expect(alert?.text).toContain('1 problem at (a key).')
  })
})
