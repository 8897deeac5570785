/**
 * Shadow mode (`mode: shadow` on a policy or a section): verdicts are logged and counted as
 * "would", and the update is forwarded anyway. Authentication is never shadowed.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
let upstream: TestUpstream

beforeAll(async () => {
  upstream = await TestUpstream.start()
})
afterAll(async () => {
  await upstream.close()
})

describe('a policy in shadow mode', () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        policy:
          'mode: shadow\nsources: { allow: [telegram] }\nupdates: { max_body: 1KiB }\nreplies: { allow_methods: [sendMessage] }',
      }),
    })
  })
  afterAll(async () => {
    await gateway.stop()
  })

  it('forwards what it would refuse, and logs and counts the would-be verdict', async () => {
    const before = upstream.received.length
    const reply = await post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(messageUpdate({ text: 'x'.repeat(2000) })),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(200)
    expect(upstream.received.length).toBe(before + 1)
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line).toMatchObject({ reason: 'forwarded', would: ['ip_not_allowed', 'body_too_large'] })
    const text = await gateway.metrics()
    expect(text).toMatch(/^botgate_shadow_verdicts_total\{bot="bot",reason="ip_not_allowed"\} 1$/m)
    expect(text).toMatch(/^botgate_shadow_verdicts_total\{bot="bot",reason="body_too_large"\} 1$/m)
  })

  it('passes a reply it would withhold, and says so', async () => {
    upstream.respond = (_request, response) =>
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"method":"leaveChat","chat_id":1}')
    const reply = await post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.body).toBe('{"method":"leaveChat","chat_id":1}')
    const line = await gateway.requestLine(reply.headers['x-request-id'] as string)
    expect(line.detail).toBe('would withhold reply: reply_method_not_allowed')
  })

  it('never shadows authentication or malformed input', async () => {
    expect((await post(`${gateway.webhook}${PATH}`, '{}', telegramHeaders(secret()))).status).toBe(401)
    expect((await post(`${gateway.webhook}${PATH}`, '{', telegramHeaders(SECRET))).status).toBe(400)
  })

  it('warns at startup that the policy is not enforced', async () => {
    const warning = await gateway.waitFor(
      (line) => line.msg === 'config warning' && String(line.warning).includes('policy mode is shadow'),
    )
    expect(warning.level).toBe('warn')
  })
})

describe('one section in shadow mode', () => {
  it('shadows only that section; a section can also enforce inside a shadow policy', async () => {
    const gateway = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        policy: 'mode: shadow\nsources: { allow: [telegram], mode: enforce }\nupdates: { max_body: 1KiB }',
      }),
    })
    const reply = await post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(reply.status).toBe(403)
    await gateway.stop()

    const sectionOnly = await RunningGateway.start({
      config: botConfig({
        upstream: upstream.url,
        secret: SECRET,
        policy: 'sources: { allow: [telegram], mode: shadow }\nupdates: { max_body: 1KiB }',
      }),
    })
    const shadowed = await post(
      `${sectionOnly.webhook}${PATH}`,
      JSON.stringify(messageUpdate()),
      telegramHeaders(SECRET),
    )
    expect(shadowed.status).toBe(200)
    const enforced = await post(
      `${sectionOnly.webhook}${PATH}`,
      JSON.stringify(messageUpdate({ text: 'x'.repeat(2000) })),
      telegramHeaders(SECRET),
    )
    expect(enforced.status).toBe(413)
    const warning = await sectionOnly.waitFor(
      (line) => line.msg === 'config warning' && String(line.warning).includes('section sources'),
    )
    expect(warning.warning).toBe(
      'bot bot: section sources is in shadow mode: its verdicts are logged, not enforced',
    )
    await sectionOnly.stop()
  })
})
