/**
 * Logs, metrics and the admin listener through the real CLI: the fields SPEC section 7 names,
 * nothing secret anywhere, and the admin endpoints on their own port only.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const UPSTREAM_SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const MESSAGE_TEXT = 'my-private-message-text-4711'
let upstream: TestUpstream
let gateway: RunningGateway
let url: string

beforeAll(async () => {
  upstream = await TestUpstream.start()
  gateway = await RunningGateway.start({
    config: botConfig({
      upstream: upstream.url,
      secret: SECRET,
      bot: `      secret_token: ${UPSTREAM_SECRET}`,
    }),
  })
  url = `${gateway.webhook}${PATH}`
})

afterAll(async () => {
  await gateway.stop()
  await upstream.close()
})

describe('the request log line', () => {
  it('carries the SPEC fields', async () => {
    const update = messageUpdate(
      { text: `/start ${MESSAGE_TEXT}`, entities: [{ type: 'bot_command', offset: 0, length: 6 }] },
      555,
    )
    const reply = await post(url, JSON.stringify(update), telegramHeaders(SECRET))
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({
      level: 'info',
      msg: 'request',
      bot: 'bot',
      reason: 'forwarded',
      status: 200,
      update_id: 555,
      update_type: 'message',
      chat_id: 4242,
      user_id: 4242,
      command: 'start',
      ip: '127.0.0.1',
      request_id: reply.headers['x-request-id'],
      upstream_status: 200,
    })
    expect(typeof line.ms).toBe('number')
    expect(typeof line.upstream_ms).toBe('number')
    expect(typeof line.time).toBe('string')
  })

  it('is one line per request, for rejected requests too', async () => {
    const replies = await Promise.all([
      post(url, '{}', telegramHeaders(secret())),
      post(`${gateway.webhook}/nope`, '{}', []),
      post(url, '{', telegramHeaders(SECRET)),
    ])
    for (const reply of replies) {
      const id = reply.headers['x-request-id'] as string
      await gateway.requestLine(id)
      expect(gateway.lines.filter((line) => line.request_id === id)).toHaveLength(1)
    }
  })

  it('never contains a secret, a token header or message text', async () => {
    await post(
      url,
      JSON.stringify(messageUpdate({ text: MESSAGE_TEXT, caption: MESSAGE_TEXT })),
      telegramHeaders(SECRET, 'authorization', 'Bearer abc'),
    )
    await post(url, JSON.stringify(messageUpdate()), telegramHeaders(`${SECRET}x`))
    const last = await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    await gateway.requestLine(last.headers['x-request-id'] as string)
    const everything = gateway.stdout + gateway.stderr
    expect(everything).not.toContain(SECRET)
    expect(everything).not.toContain(UPSTREAM_SECRET)
    expect(everything).not.toContain(MESSAGE_TEXT)
    expect(everything).not.toContain('Bearer abc')
  })

  it('carries the text or caption only with log.message_text: true, escaped', async () => {
    const logged = await RunningGateway.start({
      config: botConfig({ upstream: upstream.url, secret: SECRET, top: 'log: { message_text: true }' }),
    })
    try {
      const text = `${MESSAGE_TEXT} "quoted" \\ \n line`
      const cases = [
        [messageUpdate({ text }), text],
        [
          {
            update_id: 7,
            channel_post: { message_id: 1, date: 1, chat: { id: -100, type: 'channel' }, caption: text },
          },
          text,
        ],
        [
          {
            update_id: 8,
            callback_query: {
              id: 'q',
              from: { id: 1, is_bot: false, first_name: 'A' },
              chat_instance: 'c',
              data: text,
            },
          },
          undefined,
        ],
      ] as const
      for (const [update, expected] of cases) {
        const reply = await post(`${logged.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(SECRET))
        const line = await logged.requestLine(reply.headers['x-request-id'] as string)
        expect(line.text).toBe(expected)
      }
    } finally {
      await logged.stop()
    }
  })
})

describe('the admin listener', () => {
  it('serves /healthz and /readyz', async () => {
    const health = await fetch(`${gateway.admin}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ ok: true })
    const ready = await fetch(`${gateway.admin}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ ok: true, config: 'loaded', listener: 'serving' })
  })

  it('serves Prometheus metrics: requests by bot, reason and outcome, latencies, in-flight, reloads', async () => {
    await post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
    await post(url, '{}', telegramHeaders(secret()))
    const response = await fetch(`${gateway.admin}/metrics`)
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4')
    const text = await response.text()
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN)
    expect(
      value(/^botgate_requests_total\{bot="bot",reason="forwarded",outcome="forwarded"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(1)
    expect(
      value(/^botgate_requests_total\{bot="bot",reason="bad_secret",outcome="rejected"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(1)
    expect(text).toMatch(/^botgate_request_duration_seconds_bucket\{bot="bot",le="\+Inf"\} \d+$/m)
    expect(text).toMatch(/^botgate_request_duration_seconds_count\{bot="bot"\} \d+$/m)
    expect(text).toMatch(/^botgate_upstream_duration_seconds_sum\{bot="bot"\} [\d.e-]+$/m)
    expect(text).toMatch(/^botgate_inflight_requests\{bot="bot"\} 0$/m)
    expect(text).toMatch(/^botgate_config_reloads_total\{result="success"\} 0$/m)
    expect(text).toMatch(/^botgate_build_info\{version="[^"]+",node="v\d+/m)
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m)
    for (const line of text.split('\n')) {
      expect(
        line.startsWith('#') || line === '' || /^[a-z_]+(\{[^}]*\})? [-+\d.eInf]+$/.test(line),
        line,
      ).toBe(true)
    }
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain(PATH)
  })

  it('is not on the webhook listener, and the webhook is not on it', async () => {
    expect((await post(`${gateway.webhook}/metrics`, null, [], 'GET')).status).toBe(404)
    expect((await post(`${gateway.webhook}/healthz`, null, [], 'GET')).status).toBe(404)
    expect(
      (await post(`${gateway.admin}${PATH}`, JSON.stringify(messageUpdate()), telegramHeaders(SECRET)))
        .status,
    ).toBe(404)
  })
})
