/**
 * deploy/kubernetes/shared run without a cluster: two `botgate serve` replicas on the pool's
 * config (mounted as the pod mounts it, with the listeners, Redis and the bot's Service at the
 * test's addresses) share one real Redis, in front of the Python example bot. A redelivery that
 * reaches the other replica is deduplicated, a chat's rate limit holds across replicas, and
 * when Redis goes away the shipped `on_error: local` keeps both forwarding and ready.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
  const fs = new ContainerFs(tempDir())
  let server: RedisServer
  let pythonBot: RunningProcess
  const replicas: RunningGateway[] = []

  beforeAll(async () => {
    fs.mount(mount.mountPath, secrets)
    server = await RedisServer.start(['--requirepass', secrets.redis_password as string])
    const botPort = await freePort()
    pythonBot = await RunningProcess.start('python3', [path.join(ROOT, 'examples/python-echo/bot.py')], {
      env: {
        HOST: '127.0.0.1',
        PORT: String(botPort),
        BOTGATE_UPSTREAM_SECRET: secrets.shop_upstream_secret,
      },
    })
    for (let i = 0; i < 2; i++)
      replicas.push(
        await RunningGateway.start({
          config: deployConfig(path.join(DIR, 'gateway.yaml'), fs, [
            [['listen'], '127.0.0.1:0'],
            [['admin', 'listen'], '127.0.0.1:0'],
            [['egress', 'listen'], '127.0.0.1:0'],
            [['trusted_proxies'], ['127.0.0.1']], // the test plays the ingress controller
            [['store', 'url'], `redis://127.0.0.1:${server.port}`],
            [['bots', 0, 'upstream', 'url'], `http://127.0.0.1:${botPort}/webhook`],
          ]),
          files: { 'policy.yaml': readFileSync(path.join(DIR, 'policy.yaml'), 'utf8') },
          env: { SHOP_PATH: PATH.slice(4) },
        }),
      )
  }, 60_000)

  afterAll(async () => {
    for (const replica of replicas) expect(await replica.stop()).toBe(0)
    await pythonBot.stop()
    await server.kill()
  })

  /** Telegram's delivery through the ingress, landing on replica `i`. */
  const deliver = (i: number, update: Record<string, unknown>) =>
    post(
      `${replicas[i]?.webhook}${PATH}`,
      JSON.stringify(update),
      telegramHeaders(secrets.shop_secret as string, 'x-forwarded-for', '91.108.6.10'),
    )

  it('deduplicates a redelivery that lands on the other replica', async () => {
    const update = messageUpdate({ chat: { id: 7001, type: 'private' }, text: 'once' })
    expect((await deliver(0, update)).json()).toEqual({ method: 'sendMessage', chat_id: 7001, text: 'once' })
    const again = await deliver(1, update)
    expect(again.status).toBe(200)
    expect(again.body).toBe('')
    expect(await replicas[1]?.requestLine(again.headers['x-request-id'] as string)).toMatchObject({
      reason: 'duplicate_update',
    })
    expect(pythonBot.stdout.split(`update ${update.update_id} accepted`)).toHaveLength(2)
  })

  it("holds a chat's limit across replicas: burst 5, the sixth is limited whichever replica takes it", async () => {
    const chat = { id: 7002, type: 'private' }
    const texts = []
    for (let i = 0; i < 6; i++)
      texts.push((await deliver(i % 2, messageUpdate({ chat, text: `m${i}` }))).json<{ text: string }>().text)
    expect(texts).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', "You're sending messages too fast."])
  })

  it('keeps forwarding and stays ready when Redis goes away (on_error: local)', async () => {
    await server.kill()
    for (const [i, replica] of replicas.entries()) {
      const reply = await deliver(
        i,
        messageUpdate({ chat: { id: 7100 + i, type: 'private' }, text: 'still here' }),
      )
      expect(reply.json()).toMatchObject({ text: 'still here' })
      expect((await fetch(`${replica.admin}/readyz`)).status).toBe(200)
      const metrics = await replica.metrics()
      expect(metrics).toMatch(/^botgate_store_fallbacks_total\{operation="[a-z]+",on_error="local"\} [1-9]/m)
    }
  })
})
