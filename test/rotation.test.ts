/**
 * docs/secrets-rotation.md's two procedures for Telegram's secret token, run with the real CLI:
 * `botgate serve` reloading its edited config, `botgate set-webhook` registering with a local
 * stand-in for the Bot API, and "Telegram" delivering to whatever URL and secret that stand-in
 * holds at the moment. With two entries no delivery is ever refused; with the short window only
 * the deliveries inside it are (401), and Telegram's retry after the switch reaches the bot.
 */

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { RunningGateway, runCli, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const TOKEN = '123456789:rotation-test-token_ABCDEFGHIJKLMNOP'
const PUBLIC_URL = 'https://bot.example.com'

let api: FakeBotApi
let upstream: TestUpstream
beforeAll(async () => {
  api = await FakeBotApi.start([TOKEN])
  upstream = await TestUpstream.start()
})
afterAll(async () => {
  await api.close()
  await upstream.close()
})

/** A bot entry of the config. */
const entry = (name: string, segment: string, secretFile: string) => `  - name: ${name}
    username: shop_bot
    path: /tg/${segment}
    secret_token_file: ${secretFile}
    token_file: shop_token
    upstream: { url: ${upstream.url} }
    policy: { sources: { allow: [any] }, updates: { allow: [message] } }
`
const header = `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
bots:
`

/** Telegram delivering an update to the webhook it has now: its URL's path, its secret. */
function telegramDelivers(gateway: RunningGateway, update: Record<string, unknown>) {
  const webhook = api.webhook(TOKEN)
  return post(
    `${gateway.webhook}${new URL(webhook.url).pathname}`,
    JSON.stringify(update),
    telegramHeaders(webhook.secret_token as string),
  )
}

/** Rewrites the config and waits until the gateway has reloaded it. */
async function edit(gateway: RunningGateway, file: string, content: string): Promise<void> {
  const before = gateway.lines.filter((line) => line.msg === 'config reloaded').length
  writeFileSync(path.join(gateway.dir, file), content)
  await gateway.waitFor(
    () => gateway.lines.filter((line) => line.msg === 'config reloaded').length > before,
    10_000,
  )
}

const setWebhook = async (gateway: RunningGateway, bot: string) => {
  const result = await runCli(['set-webhook', bot, '--url', PUBLIC_URL, '--api-base', api.url], {
    cwd: gateway.dir,
  })
  expect(result.code, result.stderr).toBe(0)
}

describe('rotating the Telegram secret token', () => {
  it('with two entries: the webhook moves to a new path and secret, nothing is refused', async () => {
    const [A, B] = [secret(), secret()]
    const gateway = await RunningGateway.start({
      config: header + entry('shop', 'a-0123456789abcdef0123', 'secret_a'),
      files: { secret_a: A, secret_b: B, shop_token: TOKEN },
    })
    await setWebhook(gateway, 'shop')
    expect(api.webhook(TOKEN).secret_token).toBe(A)
    const statuses: number[] = []
    statuses.push((await telegramDelivers(gateway, messageUpdate())).status)

    // 1-2: the second entry, rolled out.
    await edit(
      gateway,
      'gateway.yaml',
      header +
        entry('shop', 'a-0123456789abcdef0123', 'secret_a') +
        entry('shop-b', 'b-0123456789abcdef0123', 'secret_b'),
    )
    statuses.push((await telegramDelivers(gateway, messageUpdate())).status)
    // 3: Telegram switches to the new path and secret in one setWebhook.
    await setWebhook(gateway, 'shop-b')
    expect(api.webhook(TOKEN)).toMatchObject({
      url: `${PUBLIC_URL}/tg/b-0123456789abcdef0123`,
      secret_token: B,
    })
    statuses.push((await telegramDelivers(gateway, messageUpdate())).status)
    // 4: the old entry goes.
    await edit(gateway, 'gateway.yaml', header + entry('shop-b', 'b-0123456789abcdef0123', 'secret_b'))
    statuses.push((await telegramDelivers(gateway, messageUpdate())).status)

    expect(statuses).toEqual([200, 200, 200, 200])
    const old = await post(`${gateway.webhook}/tg/a-0123456789abcdef0123`, '{}', telegramHeaders(A))
    expect(old.status).toBe(404)
    expect(gateway.lines.filter((line) => line.reason === 'bad_secret')).toEqual([])
    expect(await gateway.stop()).toBe(0)
  })

  it('in a short window: deliveries inside it get 401, and the retry after set-webhook gets through', async () => {
    const [OLD, NEW] = [secret(), secret()]
    const gateway = await RunningGateway.start({
      config: header + entry('shop', 'w-0123456789abcdef0123', 'shop_secret'),
      files: { shop_secret: `${OLD}\n`, shop_token: TOKEN },
    })
    await setWebhook(gateway, 'shop')
    expect((await telegramDelivers(gateway, messageUpdate())).status).toBe(200)

    // 1: the new secret in botgate's file; Telegram still sends the old one.
    await edit(gateway, 'shop_secret', `${NEW}\n`)
    const inWindow = messageUpdate()
    expect((await telegramDelivers(gateway, inWindow)).status).toBe(401)
    // 2: set-webhook sends the new secret; Telegram's retry of the refused update succeeds.
    await setWebhook(gateway, 'shop')
    expect(api.webhook(TOKEN).secret_token).toBe(NEW)
    const forwardedBefore = upstream.received.length
    const retry = await telegramDelivers(gateway, inWindow)
    expect(retry.status).toBe(200)
    expect(upstream.received.length).toBe(forwardedBefore + 1)
    expect(JSON.parse(upstream.received.at(-1)?.body.toString() ?? '{}')).toEqual(inWindow)
    expect(await gateway.stop()).toBe(0)
  })
})
