/**
 * set-webhook, webhook-info and delete-webhook through the real CLI against a local Bot API
 * server: the exact parameters sent (JSON, or multipart with a certificate), Telegram's errors
 * shown, disagreements with the config warned about, and the bot token never printed.
 */

import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { ROOT, runCli, secret, tempDir } from './helpers/gateway.js'
import { freePort } from './helpers/upstream.js'

const TOKEN = '123456789:shop-bot-token-e2e_ABCDEFGHIJKLMNOPQRS'
const NEWS_TOKEN = '555:news-bot-token-e2e_0123456789abcdefghij'
const SECRET = secret()
const SEGMENT = 'hook-randomsegment-0123456789abcdef'
const PATH = `/tg/${SEGMENT}`
const FIXTURE_CERT = path.join(ROOT, 'test/fixtures/config/tls/cert.pem')
const FIXTURE_KEY = path.join(ROOT, 'test/fixtures/config/tls/key.pem')

let api: FakeBotApi
const dir = tempDir()

beforeAll(async () => {
  api = await FakeBotApi.start([TOKEN, NEWS_TOKEN])
  writeFileSync(path.join(dir, 'shop_token'), `${TOKEN}\n`)
  writeFileSync(path.join(dir, 'cert.pem'), readFileSync(FIXTURE_CERT))
  writeFileSync(path.join(dir, 'key.pem'), readFileSync(FIXTURE_KEY))
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    `listen: 127.0.0.1:8443
tls: { cert_file: cert.pem, key_file: key.pem }
bots:
  - name: shop
    path: ${PATH}
    secret_token: ${SECRET}
    token_file: shop_token
    max_inflight: 30
    upstream: { url: "http://127.0.0.1:8081/webhook" }
    policy: { sources: { allow: [telegram] } }   # no updates.allow: every type
  - name: news
    path: /tg/news-0123456789abcdefghij
    secret_token: ${secret()}
    token: \${NEWS_TOKEN}
    upstream: { url: "http://127.0.0.1:8082/webhook" }
  - name: tokenless
    path: /tg/tokenless-0123456789abcdef
    secret_token: ${secret()}
    upstream: { url: "http://127.0.0.1:8083/webhook" }
`,
  )
})

afterAll(() => api.close())

beforeEach(() => {
  api.calls.length = 0
  api.webhooks.clear()
  api.requireHttps = true
})

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, { cwd: dir, env: { NEWS_TOKEN, BOTGATE_API_BASE: undefined, ...env } })

function expectNoToken(result: { stdout: string; stderr: string }): void {
  for (const hidden of [TOKEN, NEWS_TOKEN, SECRET, SEGMENT]) {
    expect(result.stdout).not.toContain(hidden)
    expect(result.stderr).not.toContain(hidden)
  }
}

