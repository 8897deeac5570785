/**
 * @module
 * When to alert and what the message says, as plain functions of the counts and the time given
 * to them (no timers here, so tests drive the clock).
 *
 * Two shapes of alert, both sent at most once per kind per interval:
 *
 * - Counted kinds (`bad_secret`, `ip_not_allowed`, `upstream_failures`): the first count seen
 *   opens a window of one interval for that kind; when the window ends, one message reports its
 *   total, by bot (and by reason for the upstream), if the total reached the threshold. A burst
 *   shorter than the interval is therefore always reported whole, in one message; a sustained
 *   attack or outage gives one message per interval.
 * - Events (`store_outage`, `reload_refused`): sent at once, unless a message of the same kind
 *   went out within the interval; then they are summed up in one message when the interval ends.
 *
 * Texts carry counts, bot names, reason codes, config key paths and error codes, never a secret,
 * token, URL, file path, address or message text: alerts go to a chat, a place with its own
 * readers and history.
 */

import type { AlertThresholds } from '../../config/load.js'
import { formatDuration } from '../../config/units.js'
import { type CountSnapshot, UPSTREAM_REASONS, type UpstreamReason } from './counts.js'

export type AlertKind =
  | 'bad_secret'
  | 'ip_not_allowed'
  | 'upstream_failures'
  | 'bans'
  | 'egress_token_rejected'
  | 'egress_flood'
  | 'dead_letters'
  | 'store_outage'
  | 'reload_refused'

export interface Alert {
  readonly kind: AlertKind
  readonly text: string
}

export interface RuleSettings {
  readonly intervalMs: number
  readonly thresholds: AlertThresholds
  readonly storeOutage: boolean
  readonly reloadRefused: boolean
  /** Names this instance in messages (the host name): which replica is hurting. */
  readonly instance: string
}

/** Bots listed by name in one message; the rest are summed up, so a message stays short. */
const MAX_BOTS_LISTED = 10
/** Config key paths listed in a refused-reload message. */
const MAX_PATHS_LISTED = 5

type CountedKind =
  | 'bad_secret'
  | 'ip_not_allowed'
  | 'upstream_failures'
  | 'bans'
  | 'egress_token_rejected'
  | 'egress_flood'
  | 'dead_letters'

interface CountWindow {
  readonly start: number
  total: number
  forwarded: number
  readonly byBot: Map<string, number>
  readonly byReason: Record<UpstreamReason, number>
}

interface EventThrottle {
  /** No message of this kind before this time. */
  until: number
  /** Something happened while throttled: report it when the interval ends. */
  pending: boolean
}

/** A store error code or reason for a message: a short token, never a URL or free text. */
export function safeDetail(detail: string | undefined): string | undefined {
  return detail !== undefined && /^[A-Za-z0-9_.-]{1,40}$/.test(detail) ? detail : undefined
}

/** A config key path for a message (`bots[0].secret_token`); anything else is withheld. */
export function safeKeyPath(keyPath: string): string | undefined {
  return /^[A-Za-z0-9_.[\]]{1,60}$/.test(keyPath) ? keyPath : undefined
}

