/**
 * The example bots in examples/ (Python, Node with grammY, Go), each run as users run it, behind
 * the real CLI: genuine updates reach the bot and its webhook reply comes back to "Telegram";
 * forged requests are refused by botgate and never reach the bot; policy drops are answered by
 * the gateway; and the bot's own checks (upstream secret header, HS256 signed forward with its
 * body hash) refuse what a bot must refuse when someone bypasses the gateway.
 *
 * Go is not installed everywhere (CI has no Go): its block runs when `go` is on PATH and is
 * skipped with a notice otherwise. Python is on every machine the suite runs on; without
 * `python3` its blocks skip with a notice too, except under CI=true, where they run and fail.
 *
 * The Python and grammY bots also run with no token at all, answering through botgate's egress
 * (the second half of this file).
 */

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { ROOT, RunningGateway, secret, tempDir } from './helpers/gateway.js'
import { forwardToken } from './helpers/keys.js'
import { available, RunningProcess } from './helpers/process.js'
import { freePort } from './helpers/upstream.js'

const HAS_GO = available('go', ['version'])
if (!HAS_GO)
  console.warn('examples/go-echo: skipped, `go` is not on PATH (install Go 1.19 or newer to run it)')

const RUN_PYTHON = available('python3') || process.env.CI === 'true'
if (!RUN_PYTHON)
  console.warn('examples/python-echo: skipped, `python3` is not on PATH (it needs Python 3.9 or newer)')

const BOT_TOKEN = '123456:TEST-token-for-an-example'

interface Example {
  readonly name: string
  readonly available: boolean
  /** Prepares the example (a build) and returns the command that runs it. */
  readonly command: () => [string, string[]]
  readonly env?: (api: FakeBotApi) => NodeJS.ProcessEnv
  /** Takes BOTGATE_UPSTREAM_SECRET as a list "new,old" (for rotations, docs/secrets-rotation.md). */
  readonly secretList: boolean
}

const EXAMPLES: readonly Example[] = [
  {
    name: 'python-echo',
    available: RUN_PYTHON,
    command: () => ['python3', [path.join(ROOT, 'examples/python-echo/bot.py')]],
    secretList: true,
  },
  {
    name: 'node-grammy',
    available: true,
    command: () => [process.execPath, [path.join(ROOT, 'examples/node-grammy/bot.mjs')]],
    // grammY never needs Telegram here (botInfo is given, replies are webhook replies); any call
    // it made would reach this local Bot API and fail the test.
    env: (api) => ({ BOT_TOKEN, BOT_USERNAME: 'shop_bot', BOT_API_ROOT: api.url }),
    secretList: false, // grammY's secretToken is one string
  },
  {
    name: 'go-echo',
    available: HAS_GO,
    command: () => {
      const binary = path.join(tempDir(), 'go-echo')
      execFileSync('go', ['build', '-o', binary, '.'], {
        cwd: path.join(ROOT, 'examples/go-echo'),
        stdio: 'pipe',
        timeout: 240_000,
      })
      return [binary, []]
    },
    secretList: true,
  },
]

const PATH = '/tg/shop-0123456789abcdef0123'

