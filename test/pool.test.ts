/**
 * deploy/kubernetes/shared run without a cluster: two `botgate serve` replicas on the pool's
 * config (mounted as the pod mounts it, with the listeners, Redis, the bot's Service and
 * Telegram at the test's addresses) share one real Redis, in front of the Python example bot,
 * which runs with bot.yaml's environment: no token, its credential, its Bot API calls through the
 * egress of one replica (the Service botgate-egress keeps a client on one). A redelivery that
 * reaches the other replica is deduplicated, a chat's rate limit holds across replicas, the
 * bot's answers reach Telegram with the token, and when Redis goes away the shipped
 * `on_error: local` keeps both forwarding and ready, and the egress sending.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeBotApi } from './helpers/bot-api.js'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import {
  ContainerFs,
  DEPLOY,
  deployConfig,
  find,
  type K8sObject,
  placeholderSecrets,
  readKustomization,
} from './helpers/deploy.js'
import { ROOT, RunningGateway, tempDir } from './helpers/gateway.js'
import { RunningProcess } from './helpers/process.js'
import { RedisServer, redisServerAvailable } from './helpers/redis.js'
import { freePort } from './helpers/upstream.js'

const DIR = path.join(DEPLOY, 'kubernetes/shared')
const PATH = '/tg/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6'

describe.skipIf(!redisServerAvailable())('the shared pool: two replicas, one Redis', () => {
  const kustomization = readKustomization(DIR)
  const deployment = find(kustomization.objects, 'Deployment', 'botgate')
  const mount = (deployment.spec.template.spec.containers[0].volumeMounts as K8sObject[]).find(
    (m) => m.name === 'secrets',
  ) as K8sObject
  const secrets = placeholderSecrets(kustomization.secrets.get('botgate-secrets') as string[])
  const botDeployment = find(kustomization.objects, 'Deployment', 'shop-bot')
  const botContainer = botDeployment.spec.template.spec.containers[0] as K8sObject
  const botMount = (botContainer.volumeMounts as K8sObject[])[0] as K8sObject
  const fs = new ContainerFs(tempDir())
  let server: RedisServer
  let api: FakeBotApi
  let pythonBot: RunningProcess
  const replicas: RunningGateway[] = []

  beforeAll(async () => {
    fs.mount(mount.mountPath, secrets)
    // shop-bot-secrets: the same files' values, under the bot's own mount.
    fs.mount(
      botMount.mountPath,
      Object.fromEntries(
        (kustomization.secrets.get('shop-bot-secrets') as string[]).map((key) => [
          key,
          secrets[key] as string,
        ]),
      ),
    )
    server = await RedisServer.start(['--requirepass', secrets.redis_password as string])
    api = await FakeBotApi.start([secrets.shop_bot_token as string])
    const botPort = await freePort()
    for (let i = 0; i < 2; i++)
      replicas.push(
        await RunningGateway.start({
          config: deployConfig(path.join(DIR, 'gateway.yaml'), fs, [
            [['listen'], '127.0.0.1:0'],
            [['admin', 'listen'], '127.0.0.1:0'],
            [['egress', 'listen'], '127.0.0.1:0'],
            [['egress', 'api_base'], api.url],
            [['trusted_proxies'], ['127.0.0.1']], // the test plays the ingress controller
            [['store', 'url'], `redis://127.0.0.1:${server.port}`],
            [['bots', 0, 'upstream', 'url'], `http://127.0.0.1:${botPort}/webhook`],
          ]),
          files: { 'policy.yaml': readFileSync(path.join(DIR, 'policy.yaml'), 'utf8') },
          env: { SHOP_PATH: PATH.slice(4) },
        }),
      )
    // bot.yaml's environment, its files at their mount paths; http://botgate-egress:8082 is the
    // first replica's egress here.
    const listening = await replicas[0]?.waitFor((line) => line.msg === 'botgate listening')
    const environment = Object.fromEntries(
      (botContainer.env as K8sObject[]).map((variable) => [
        variable.name as string,
        variable.name.endsWith('_FILE') ? fs.path(variable.value) : (variable.value as string),
      ]),
    )
    pythonBot = await RunningProcess.start('python3', [path.join(ROOT, 'examples/python-echo/bot.py')], {
      env: {
        ...environment,
        HOST: '127.0.0.1',
        PORT: String(botPort),
        BOT_API_ROOT: `http://${listening?.egress as string}`,
      },
      ready: /listening on .*\(calls through botgate's egress\)/,
    })
  }, 60_000)

  afterAll(async () => {
    for (const replica of replicas) expect(await replica.stop()).toBe(0)
    await pythonBot.stop()
    await api.close()
    await server.kill()
  })

  /** The texts the bot sent to a chat through the egress, once `count` arrived (bounded wait). */
  async function sentTo(chatId: number, count: number): Promise<unknown[]> {
    const deadline = Date.now() + 15_000
    const texts = () =>
      api
        .callsOf('sendMessage')
        .filter((call) => call.params.chat_id === chatId)
        .map((call) => call.params.text)
    while (texts().length < count && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    return texts()
  }

  /** Telegram's delivery through the ingress, landing on replica `i`. */
  const deliver = (i: number, update: Record<string, unknown>) =>
    post(
      `${replicas[i]?.webhook}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(secrets.shop_secret as string, 'x-forwarded-for', '91.108.6.10'),
    )

  it("answers through the egress: the bot's sendMessage reaches Telegram with the token it never held", async () => {
    const update = messageUpdate({ chat: { id: 7000, type: 'private' }, text: 'via the egress' })
    const reply = await deliver(1, update)
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('')
    expect(await sentTo(7000, 1)).toEqual(['via the egress'])
    expect(api.callsOf('sendMessage')[0]?.token).toBe(secrets.shop_bot_token)
    const environ = readFileSync(`/proc/${pythonBot.child.pid}/environ`, 'utf8')
    expect(environ).not.toContain(secrets.shop_bot_token)
  })

  it('deduplicates a redelivery that lands on the other replica', async () => {
    const update = messageUpdate({ chat: { id: 7001, type: 'private' }, text: 'once' })
    expect((await deliver(0, update)).status).toBe(200)
    // botgate marks the update delivered right after its answer, in a round trip of its own: a
    // copy that lands on the other replica in between finds it still in flight and gets 503 with
    // Retry-After. Telegram then delivers it again (after a second or more); so does this loop.
    let again = await deliver(1, update)
    for (let attempt = 0; again.status === 503 && attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      again = await deliver(1, update)
    }
    expect(again.status).toBe(200)
    expect(again.body).toBe('')
    expect(await replicas[1]?.requestLine(again.headers['x-request-id'] as string)).toMatchObject({
      reason: 'duplicate_update',
    })
    expect(pythonBot.stdout.split(`update ${update.update_id} accepted`)).toHaveLength(2)
    expect(await sentTo(7001, 1)).toEqual(['once'])
  })

  it("holds a chat's limit across replicas: burst 5, the sixth is limited whichever replica takes it", async () => {
    const chat = { id: 7002, type: 'private' }
    const replies = []
    for (let i = 0; i < 6; i++) replies.push(await deliver(i % 2, messageUpdate({ chat, text: `m${i}` })))
    expect(replies.slice(0, 5).map((reply) => reply.body)).toEqual(['', '', '', '', ''])
    // The limit's reply is botgate's own webhook reply; the bot's echoes went out in order.
    expect(replies[5]?.json<{ text: string }>().text).toBe("You're sending messages too fast.")
    expect(await sentTo(7002, 5)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
  })

  it('keeps forwarding and stays ready when Redis goes away (on_error: local)', async () => {
    await server.kill()
    for (const [i, replica] of replicas.entries()) {
      const reply = await deliver(
        i,
        messageUpdate({ chat: { id: 7100 + i, type: 'private' }, text: 'still here' }),
      )
      expect(reply.status).toBe(200)
      expect(await sentTo(7100 + i, 1)).toEqual(['still here'])
      expect((await fetch(`${replica.admin}/readyz`)).status).toBe(200)
      const metrics = await replica.metrics()
      expect(metrics).toMatch(/^botgate_store_fallbacks_total\{operation="[a-z]+",on_error="local"\} [1-9]/m)
    }
  })
})
