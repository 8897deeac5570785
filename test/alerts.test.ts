/**
 * Alerts through the real CLI, with a local Bot API server standing in for Telegram: failures
 * induced on a running gateway (forged secrets, a dead upstream, a broken config) become one
 * aggregated message per kind and interval, with counts and without any secret, token, path or
 * message text; a 429 from Telegram is waited out as its retry_after says.
 */

import { writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiCall, FakeBotApi, tooManyRequests } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { RunningGateway, secret } from './helpers/gateway.js'
import { freePort, TestUpstream } from './helpers/upstream.js'

const ALERT_TOKEN = '777000:alert-bot-token-e2e_ABCDEFGHIJKLMNOP'
const SECRET = secret()
const FORGED = `forged-${secret()}`
const SEGMENT = 'hook-s3cr3t-segment-0123456789'
const PATH = `/tg/${SEGMENT}`
const MESSAGE_TEXT = 'private-message-text-4711'
const CHAT = -1009876543210

let api: FakeBotApi
const cleanup: (() => Promise<unknown>)[] = []

beforeEach(async () => {
  api = await FakeBotApi.start([ALERT_TOKEN])
  cleanup.push(() => api.close())
})

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

function config(upstream: string, alerts: string, botSecret = SECRET, interval = '2s'): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
alerts:
  token_file: alert_token
  chat_id: ${CHAT}
  api_base: ${api.url}
  interval: ${interval}
${alerts.replace(/^/gm, '  ')}
bots:
  - name: shop
    path: ${PATH}
    secret_token: ${botSecret}
    upstream: { url: ${upstream}, timeout: 5s }
    policy: { sources: { allow: [any] } }
`
}

async function start(upstream: string, alerts: string, interval?: string) {
  const gateway = await RunningGateway.start({
    config: config(upstream, alerts, SECRET, interval),
    files: { alert_token: `${ALERT_TOKEN}\n` },
  })
  cleanup.push(() => gateway.stop('SIGKILL'))
  return { gateway, url: `${gateway.webhook}${PATH}` }
}

const update = () => JSON.stringify(messageUpdate({ text: MESSAGE_TEXT }))

/** Nothing an alert may reveal: secrets, tokens, the path's random segment, folders, user text. */
function expectNothingSecret(calls: readonly ApiCall[], dir: string): void {
  for (const call of calls) {
    const text = String(call.params.text)
    for (const hidden of [SECRET, FORGED, ALERT_TOKEN, SEGMENT, dir, MESSAGE_TEXT, '127.0.0.1'])
      expect(text).not.toContain(hidden)
  }
}

describe('alerts', () => {
  it('turns a burst of bad secrets into one message with its counts, and no secret in it', async () => {
    const upstream = await TestUpstream.start()
    cleanup.push(() => upstream.close())
    // A longer window, so both bursts surely fall inside it even on a busy machine.
    const { gateway, url } = await start(upstream.url, 'bad_secret: 5', '4s')
    // Two bursts within one interval: one message with both counted.
    for (let i = 0; i < 6; i++) expect((await post(url, update(), telegramHeaders(FORGED))).status).toBe(401)
    for (let i = 0; i < 6; i++)
      expect((await post(url, update(), ['content-type', 'application/json'])).status).toBe(401)
    // Genuine traffic beside it is not counted.
    expect((await post(url, update(), telegramHeaders(SECRET))).status).toBe(200)
    const [call] = await api.waitForCalls('sendMessage', 1)
    expect(call?.token).toBe(ALERT_TOKEN)
    expect(call?.params).toEqual({
      chat_id: CHAT,
      text: [
        `botgate alert on ${hostname()}: bad_secret`,
        '12 requests with a wrong or missing secret token in 4s (threshold 5), answered 401.',
        'By bot: shop 12',
      ].join('\n'),
    })
    await gateway.waitFor((line) => line.msg === 'alert sent' && line.kind === 'bad_secret')
    expectNothingSecret(api.calls, gateway.dir)
    expect(gateway.stdout).not.toContain(ALERT_TOKEN)
  })

  it('stays quiet below the threshold', async () => {
    const upstream = await TestUpstream.start()
    cleanup.push(() => upstream.close())
    const { gateway, url } = await start(upstream.url, 'bad_secret: 5\nupstream_failures: 1')
    for (let i = 0; i < 4; i++) await post(url, update(), telegramHeaders(FORGED))
    // An alert of another kind whose window opened later: a bad_secret message would come first.
    upstream.respond = (_request, response) => response.writeHead(500).end()
    await post(url, update(), telegramHeaders(SECRET))
    const calls = await api.waitForCalls('sendMessage', 1)
    expect(calls.map((c) => String(c.params.text).split('\n')[0])).toEqual([
      `botgate alert on ${hostname()}: upstream_failures`,
    ])
    expect(gateway.lines.some((line) => line.msg === 'alert sent' && line.kind === 'bad_secret')).toBe(false)
  })

  it("waits out Telegram's 429 for the retry_after it names, then delivers", async () => {
    const upstream = await TestUpstream.start()
    cleanup.push(() => upstream.close())
    const { gateway, url } = await start(upstream.url, 'bad_secret: 3')
    api.failNext('sendMessage', tooManyRequests(1))
    for (let i = 0; i < 3; i++) await post(url, update(), telegramHeaders(FORGED))
    const [first, second] = await api.waitForCalls('sendMessage', 2)
    expect(second?.params).toEqual(first?.params)
    const delayed = await gateway.waitFor(
      (line) => line.msg === 'alert delayed: Telegram asked to retry later',
    )
    expect(delayed).toMatchObject({ kind: 'bad_secret', retry_after: 1, attempt: 1 })
    await gateway.waitFor((line) => line.msg === 'alert sent' && line.attempt === 2)
  })

  it('reports an unreachable upstream, by reason, with the forwards that still worked', async () => {
    const { gateway, url } = await start(
      `http://127.0.0.1:${await freePort()}/webhook`,
      'upstream_failures: 3',
    )
    for (let i = 0; i < 4; i++) expect((await post(url, update(), telegramHeaders(SECRET))).status).toBe(502)
    const [call] = await api.waitForCalls('sendMessage', 1)
    expect(String(call?.params.text).split('\n')).toEqual([
      `botgate alert on ${hostname()}: upstream_failures`,
      '4 forwards to the upstream failed in 2s (threshold 3); 0 forwarded.',
      'By reason: upstream_unreachable 4',
      'By bot: shop 4',
    ])
    expectNothingSecret(api.calls, gateway.dir)
  })

  it('reports a refused reload with the key paths of its problems, not their values', async () => {
    const upstream = await TestUpstream.start()
    cleanup.push(() => upstream.close())
    const { gateway, url } = await start(upstream.url, 'bad_secret: 5')
    const weak = 'weak-secret-1234'
    writeFileSync(path.join(gateway.dir, 'gateway.yaml'), config(upstream.url, 'bad_secret: 5', weak))
    gateway.child.kill('SIGHUP')
    const [call] = await api.waitForCalls('sendMessage', 1)
    const text = String(call?.params.text)
    expect(text.split('\n')[0]).toBe(`botgate alert on ${hostname()}: reload_refused`)
    expect(text).toMatch(
      /^A config reload was refused \(trigger: (SIGHUP|file change)\): 1 problem at bots\[0\]\.secret_token\.$/m,
    )
    expect(text).toContain('The running config stays in effect.')
    expect(text).not.toContain(weak)
    expectNothingSecret(api.calls, gateway.dir)
    // The old config still serves.
    expect((await post(url, update(), telegramHeaders(SECRET))).status).toBe(200)
  })
})
