/**
 * deploy/compose.yaml: its services, ports, mounts, secrets and networks agree with the config
 * it mounts (deploy/compose/config) and with the image; the config passes `botgate check` as the
 * container loads it; and the stack runs without Docker: real Redis with the password from the
 * secret file, the Python example bot with the compose service's environment (its egress
 * credential, no token), and `botgate serve` on the compose config (listeners, Redis, the bot and
 * a fake Bot API at the test's addresses), with "the host's proxy" in front.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { FakeBotApi } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import {
  ContainerFs,
  DEPLOY,
  deployConfig,
  execForm,
  instructions,
  type K8sObject,
  parseDockerfile,
  placeholderSecrets,
  portOf,
  type Stage,
} from './helpers/deploy.js'
import { ROOT, RunningGateway, runCli, tempDir } from './helpers/gateway.js'
import { RunningProcess } from './helpers/process.js'
import { client, keysAndCleanup, RedisServer, redisServerAvailable } from './helpers/redis.js'
import { freePort } from './helpers/upstream.js'

const compose = parseYaml(readFileSync(path.join(DEPLOY, 'compose.yaml'), 'utf8')) as K8sObject
const CONFIG_DIR = path.join(DEPLOY, 'compose/config')
const config = parseYaml(readFileSync(path.join(CONFIG_DIR, 'gateway.yaml'), 'utf8')) as K8sObject
const { botgate, redis, bot } = compose.services as { botgate: K8sObject; redis: K8sObject; bot: K8sObject }
const runtime = parseDockerfile(readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8')).at(-1) as Stage
const ENTRY = [
  ...execForm(instructions(runtime, 'ENTRYPOINT')[0]?.text ?? ''),
  ...execForm(instructions(runtime, 'CMD')[0]?.text ?? ''),
]
const CONFIG_PATH = ENTRY.at(-1) as string

/** The compose secrets as the containers see them: /run/secrets/<name>. */
const SECRETS = Object.keys(compose.secrets as object)

const placeholders = () => placeholderSecrets(SECRETS)