describe('botgate set-webhook', () => {
  it("sends the URL with the bot's path, its secret and the options, exactly, as JSON", async () => {
    const result = await cli([
      'set-webhook',
      'shop',
      '--url',
      'https://bot.example.com',
      '--max-connections',
      '20',
      '--ip-address',
      '203.0.113.7',
      '--drop-pending-updates',
      '--api-base',
      api.url,
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(api.calls).toHaveLength(1)
    expect(api.calls[0]).toMatchObject({
      token: TOKEN,
      method: 'setWebhook',
      contentType: 'application/json',
      files: {},
    })
    // No allowed_updates: this policy has no updates.allow, so Telegram keeps its list.
    expect(api.calls[0]?.params).toEqual({
      url: `https://bot.example.com${PATH}`,
      secret_token: SECRET,
      max_connections: 20,
      ip_address: '203.0.113.7',
      drop_pending_updates: true,
    })
    expect(result.stdout).toContain('Webhook set for bot shop (Telegram: Webhook was set)')
    expect(result.stdout).toContain('url              https://bot.example.com/tg/ho**** (35 chars)')
    expect(result.stdout).toContain("secret_token     the bot's, from the config: **** (64 chars)")
    expect(result.stdout).toContain(
      'allowed_updates  not sent: the policy has no updates.allow; Telegram keeps the list it has',
    )
    // The config's certificate is self-signed and was not uploaded.
    expect(result.stdout).toContain(
      "the gateway's certificate (tls.cert_file) is self-signed: Telegram accepts it only if uploaded, with --certificate cert.pem",
    )
    expectNoToken(result)
  })

  it('uploads a certificate as multipart/form-data, the API base from $BOTGATE_API_BASE', async () => {
    const result = await cli(
      ['set-webhook', 'shop', '--url', `https://203.0.113.7:8443${PATH}`, '--certificate', 'cert.pem'],
      {
        BOTGATE_API_BASE: api.url,
      },
    )
    expect(result.code).toBe(0)
    const [call] = api.calls
    expect(call?.contentType).toBe('multipart/form-data')
    expect(call?.params).toEqual({ url: `https://203.0.113.7:8443${PATH}`, secret_token: SECRET })
    expect(call?.files.certificate?.filename).toBe('cert.pem')
    expect(call?.files.certificate?.content.equals(readFileSync(FIXTURE_CERT))).toBe(true)
    expect(result.stdout).toContain('certificate      cert.pem uploaded')
    expect(result.stdout).toContain(
      "Telegram opens up to 40 connections by default, above the bot's max_inflight 30: pass --max-connections 30",
    )
    expect(api.webhook(TOKEN).has_custom_certificate).toBe(true)
    expectNoToken(result)
  })

  it("sends the policy's updates.allow as allowed_updates (news uses the shipped default policy)", async () => {
    const result = await cli([
      'set-webhook',
      'news',
      '--url',
      'https://news.example.com',
      '--api-base',
      api.url,
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(api.calls[0]?.params).toMatchObject({
      url: 'https://news.example.com/tg/news-0123456789abcdefghij',
      allowed_updates: ['message', 'edited_message', 'callback_query', 'my_chat_member'],
    })
    expect(api.webhook(NEWS_TOKEN).allowed_updates).toEqual([
      'message',
      'edited_message',
      'callback_query',
      'my_chat_member',
    ])
    const info = await cli(['webhook-info', 'news', '--api-base', api.url])
    expect(info.stdout).toContain(
      '  allowed_updates     message, edited_message, callback_query, my_chat_member',
    )
    // Telegram and the policy agree on the update types: no warning about them.
    expect(info.stdout).not.toMatch(/Telegram sends .* which the policy drops/)
  })

  it('refuses to upload a private key as the certificate', async () => {
    const result = await cli([
      'set-webhook',
      'shop',
      '--url',
      'https://bot.example.com',
      '--certificate',
      'key.pem',
      '--api-base',
      api.url,
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      'botgate set-webhook: key.pem holds a private key: give the certificate (tls.cert_file), never its key\n',
    )
    expect(api.calls).toHaveLength(0)
  })

  it("refuses a URL whose path is not the bot's, unless forced", async () => {
    const args = ['set-webhook', 'shop', '--url', 'https://bot.example.com/other', '--api-base', api.url]
    const refused = await cli(args)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("the URL's path is not bot shop's path /tg/ho**** (35 chars)")
    expect(api.calls).toHaveLength(0)
    const forced = await cli([...args, '--force'])
    expect(forced.code).toBe(0)
    expect(api.calls[0]?.params.url).toBe('https://bot.example.com/other')
  })

  it("shows Telegram's description when it refuses, and exits 1", async () => {
    const result = await cli([
      'set-webhook',
      'news',
      '--url',
      'http://bot.example.com:8080',
      '--api-base',
      api.url,
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      "warning: the URL is plain http: Telegram's servers accept only https (a local Bot API server may)",
    )
    expect(result.stderr).toContain('warning: port 8080 is not one Telegram delivers to (443, 80, 88, 8443)')
    expect(result.stderr).toContain(
      'botgate set-webhook: Telegram refused setWebhook for bot news: Bad Request: bad webhook: An HTTPS URL must be provided for webhook (error 400)',
    )
    expect(api.calls[0]?.token).toBe(NEWS_TOKEN)
    expectNoToken(result)
  })

  it('warns when max_connections exceeds max_inflight', async () => {
    const result = await cli([
      'set-webhook',
      'shop',
      '--url',
      'https://bot.example.com',
      '--max-connections',
      '50',
      '--api-base',
      api.url,
    ])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(
      "max_connections 50 is above the bot's max_inflight 30: the gateway may answer 503 when Telegram uses them all",
    )
  })

  it('explains usage mistakes with exit 2: no --url, no bot, an unknown bot, bad values', async () => {
    const noUrl = await cli(['set-webhook', 'shop'])
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toContain('--url is required')
    const noBot = await cli(['set-webhook', '--url', 'https://x.example'])
    expect(noBot.code).toBe(2)
    expect(noBot.stderr).toContain('name the bot, as in the config: botgate set-webhook BOT')
    const unknown = await cli(['set-webhook', 'shoop', '--url', 'https://x.example'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(
      'botgate set-webhook: no bot named "shoop" in gateway.yaml; its bots: shop, news, tokenless\n',
    )
    const connections = await cli([
      'set-webhook',
      'shop',
      '--url',
      'https://x.example',
      '--max-connections',
      '500',
    ])
    expect(connections.code).toBe(2)
    expect(connections.stderr).toContain('--max-connections must be an integer from 1 to 100')
    expect(api.calls).toHaveLength(0)
  })

  it('says which bot has no token and where to put it, and exits 1', async () => {
    const result = await cli(['webhook-info', 'tokenless', '--api-base', api.url])
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      'botgate webhook-info: bot tokenless has no token: give it token_file (or token) in gateway.yaml. Only set-webhook, webhook-info and delete-webhook read it; serve never does.\n',
    )
  })

  it('reports an unreachable Bot API by its address and error code', async () => {
    const base = `http://127.0.0.1:${await freePort()}`
    const result = await cli(['delete-webhook', 'shop', '--api-base', base])
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `botgate delete-webhook: Telegram refused deleteWebhook for bot shop: cannot reach the Bot API at ${base}: ECONNREFUSED\n`,
    )
  })
})

describe('botgate webhook-info', () => {
  it('prints the registration readably, and no disagreement after set-webhook', async () => {
    await cli([
      'set-webhook',
      'shop',
      '--url',
      'https://bot.example.com',
      '--certificate',
      'cert.pem',
      '--max-connections',
      '30',
      '--api-base',
      api.url,
    ])
    const result = await cli(['webhook-info', 'shop', '--api-base', api.url])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(
      [
        'Webhook of bot shop',
        '  url                 https://bot.example.com/tg/ho**** (35 chars)',
        '  custom certificate  yes',
        '  pending updates     0',
        '  max_connections     30',
        "  allowed_updates     Telegram's default (every type but chat_member, message_reaction, message_reaction_count)",
        'No disagreement with the config.',
        '',
      ].join('\n'),
    )
    expect(api.calls.at(-1)?.method).toBe('getWebhookInfo')
    expectNoToken(result)
  })

  it('warns where Telegram and the config disagree', async () => {
    Object.assign(api.webhook(TOKEN), {
      url: 'https://bot.example.com/tg/old-path',
      pending_update_count: 250,
      max_connections: 40,
      last_error_date: 1767268800,
      last_error_message: 'Wrong response from the webhook: 401 Unauthorized',
    })
    const result = await cli(['webhook-info', 'shop', '--api-base', api.url])
    expect(result.code).toBe(0)
    const warnings = result.stdout.slice(result.stdout.indexOf('warnings:\n')).split('\n')
    expect(warnings).toEqual([
      'warnings:',
      "  - the webhook's path is not the bot's path in the config: the gateway answers 404 to every delivery (unless a proxy rewrites it)",
      "  - Telegram's last delivery failed at 2026-01-01T12:00:00.000Z: Wrong response from the webhook: 401 Unauthorized: the secret token Telegram sends is not the config's; run botgate set-webhook again",
      '  - 250 updates are waiting for delivery: Telegram cannot deliver or the bot is slow',
      "  - the gateway's certificate is self-signed but Telegram has none uploaded: deliveries fail. Run botgate set-webhook with --certificate (docs/tls.md)",
      "  - Telegram may open 40 connections, more than the bot's max_inflight 30: expect 503 overloaded under load",
      '',
    ])
    expect(result.stdout).toContain(
      '  last error          2026-01-01T12:00:00.000Z: Wrong response from the webhook: 401 Unauthorized',
    )
  })

  it('warns when no webhook is set, and prints JSON with --json', async () => {
    const none = await cli(['webhook-info', 'news', '--api-base', api.url])
    expect(none.stdout).toContain(
      '  - no webhook is set: Telegram keeps updates for getUpdates. Run botgate set-webhook news --url URL',
    )
    const json = await cli(['webhook-info', 'news', '--json', '--api-base', api.url])
    expect(JSON.parse(json.stdout)).toEqual({
      url: '',
      has_custom_certificate: false,
      pending_update_count: 0,
    })
  })
})

describe('botgate delete-webhook', () => {
  it('deletes the webhook, dropping pending updates when asked', async () => {
    await cli(['set-webhook', 'shop', '--url', 'https://bot.example.com', '--api-base', api.url])
    api.webhook(TOKEN).pending_update_count = 12
    const result = await cli(['delete-webhook', 'shop', '--drop-pending-updates', '--api-base', api.url])
    expect(result.code).toBe(0)
    expect(api.calls.at(-1)).toMatchObject({
      method: 'deleteWebhook',
      params: { drop_pending_updates: true },
    })
    expect(result.stdout).toBe(
      'Webhook deleted for bot shop (Telegram: Webhook was deleted); pending updates dropped\n' +
        'The gateway receives nothing for shop until botgate set-webhook runs again.\n',
    )
    expect(api.webhook(TOKEN)).toEqual({ url: '', has_custom_certificate: false, pending_update_count: 0 })
    const plain = await cli(['delete-webhook', 'shop', '--api-base', api.url])
    expect(api.calls.at(-1)?.params).toEqual({})
    expect(plain.stdout).toContain('(Telegram: Webhook is already deleted)')
    expectNoToken(result)
  })
})

describe('botgate check with the operations keys', () => {
  it('masks the bot token and shows the certificate', async () => {
    const result = await cli(['check'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('  token         **** (48 chars)')
    expect(result.stdout).toContain(
      'tls CN=botgate-test, valid to 2126-10-28T14:13:12.000Z, self-signed (upload it: set-webhook --certificate)',
    )
    expect(result.stdout).toContain(
      '  token         not set (set-webhook, webhook-info, delete-webhook, the egress and queued delivery need it)',
    )
    expectNoToken(result)
  })
})

describe('the shipped docs', () => {
  it('document the self-signed flow with an openssl command that works', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/tls.md'), 'utf8')
    const command = /^openssl req .*$/m.exec(doc)?.[0]
    expect(command).toBeDefined()
    const folder = tempDir()
    execFileSync(
      'bash',
      ['-c', (command as string).replace(/YOUR_IP_OR_DOMAIN|203\.0\.113\.7/g, '127.0.0.1')],
      {
        cwd: folder,
        stdio: 'ignore',
      },
    )
    expect(readFileSync(path.join(folder, 'cert.pem'), 'utf8')).toContain('BEGIN CERTIFICATE')
  })
})
