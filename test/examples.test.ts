/**
 * The example bots in examples/ (Python, Node with grammY, Go), each run as users run it, behind
 * the real CLI: genuine updates reach the bot and its webhook reply comes back to "Telegram";
 * forged requests are refused by botgate and never reach the bot; policy drops are answered by
 * the gateway; and the bot's own checks (upstream secret header, HS256 signed forward with its
 * body hash) refuse what a bot must refuse when someone bypasses the gateway.
 *
 * Go is not installed everywhere (CI has no Go): its block runs when `go` is on PATH and is
 * skipped with a notice otherwise.
 */

import { execFileSync } from 'node:child_process'
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
    available: true,
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