describe('deploy/compose.yaml', () => {
  it('builds botgate from deploy/Dockerfile and runs its command unchanged', () => {
    expect(path.resolve(DEPLOY, botgate.build.context)).toBe(ROOT)
    expect(botgate.build.dockerfile).toBe('deploy/Dockerfile')
    expect(botgate.command).toBeUndefined()
    expect(botgate.entrypoint).toBeUndefined()
    expect(path.resolve(DEPLOY, bot.build)).toBe(path.join(ROOT, 'examples/python-echo'))
  })

  it('mounts the config folder read-only where the command reads it', () => {
    expect(botgate.volumes).toEqual([`./compose/config:${path.posix.dirname(CONFIG_PATH)}:ro`])
    expect(readFileSync(path.join(DEPLOY, 'compose/config', path.basename(CONFIG_PATH)), 'utf8')).toContain(
      'bots:',
    )
  })

  it('publishes the webhook port on loopback only, never the admin port', () => {
    expect(botgate.ports).toEqual([`127.0.0.1:${portOf(config.listen)}:${portOf(config.listen)}`])
    expect(JSON.stringify(compose)).not.toContain(`:${portOf(config.admin.listen)}"`)
    expect(bot.ports).toBeUndefined()
    expect(redis.ports).toBeUndefined()
  })

  it('gives every service a read-only root, no capabilities and no new privileges', () => {
    for (const service of [botgate, redis, bot]) {
      expect(service.read_only).toBe(true)
      expect(service.cap_drop).toEqual(['ALL'])
      expect(service.security_opt).toEqual(['no-new-privileges:true'])
    }
    expect(Number.parseInt(botgate.stop_grace_period, 10)).toBeGreaterThan(
      Number.parseInt(config.shutdown_grace, 10),
    )
  })

  it('hands each service exactly the secret files its config names', () => {
    const files = JSON.stringify(config).match(/"\/run\/secrets\/[^"]+"/g) ?? []
    expect(files.length).toBeGreaterThan(0)
    for (const quoted of files) expect(botgate.secrets).toContain(path.basename(JSON.parse(quoted) as string))
    for (const name of SECRETS) expect(compose.secrets[name]).toEqual({ file: `./compose/secrets/${name}` })
    expect(bot.secrets).toEqual([
      path.basename(config.bots[0].upstream.secret_token_file),
      path.basename(config.bots[0].egress.credential_file),
    ])
    expect(bot.environment.BOTGATE_UPSTREAM_SECRET_FILE).toBe(config.bots[0].upstream.secret_token_file)
    // The bot's key to the egress, never the token: that is botgate's alone.
    expect(bot.environment.BOT_CREDENTIAL_FILE).toBe(config.bots[0].egress.credential_file)
    expect(botgate.secrets).toContain(path.basename(config.bots[0].token_file))
    expect(bot.secrets).not.toContain(path.basename(config.bots[0].token_file))
    expect(JSON.stringify(bot)).not.toMatch(/token/i)
    expect(redis.secrets).toEqual([path.basename(config.store.password_file)])
    expect(redis.command.join(' ')).toContain(config.store.password_file)
    expect(redis.healthcheck.test.join(' ')).toContain(config.store.password_file)
    // The path segment comes from deploy/.env, which git ignores.
    expect(botgate.environment.SHOP_PATH).toMatch(/^\$\{SHOP_PATH:\?/)
    expect(config.bots[0].path).toBe('/tg/${SHOP_PATH}')
    expect(readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('.env')
  })

  it('points the store and the upstream at the compose services', () => {
    const store = new URL(config.store.url)
    expect(store.hostname).toBe('redis')
    expect(redis.command.join(' ')).not.toContain('--port') // the default, 6379
    expect(Number(store.port)).toBe(6379)
    const upstream = new URL(config.bots[0].upstream.url)
    expect(upstream.hostname).toBe('bot')
    expect(bot.environment.PORT).toBe(upstream.port)
    expect(bot.environment.HOST).toBe('0.0.0.0')
    const botImage = parseDockerfile(readFileSync(path.join(ROOT, 'examples/python-echo/Dockerfile'), 'utf8'))
    expect(instructions(botImage.at(-1) as Stage, 'EXPOSE')[0]?.text).toBe(upstream.port)
    expect(botgate.depends_on.redis.condition).toBe('service_healthy')
  })

  it("points the bot's API base at botgate's egress, on the network they share, never published", () => {
    const root = new URL(bot.environment.BOT_API_ROOT)
    expect(root.protocol).toBe('http:')
    expect(root.hostname).toBe('botgate')
    expect(root.pathname).toBe('/')
    expect(config.egress.listen).toBe(`0.0.0.0:${root.port}`)
    expect(botgate.networks).toContain('backend')
    expect(JSON.stringify(botgate.ports)).not.toContain(root.port)
    // The bot reaches nothing but the internal network: botgate alone calls Telegram.
    expect(bot.networks).toEqual(['backend'])
    expect(compose.networks.backend.internal).toBe(true)
  })

  it("trusts the edge network's gateway, where the published port arrives; keeps the rest internal", () => {
    const edge = compose.networks.edge.ipam.config[0]
    expect(config.trusted_proxies).toEqual([edge.gateway])
    expect(edge.subnet.startsWith(edge.gateway.split('.').slice(0, 3).join('.'))).toBe(true)
    expect(botgate.networks).toEqual(['edge', 'backend'])
    expect(compose.networks.backend.internal).toBe(true)
    expect(redis.networks).toEqual(['backend'])
    expect(bot.networks).toEqual(['backend'])
  })

  it('passes `botgate check` as the container loads it', async () => {
    const fs = new ContainerFs(tempDir())
    fs.mount('/run/secrets', placeholders())
    fs.mount(path.posix.dirname(CONFIG_PATH), {
      'gateway.yaml': fs.translate(readFileSync(path.join(CONFIG_DIR, 'gateway.yaml'), 'utf8')),
      'policy.yaml': readFileSync(path.join(CONFIG_DIR, 'policy.yaml'), 'utf8'),
    })
    const result = await runCli(['check', '--config', fs.path(CONFIG_PATH)], {
      env: { SHOP_PATH: 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6' },
    })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('store redis')
    expect(result.stdout).toContain('limits [{"name":"per-chat"')
    expect(result.stdout).toContain('outbound {"allow_methods":["messaging"]}')
    expect(result.stdout).toContain('egress: listen 0.0.0.0:8082 is not loopback') // the warning, as documented
  })
})

describe.skipIf(!redisServerAvailable())('the compose stack, run without Docker', () => {
  const fs = new ContainerFs(tempDir())
  const secrets = placeholders()
  const PATH = '/tg/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6'
  const TOKEN = secrets.shop_bot_token as string
  let server: RedisServer
  let api: FakeBotApi
  let pythonBot: RunningProcess
  let gateway: RunningGateway

  beforeAll(async () => {
    fs.mount('/run/secrets', secrets)
    // Redis as compose starts it: the password from the secret file.
    server = await RedisServer.start(['--requirepass', secrets.redis_password as string])
    api = await FakeBotApi.start([TOKEN]) // Telegram, beyond the edge network
    const botPort = await freePort()
    gateway = await RunningGateway.start({
      config: deployConfig(path.join(CONFIG_DIR, 'gateway.yaml'), fs, [
        [['listen'], '127.0.0.1:0'],
        [['admin', 'listen'], '127.0.0.1:0'],
        [['egress', 'listen'], '127.0.0.1:0'],
        [['egress', 'api_base'], api.url],
        [['trusted_proxies'], ['127.0.0.1']], // the test plays the host's reverse proxy
        [['store', 'url'], `redis://127.0.0.1:${server.port}`],
        [['bots', 0, 'upstream', 'url'], `http://127.0.0.1:${botPort}/webhook`],
      ]),
      files: { 'policy.yaml': readFileSync(path.join(CONFIG_DIR, 'policy.yaml'), 'utf8') },
      env: { SHOP_PATH: PATH.slice(4) },
    })
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    // The bot service's environment, its files at their mount paths and botgate's egress at the
    // test's address (http://botgate:8082 in compose).
    const environment = Object.fromEntries(
      Object.entries(bot.environment as Record<string, string>).map(([name, value]) => [
        name,
        name.endsWith('_FILE') ? fs.path(value) : value,
      ]),
    )
    pythonBot = await RunningProcess.start('python3', [path.join(ROOT, 'examples/python-echo/bot.py')], {
      env: {
        ...environment,
        HOST: '127.0.0.1',
        PORT: String(botPort),
        BOT_API_ROOT: `http://${started.egress as string}`,
      },
      ready: /listening on .*\(calls through botgate's egress\)/,
    })
  }, 60_000)

  afterAll(async () => {
    expect(await gateway.stop()).toBe(0)
    await pythonBot.stop()
    await api.close()
    await server.kill()
  })

  /** Telegram's delivery, through the reverse proxy on the host. */
  const deliver = (update: Record<string, unknown>) =>
    post(
      `${gateway.webhook}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(secrets.shop_secret as string, 'x-forwarded-for', '149.154.167.197'),
    )

  it("forwards an update to the bot, whose answer reaches Telegram through botgate's egress with the token", async () => {
    const update = messageUpdate({ chat: { id: 9001, type: 'private' }, text: 'hi from compose' })
    const reply = await deliver(update)
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('') // the answer goes out as a call, not as a webhook reply
    const [sent] = await api.waitForCalls('sendMessage', 1)
    expect(sent).toMatchObject({ token: TOKEN, params: { chat_id: 9001, text: 'hi from compose' } })
    // The bot runs without the token: not in its environment, nor in any log line.
    const environ = readFileSync(`/proc/${pythonBot.child.pid}/environ`, 'utf8')
    expect(environ).not.toContain(TOKEN)
    expect(environ).toContain(`BOT_CREDENTIAL_FILE=${fs.path(bot.environment.BOT_CREDENTIAL_FILE)}`)
    for (const text of [gateway.stdout, gateway.stderr, pythonBot.stdout, pythonBot.stderr])
      expect(text).not.toContain(TOKEN)
  })

  it('deduplicates a redelivery in Redis', async () => {
    const update = messageUpdate({ chat: { id: 9003, type: 'private' }, text: 'once' })
    expect((await deliver(update)).status).toBe(200)
    const again = await deliver(update)
    expect(again.status).toBe(200)
    expect(again.body).toBe('')
    expect(await gateway.requestLine(again.headers['x-request-id'] as string)).toMatchObject({
      reason: 'duplicate_update',
    })
    expect(pythonBot.stdout.split(`update ${update.update_id} accepted`)).toHaveLength(2) // once
    const redisClient = client(server.url)
    await redisClient.connect()
    const keys = await keysAndCleanup(redisClient, 'botgate:')
    redisClient.disconnect()
    expect(keys.size).toBeGreaterThan(0)
    for (const ttl of keys.values()) expect(ttl).toBeGreaterThan(0)
  })

  it("applies the policy's per-chat limit: the sixth message at once gets the limit's reply", async () => {
    const chat = { id: 9002, type: 'private' }
    const before = api.callsOf('sendMessage').length
    const replies = []
    for (let i = 0; i < 6; i++) replies.push(await deliver(messageUpdate({ chat, text: `m${i}` })))
    // Five reach the bot, whose answers leave through the egress, in order (paced: a private
    // chat gets a burst of 3, then one a second).
    expect(replies.slice(0, 5).map((reply) => reply.body)).toEqual(['', '', '', '', ''])
    const sent = (await api.waitForCalls('sendMessage', before + 5)).slice(before)
    expect(sent.map((call) => call.params.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    // The sixth is botgate's own webhook reply: it needs no token.
    expect(replies[5]?.json()).toEqual({
      method: 'sendMessage',
      chat_id: 9002,
      text: "You're sending messages too fast.",
    })
  })

  it("refuses deleteWebhook with the bot's credential: the egress policy is outbound [messaging]", async () => {
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    const credential = secrets[path.basename(config.bots[0].egress.credential_file)] as string
    const answer = await fetch(`http://${started.egress as string}/bot${credential}/deleteWebhook`, {
      method: 'POST',
    })
    expect(answer.status).toBe(403)
    expect(api.callsOf('deleteWebhook')).toEqual([])
  })

  it('answers the health check and reports the store on /readyz', async () => {
    const ready = await fetch(`${gateway.admin}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ ok: true, store: 'up' })
  })
})
