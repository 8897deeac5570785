/**
 * Bot API method names through the real egress listener, against the fake Bot API (which, like
 * Telegram's server, percent-decodes the path and ignores the method's case). Any spelling of a
 * method is that method: `SENDMESSAGE` is on an allow list of sendMessage, `SENDPHOTO` is not,
 * `DELETEWEBHOOK` is refused under `any`, and so is a percent-encoded `deleteWebhoo%6B`, which
 * Telegram would run as deleteWebhook. Pacing counts `SENDMESSAGE` as a message. The metric and
 * the log line name the method as the spec spells it, an unknown name is `other`: a flood of
 * spellings adds no series.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'

const TOKEN = '4343:AAHmethods-token-0123456789abcdefghijklm'
const CREDENTIAL = '4343:local-credential-methods-ZYXWVUTSRQPO'

function config(apiBase: string, allow: string, pacing = '{ enabled: false }'): string {
  return botConfig({
    upstream: 'http://127.0.0.1:9',
    secret: secret(),
    top: `egress: { listen: 127.0.0.1:0, api_base: "${apiBase}", pacing: ${pacing} }`,
    bot: `    token: "${TOKEN}"
    egress:
      credential: "${CREDENTIAL}"`,
    policy: `sources: { allow: [any] }\noutbound: { allow_methods: ${allow} }`,
  })
}

async function start(apiBase: string, allow: string, pacing?: string): Promise<[RunningGateway, string]> {
  const gateway = await RunningGateway.start({ config: config(apiBase, allow, pacing) })
  const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
  return [gateway, `http://${started.egress as string}`]
}

function send(egress: string, method: string, chatId = 7): Promise<{ status: number; body: unknown }> {
  return fetch(`${egress}/bot${CREDENTIAL}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ chat_id: chatId, text: 'hi' }),
  }).then(async (response) => ({ status: response.status, body: await response.json() }))
}

const FORBIDDEN = {
  ok: false,
  error_code: 403,
  description: 'Forbidden: method not allowed by botgate policy',
}

/** The series of botgate_egress_calls_total for the bot. */
/** The botgate_egress_calls_total line of the bot's egress calls of `method`, at `count`. */
function egressCalls(method: string, status: number, reason: string, count: number): string {
  return `botgate_egress_calls_total{bot="bot",method="${method}",status="${status}",via="egress",reason="${reason}"} ${count}\n`
}

function callSeries(metrics: string): string[] {
  return metrics.split('\n').filter((line) => line.startsWith('botgate_egress_calls_total{bot="bot"'))
}

describe('egress method names, any case', () => {
  let api: FakeBotApi
  const gateways: RunningGateway[] = []

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
  })

  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()))
    await api?.close()
  })

  it('matches an allow list in any case, and counts and logs the canonical name', async () => {
    const [gateway, egress] = await start(api.url, '[sendMessage, getMe]')
    gateways.push(gateway)
    for (const method of ['sendMessage', 'SENDMESSAGE', 'sendmessage', 'SendMessage'])
      expect(await send(egress, method)).toMatchObject({ status: 200, body: { ok: true } })
    for (const method of ['sendPhoto', 'SENDPHOTO', 'deleteWebhook', 'DeleteWebhook'])
      expect(await send(egress, method)).toEqual({ status: 403, body: FORBIDDEN })
    expect(api.callsOf('sendMessage')).toHaveLength(4)
    const metrics = await gateway.metrics()
    expect(metrics).toContain(egressCalls('sendMessage', 200, '', 4))
    expect(metrics).toContain(egressCalls('sendPhoto', 403, 'method_not_allowed', 2))
    expect(metrics).toContain(egressCalls('deleteWebhook', 403, 'method_not_allowed', 2))
    expect(callSeries(metrics)).toHaveLength(3)
    const calls = () => gateway.lines.filter((line) => line.msg === 'egress call')
    await gateway.waitFor(() => calls().length >= 8)
    const lines = calls()
    expect(new Set(lines.map((line) => line.method))).toEqual(
      new Set(['sendMessage', 'sendPhoto', 'deleteWebhook']),
    )
  })

  it('refuses guarded methods under any in every spelling, percent-encoded too', async () => {
    const [gateway, egress] = await start(api.url, '[any]')
    gateways.push(gateway)
    const spellings = ['DELETEWEBHOOK', 'deletewebhook', 'deleteWebhoo%6B', 'delete%57ebhook', 'SetWebhook']
    for (const method of spellings)
      expect(await send(egress, method)).toEqual({ status: 403, body: FORBIDDEN })
    expect(api.callsOf('deleteWebhook')).toHaveLength(0)
    expect(api.callsOf('setWebhook')).toHaveLength(0)
    const metrics = await gateway.metrics()
    // Canonical where the spelling is a method; the percent-encoded ones are no plain name: other.
    expect(metrics).toContain(egressCalls('deleteWebhook', 403, 'method_not_allowed', 2))
    expect(metrics).toContain(egressCalls('setWebhook', 403, 'method_not_allowed', 1))
    expect(metrics).toContain(egressCalls('other', 403, 'method_not_allowed', 2))
  })

  it('labels made-up names other: a flood of names and spellings adds no series', async () => {
    const [gateway, egress] = await start(api.url, '[any]')
    gateways.push(gateway)
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, index) => send(egress, `madeUpMethod${'x'.repeat(index)}`)),
    )
    // Telegram's own 404 for a method it does not know.
    expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([404]))
    const cases = Array.from({ length: 20 }, (_, index) =>
      [...'sendmessage'].map((c, at) => ((index >> at) & 1 ? c.toUpperCase() : c)).join(''),
    )
    for (const method of cases) expect((await send(egress, method)).status).toBe(200)
    const series = callSeries(await gateway.metrics()).sort()
    expect(series).toEqual([
      'botgate_egress_calls_total{bot="bot",method="other",status="404",via="egress",reason=""} 40',
      'botgate_egress_calls_total{bot="bot",method="sendMessage",status="200",via="egress",reason=""} 20',
    ])
  })

  it('paces SENDMESSAGE as a message: it cannot skip the bot budget', async () => {
    const [gateway, egress] = await start(api.url, '[any]', '{ global: 1/h, max_wait: 1s }')
    gateways.push(gateway)
    expect((await send(egress, 'sendMessage', 1)).status).toBe(200)
    // The bot's one message an hour is spent: another, in any spelling, waits too long.
    for (const method of ['SENDMESSAGE', 'sendmessage']) {
      const answer = await send(egress, method, 2)
      expect(answer).toMatchObject({ status: 429, body: { ok: false, error_code: 429 } })
    }
    expect(await gateway.metrics()).toContain(egressCalls('sendMessage', 429, 'wait_too_long', 2))
  })
})