for (const example of EXAMPLES)
  describe.skipIf(!example.available)(`examples/${example.name} behind the real CLI`, () => {
    const TELEGRAM_SECRET = secret()
    const UPSTREAM_SECRET = secret()
    const SIGN_KEY = secret()
    const PREVIOUS_SECRET = secret()
    let api: FakeBotApi
    let bot: RunningProcess
    let gateway: RunningGateway
    let botUrl: string

    beforeAll(async () => {
      api = await FakeBotApi.start([BOT_TOKEN])
      const [command, args] = example.command()
      const port = await freePort()
      botUrl = `http://127.0.0.1:${port}/webhook`
      bot = await RunningProcess.start(command, args, {
        env: {
          HOST: '127.0.0.1',
          PORT: String(port),
          BOTGATE_UPSTREAM_SECRET: example.secretList
            ? `${UPSTREAM_SECRET},${PREVIOUS_SECRET}`
            : UPSTREAM_SECRET,
          BOTGATE_HS256_KEY: SIGN_KEY,
          BOTGATE_AUDIENCE: 'shop',
          ...example.env?.(api),
        },
      })
      gateway = await RunningGateway.start({
        config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
bots:
  - name: shop
    username: shop_bot
    path: ${PATH}
    secret_token_file: telegram_secret
    upstream:
      url: ${botUrl}
      secret_token_file: upstream_secret
      sign: { alg: HS256, keys: [{ kid: shop-1, key_file: sign_key }] }
    policy:
      sources: { allow: [any] }
      updates: { allow: [message, callback_query] }
      commands: { allow: [start, help], reply: "Unknown command. Try /help." }
`,
        files: {
          telegram_secret: `${TELEGRAM_SECRET}\n`,
          upstream_secret: UPSTREAM_SECRET,
          sign_key: SIGN_KEY,
        },
      })
    }, 300_000)

    afterAll(async () => {
      expect(await gateway.stop()).toBe(0)
      await bot.stop()
      expect(api.calls).toEqual([]) // the bot never called Telegram
      await api.close()
    })

    const deliver = (update: Record<string, unknown>, headers = telegramHeaders(TELEGRAM_SECRET)) =>
      post(`${gateway.webhook}${PATH}`, JSON.stringify(update), headers)

    /** Whether the bot printed that it accepted this update (waits a little: output is asynchronous). */
    async function botAccepted(updateId: unknown): Promise<boolean> {
      const line = `update ${updateId} accepted`
      await bot.waitFor(() => bot.stdout.includes(line), 2000).catch(() => undefined)
      return bot.stdout.includes(line)
    }

    it('echoes a message: the webhook reply reaches Telegram through the gateway', async () => {
      const update = messageUpdate({ chat: { id: 777, type: 'private' }, text: 'hello there' })
      const reply = await deliver(update)
      expect(reply.status).toBe(200)
      expect(reply.headers['content-type']).toMatch(/^application\/json/)
      expect(reply.json()).toEqual({ method: 'sendMessage', chat_id: 777, text: 'hello there' })
      expect(await botAccepted(update.update_id)).toBe(true)
      expect(await gateway.requestLine(reply.headers['x-request-id'] as string)).toMatchObject({
        reason: 'forwarded',
        upstream_status: 200,
      })
    })

    it('answers /start, addressed to it by @username', async () => {
      const update = messageUpdate({
        text: '/start@shop_bot',
        entities: [{ type: 'bot_command', offset: 0, length: 15 }],
      })
      const reply = await deliver(update)
      expect(reply.json()).toEqual({
        method: 'sendMessage',
        chat_id: 4242,
        text: 'Hello! Send me anything and I will send it back.',
      })
    })

    it('answers a button press with answerCallbackQuery', async () => {
      const update = {
        update_id: 900_001,
        callback_query: {
          id: '4382bfdwdsb323b2d9',
          from: { id: 4242, is_bot: false, first_name: 'Ann' },
          chat_instance: '-1234',
          data: 'ok',
          message: {
            message_id: 7,
            date: 1763712000,
            chat: { id: 4242, type: 'private' },
            from: { id: 1, is_bot: true, first_name: 'Shop' },
            text: 'Press',
          },
        },
      }
      const reply = await deliver(update)
      expect(reply.json()).toEqual({
        method: 'answerCallbackQuery',
        callback_query_id: '4382bfdwdsb323b2d9',
        text: 'Got it',
      })
    })

    it('a forged request is refused by the gateway and never reaches the bot', async () => {
      const forged = messageUpdate({ text: 'forged' })
      const wrong = await deliver(forged, telegramHeaders(secret()))
      expect(wrong.status).toBe(401)
      expect(wrong.json()).toEqual({ ok: false, error: 'bad_secret' })
      const missing = await deliver(forged, ['content-type', 'application/json'])
      expect(missing.status).toBe(401)
      // A genuine update after it: once the bot has seen that one, it would have seen the forged one.
      const genuine = messageUpdate()
      expect((await deliver(genuine)).status).toBe(200)
      expect(await botAccepted(genuine.update_id)).toBe(true)
      expect(bot.stdout).not.toContain(`update ${forged.update_id} `)
      expect(bot.stderr).not.toContain('refused')
    })

    it('a command not on the whitelist is answered by the gateway, not the bot', async () => {
      const update = messageUpdate({
        text: '/admin',
        entities: [{ type: 'bot_command', offset: 0, length: 6 }],
      })
      const reply = await deliver(update)
      expect(reply.json()).toEqual({
        method: 'sendMessage',
        chat_id: 4242,
        text: 'Unknown command. Try /help.',
      })
      const genuine = messageUpdate()
      await deliver(genuine)
      expect(await botAccepted(genuine.update_id)).toBe(true)
      expect(bot.stdout).not.toContain(`update ${update.update_id} `)
    })

    describe('the bot refuses requests that bypass the gateway', () => {
      /** A token like botgate's for `body`, with changes. */
      const token = (body: string, claims: Record<string, unknown> = {}, key = SIGN_KEY) =>
        forwardToken(body, key, claims)
      const direct = (body: string, upstreamSecret: string | undefined, jwt: string | undefined) =>
        post(botUrl, body, [
          'content-type',
          'application/json',
          ...(upstreamSecret === undefined ? [] : ['x-telegram-bot-api-secret-token', upstreamSecret]),
          ...(jwt === undefined ? [] : ['authorization', `Bearer ${jwt}`]),
        ])

      it('accepts a token minted elsewhere with the shared key', async () => {
        const body = JSON.stringify(messageUpdate())
        const reply = await direct(body, UPSTREAM_SECRET, await token(body))
        expect(reply.status).toBe(200)
      })

      it.skipIf(!example.secretList)(
        'accepts the previous upstream secret too, during a rotation',
        async () => {
          const body = JSON.stringify(messageUpdate())
          expect((await direct(body, PREVIOUS_SECRET, await token(body))).status).toBe(200)
        },
      )

      it.each([
        ['no upstream secret', async (body: string) => direct(body, undefined, await token(body))],
        ['a wrong upstream secret', async (body: string) => direct(body, secret(), await token(body))],
        ['no token', async (body: string) => direct(body, UPSTREAM_SECRET, undefined)],
        [
          'another body under a valid token',
          async (body: string) => direct(body.replace('hello', 'HELLO'), UPSTREAM_SECRET, await token(body)),
        ],
        [
          "another bot's token",
          async (body: string) => direct(body, UPSTREAM_SECRET, await token(body, { aud: 'news' })),
        ],
        [
          'an expired token',
          async (body: string) => {
            const past = Math.floor(Date.now() / 1000) - 600
            return direct(body, UPSTREAM_SECRET, await token(body, { iat: past, exp: past + 60 }))
          },
        ],
        [
          'a token signed with another key',
          async (body: string) => direct(body, UPSTREAM_SECRET, await token(body, {}, secret())),
        ],
        [
          'a replayed token',
          async (body: string) => {
            const jwt = await token(body)
            expect((await direct(body, UPSTREAM_SECRET, jwt)).status).toBe(200)
            const replayed = await direct(body, UPSTREAM_SECRET, jwt)
            bot.stdout = bot.stdout.replace(`update ${JSON.parse(body).update_id} accepted`, '')
            return replayed
          },
        ],
        [
          'an unsigned token (alg none)',
          async (body: string) => {
            const [, claims] = (await token(body)).split('.')
            const header = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')
            return direct(body, UPSTREAM_SECRET, `${header}.${claims}.`)
          },
        ],
      ])('with %s: 401', async (_name, send) => {
        const update = messageUpdate()
        const reply = await send(JSON.stringify(update))
        expect(reply.status).toBe(401)
        expect(bot.stdout).not.toContain(`update ${update.update_id} accepted`)
      })
    })
  })

/**
 * The Python and grammY bots with no token at all: botgate holds it (token_file) and the bot
 * holds only its egress credential and the egress URL. An update goes in through the webhook; the
 * bot's answer goes out through botgate's egress and reaches the fake Bot API with the real token
 * in its path.
 */
const EGRESS_TOKEN = '5151:AAE-the-real-token-0123456789abcdefghijkl'
const EGRESS_CREDENTIAL = '5151:bot-side-credential-ABCDEFGHIJKLMNOPQRSTU'
const fixture = (name: string) =>
  JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/updates', name), 'utf8')) as Record<string, unknown>

const EGRESS_EXAMPLES: readonly Example[] = [
  {
    name: 'python-echo',
    available: RUN_PYTHON,
    command: () => ['python3', [path.join(ROOT, 'examples/python-echo/bot.py')]],
    secretList: true,
  },
  {
    name: 'node-grammy',
    available: true,
    command: () => [process.execPath, [path.join(ROOT, 'examples/node-grammy/bot.mjs')]],
    secretList: false,
  },
]

for (const example of EGRESS_EXAMPLES)
  describe.skipIf(!example.available)(`examples/${example.name} through botgate's egress`, () => {
    const TELEGRAM_SECRET = secret()
    const UPSTREAM_SECRET = secret()
    let api: FakeBotApi
    let bot: RunningProcess
    let gateway: RunningGateway
    let egress: string

    beforeAll(async () => {
      api = await FakeBotApi.start([EGRESS_TOKEN])
      const botPort = await freePort()
      gateway = await RunningGateway.start({
        config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
egress: { listen: 127.0.0.1:0, api_base: "${api.url}" }
bots:
  - name: shop
    username: shop_bot
    path: ${PATH}
    secret_token_file: telegram_secret
    token_file: bot_token
    egress: { credential_file: egress_credential }
    upstream:
      url: http://127.0.0.1:${botPort}/webhook
      secret_token_file: upstream_secret
    policy:
      sources: { allow: [any] }
      updates: { allow: [message, callback_query] }
      outbound: { allow_methods: [messaging] }
`,
        files: {
          telegram_secret: TELEGRAM_SECRET,
          upstream_secret: UPSTREAM_SECRET,
          bot_token: `${EGRESS_TOKEN}\n`,
          egress_credential: `${EGRESS_CREDENTIAL}\n`,
        },
      })
      const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
      egress = `http://${started.egress as string}`
      const [command, args] = example.command()
      bot = await RunningProcess.start(command, args, {
        env: {
          HOST: '127.0.0.1',
          PORT: String(botPort),
          BOTGATE_UPSTREAM_SECRET: UPSTREAM_SECRET,
          BOT_CREDENTIAL: EGRESS_CREDENTIAL,
          BOT_API_ROOT: egress,
        },
        ready: /listening on .*\(calls through botgate's egress\)/,
      })
    }, 60_000)

    afterAll(async () => {
      expect(await gateway.stop()).toBe(0)
      expect(await bot.stop()).toBe(0) // SIGTERM: the calls queued go out, then a clean exit
      await api.close()
    })

    const deliver = (update: Record<string, unknown>) =>
      post(`${gateway.webhook}${PATH}`, JSON.stringify(update), telegramHeaders(TELEGRAM_SECRET))

    it('holds no token: its environment has the credential and the egress URL only', () => {
      // What the process really runs with, not what the test meant to give it.
      const environ = readFileSync(`/proc/${bot.child.pid}/environ`, 'utf8').split('\0')
      expect(environ).toContain(`BOT_CREDENTIAL=${EGRESS_CREDENTIAL}`)
      expect(environ.some((entry) => entry.startsWith('BOT_API_ROOT=http://127.0.0.1:'))).toBe(true)
      expect(environ.join('\n')).not.toContain(EGRESS_TOKEN)
      expect(environ.join('\n')).not.toContain(EGRESS_TOKEN.split(':')[1])
    })

    it('answers a message through the egress: sendMessage reaches the Bot API with the real token', async () => {
      const update = fixture('nutgram-095.json')
      const reply = await deliver(update)
      expect(reply.status).toBe(200)
      expect(reply.body).toBe('') // no webhook reply: the answer goes out as a call
      const [sent] = await api.waitForCalls('sendMessage', 1)
      expect(sent).toMatchObject({
        token: EGRESS_TOKEN,
        httpMethod: 'POST',
        contentType: 'application/json',
        params: { chat_id: 12345678, text: 'aaaaaaaaaa' },
      })
      expect(
        await gateway.waitFor((l) => l.msg === 'egress call' && l.method === 'sendMessage'),
      ).toMatchObject({
        bot: 'shop',
        status: 200,
      })
      expect(await gateway.requestLine(reply.headers['x-request-id'] as string)).toMatchObject({
        reason: 'forwarded',
        upstream_status: 200,
      })
    })

    it('answers /start and a button press through the egress, in order', async () => {
      const start = fixture('nutgram-022.json')
      const message = start.message as Record<string, unknown>
      const entities = [{ offset: 0, length: 6, type: 'bot_command' }]
      await deliver({ ...start, message: { ...message, text: '/start', entities } })
      const [, greeting] = await api.waitForCalls('sendMessage', 2)
      expect(greeting?.params).toEqual({
        chat_id: 10081232,
        text: 'Hello! Send me anything and I will send it back.',
      })
      await deliver(fixture('nutgram-006.json'))
      const [answered] = await api.waitForCalls('answerCallbackQuery', 1)
      expect(answered).toMatchObject({
        token: EGRESS_TOKEN,
        params: { callback_query_id: '666728699048485871', text: 'Got it' },
      })
    })

    it("the bot's credential cannot take the webhook away: deleteWebhook is refused and logged", async () => {
      const answer = await fetch(`${egress}/bot${EGRESS_CREDENTIAL}/deleteWebhook`, { method: 'POST' })
      expect(answer.status).toBe(403)
      expect(await answer.json()).toEqual({
        ok: false,
        error_code: 403,
        description: 'Forbidden: method not allowed by botgate policy',
      })
      expect(api.callsOf('deleteWebhook')).toEqual([])
      expect(
        await gateway.waitFor((l) => l.msg === 'egress call' && l.method === 'deleteWebhook'),
      ).toMatchObject({ bot: 'shop', status: 403, reason: 'method_not_allowed', level: 'warn' })
    })

    it('never shows the token or the credential in a log line of botgate or the bot', async () => {
      await gateway.waitFor((l) => l.msg === 'egress call' && l.method === 'answerCallbackQuery')
      for (const text of [gateway.stdout, gateway.stderr, bot.stdout, bot.stderr]) {
        expect(text).not.toContain(EGRESS_TOKEN)
        expect(text).not.toContain(EGRESS_CREDENTIAL)
      }
      // Every call that reached the Bot API carried the real token, none the credential.
      expect(api.calls.length).toBeGreaterThanOrEqual(3)
      for (const call of api.calls) expect(call.token).toBe(EGRESS_TOKEN)
    })
  })