function zeroReasons(): Record<UpstreamReason, number> {
  return { upstream_unreachable: 0, upstream_timeout: 0, upstream_error: 0, upstream_busy: 0 }
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`
}

/** `shop 30, news 7` (largest first), with `and 3 more bots (5)` past the listed ones. */
function byBotText(byBot: ReadonlyMap<string, number>): string {
  const sorted = [...byBot].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
  const listed = sorted.slice(0, MAX_BOTS_LISTED).map(([bot, n]) => `${bot} ${n}`)
  const rest = sorted.slice(MAX_BOTS_LISTED)
  if (rest.length > 0)
    listed.push(`and ${plural(rest.length, 'more bot')} (${rest.reduce((sum, [, n]) => sum + n, 0)})`)
  return listed.join(', ')
}

export class AlertRules {
  #settings: RuleSettings
  readonly #windows = new Map<CountedKind, CountWindow>()
  readonly #events = new Map<'store_outage' | 'reload_refused', EventThrottle>()
  // The store, as reported by the store code: down since when, why, how often it failed.
  #storeDown = false
  #storeSince = 0
  #storeDetail: string | undefined
  #storeErrors = 0
  #outagesSinceMessage = 0
  #lastOutageMs = 0
  // Refused reloads since the last message, and the latest one's facts.
  #refusals = 0
  #refusalTrigger = ''
  #refusalPaths: readonly string[] = []
  #refusalProblems = 0

  constructor(settings: RuleSettings) {
    this.#settings = settings
  }

  /** New settings (a reload); open windows and outage state carry on. */
  configure(settings: RuleSettings): void {
    this.#settings = settings
    for (const kind of [...this.#windows.keys()])
      if (this.#threshold(kind) === undefined) this.#windows.delete(kind)
  }

  #threshold(kind: CountedKind): number | undefined {
    const thresholds = this.#settings.thresholds
    switch (kind) {
      case 'bad_secret':
        return thresholds.badSecret
      case 'ip_not_allowed':
        return thresholds.ipNotAllowed
      case 'upstream_failures':
        return thresholds.upstreamFailures
      case 'bans':
        return thresholds.bans
      case 'egress_token_rejected':
        return thresholds.egressTokenRejected
      case 'egress_flood':
        return thresholds.egressFlood
      case 'dead_letters':
        return thresholds.deadLetters
    }
  }

  #add(kind: CountedKind, now: number, bot: string, count: number): CountWindow | undefined {
    if (count === 0 || this.#threshold(kind) === undefined) return this.#windows.get(kind)
    let window = this.#windows.get(kind)
    if (window === undefined) {
      window = { start: now, total: 0, forwarded: 0, byBot: new Map(), byReason: zeroReasons() }
      this.#windows.set(kind, window)
    }
    window.total += count
    window.byBot.set(bot, (window.byBot.get(bot) ?? 0) + count)
    return window
  }

  /**
   * Takes the counts since the last call (one snapshot per bot) and returns the alerts that are
   * due now: counted windows that ended, and events held back by the throttle.
   */
  observe(now: number, counts: Iterable<readonly [string, CountSnapshot]>): Alert[] {
    for (const [bot, snapshot] of counts) {
      this.#add('bad_secret', now, bot, snapshot.badSecret)
      this.#add('ip_not_allowed', now, bot, snapshot.ipNotAllowed)
      this.#add('bans', now, bot, snapshot.bans)
      this.#add('egress_token_rejected', now, bot, snapshot.egressRejected)
      this.#add('egress_flood', now, bot, snapshot.egressFlood)
      this.#add('dead_letters', now, bot, snapshot.deadLetters)
      let failures = 0
      for (const reason of UPSTREAM_REASONS) failures += snapshot.upstream[reason]
      const window = this.#add('upstream_failures', now, bot, failures)
      if (window !== undefined) {
        window.forwarded += snapshot.forwarded
        for (const reason of UPSTREAM_REASONS) window.byReason[reason] += snapshot.upstream[reason]
      }
    }
    const due: Alert[] = []
    for (const [kind, window] of this.#windows) {
      if (now < window.start + this.#settings.intervalMs) continue
      this.#windows.delete(kind)
      const threshold = this.#threshold(kind)
      if (threshold !== undefined && window.total >= threshold)
        due.push(this.#counted(kind, window, threshold))
    }
    for (const [kind, throttle] of this.#events) {
      if (now < throttle.until) continue
      if (!throttle.pending) {
        this.#events.delete(kind)
        continue
      }
      throttle.pending = false
      throttle.until = now + this.#settings.intervalMs
      due.push(kind === 'store_outage' ? this.#storeAlert(now) : this.#reloadAlert())
    }
    return due
  }

  /** The store could not answer. Repeated calls during one outage count errors, not outages. */
  storeDown(now: number, detail: string | undefined): Alert[] {
    if (this.#storeDown) {
      this.#storeErrors++
      return []
    }
    this.#storeDown = true
    this.#storeSince = now
    this.#storeDetail = safeDetail(detail)
    this.#storeErrors = 1
    this.#outagesSinceMessage++
    return this.#settings.storeOutage ? this.#event('store_outage', now) : []
  }

  /** The store answers again. */
  storeUp(now: number): Alert[] {
    if (!this.#storeDown) return []
    this.#storeDown = false
    this.#lastOutageMs = now - this.#storeSince
    return this.#settings.storeOutage ? this.#event('store_outage', now) : []
  }

  /** A changed config was refused; `keyPaths` locate its problems (`bots[0].secret_token`). */
  reloadRefused(now: number, trigger: string, keyPaths: readonly string[]): Alert[] {
    this.#refusals++
    this.#refusalTrigger = trigger
    this.#refusalProblems = keyPaths.length
    this.#refusalPaths = [
      ...new Set(
        keyPaths.map((keyPath) => (keyPath === '' ? '(the file)' : (safeKeyPath(keyPath) ?? '(a key)'))),
      ),
    ]
    return this.#settings.reloadRefused ? this.#event('reload_refused', now) : []
  }

  #event(kind: 'store_outage' | 'reload_refused', now: number): Alert[] {
    const throttle = this.#events.get(kind)
    if (throttle !== undefined && now < throttle.until) {
      throttle.pending = true
      return []
    }
    this.#events.set(kind, { until: now + this.#settings.intervalMs, pending: false })
    return [kind === 'store_outage' ? this.#storeAlert(now) : this.#reloadAlert()]
  }

  #header(kind: AlertKind): string {
    return `botgate alert on ${this.#settings.instance}: ${kind}`
  }

  #counted(kind: CountedKind, window: CountWindow, threshold: number): Alert {
    const interval = formatDuration(this.#settings.intervalMs)
    const lines = [this.#header(kind)]
    switch (kind) {
      case 'bad_secret':
        lines.push(
          `${plural(window.total, 'request')} with a wrong or missing secret token in ${interval} (threshold ${threshold}), answered 401.`,
        )
        break
      case 'ip_not_allowed':
        lines.push(
          `${plural(window.total, 'request')} from addresses outside sources.allow in ${interval} (threshold ${threshold}), answered 403.`,
        )
        break
      case 'upstream_failures': {
        lines.push(
          `${plural(window.total, 'forward')} to the upstream failed in ${interval} (threshold ${threshold}); ${window.forwarded} forwarded.`,
        )
        const reasons = UPSTREAM_REASONS.filter((reason) => window.byReason[reason] > 0)
        lines.push(`By reason: ${reasons.map((reason) => `${reason} ${window.byReason[reason]}`).join(', ')}`)
        break
      }
      case 'egress_token_rejected':
        lines.push(
          `${plural(window.total, 'egress call')} answered 401 by Telegram in ${interval} (threshold ${threshold}): the bot token is revoked or wrong. Replace it (token_file) and reload.`,
        )
        break
      case 'egress_flood':
        lines.push(
          `${plural(window.total, 'egress call')} answered 429 by Telegram in ${interval} (threshold ${threshold}): the bot sends faster than Telegram allows; egress.pacing retries them, but check its limits.`,
        )
        break
      case 'dead_letters':
        lines.push(
          `${plural(window.total, 'queued update')} moved to the dead letters in ${interval} (threshold ${threshold}): the upstream failed them max_attempts times or past max_age. botgate queue list shows them, botgate queue replay sends them again.`,
        )
        break
      case 'bans':
        lines.push(
          `${plural(window.total, 'automatic ban')} raised in ${interval} (threshold ${threshold}): addresses refused 403 banned, users blocked. The log names them; the admin API lists and lifts user bans.`,
        )
        break
    }
    lines.push(`By bot: ${byBotText(window.byBot)}`)
    return { kind, text: lines.join('\n') }
  }

  #storeAlert(now: number): Alert {
    const lines = [this.#header('store_outage')]
    if (this.#storeDown) {
      const why = this.#storeDetail === undefined ? '' : ` (${this.#storeDetail})`
      lines.push(
        `The store has been unreachable since ${new Date(this.#storeSince).toISOString()}${why}: ${plural(this.#storeErrors, 'failed operation')}, ${formatDuration(Math.max(0, now - this.#storeSince))} so far. Limits and dedupe follow store.on_error meanwhile.`,
      )
    } else {
      lines.push(`The store is reachable again, after an outage of ${formatDuration(this.#lastOutageMs)}.`)
    }
    if (this.#outagesSinceMessage > 1)
      lines.push(`${this.#outagesSinceMessage} outages since the last alert.`)
    this.#outagesSinceMessage = 0
    return { kind: 'store_outage', text: lines.join('\n') }
  }

  #reloadAlert(): Alert {
    const lines = [this.#header('reload_refused')]
    const latest =
      this.#refusals > 1
        ? `${this.#refusals} config reloads refused since the last alert; the latest (trigger: ${this.#refusalTrigger})`
        : `A config reload was refused (trigger: ${this.#refusalTrigger})`
    const listed = this.#refusalPaths.slice(0, MAX_PATHS_LISTED)
    const more = this.#refusalPaths.length - listed.length
    const where =
      listed.length === 0
        ? ''
        : ` at ${listed.join(', ')}${more > 0 ? ` and ${plural(more, 'more key')}` : ''}`
    const problems =
      this.#refusalProblems === 0 ? 'an internal error' : plural(this.#refusalProblems, 'problem')
    lines.push(`${latest}: ${problems}${where}.`)
    lines.push('The running config stays in effect. botgate check shows the details.')
    this.#refusals = 0
    return { kind: 'reload_refused', text: lines.join('\n') }
  }
}
