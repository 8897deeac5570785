/**
 * The egress of a config without an `egress` section: no listener, yet a reply executor for every
 * bot with a token (its calls go to Telegram's Bot API, which is why this test makes none).
 */

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { botConfig, secret, tempDir } from '../../test/helpers/gateway.js'
import { loadConfig } from '../config/load.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { MemoryStore } from '../store/memory.js'
import { Egress } from './index.js'

describe('Egress without an egress section', () => {
  it('has no listener, and a reply executor that refuses what the policy refuses', async () => {
    const file = path.join(tempDir(), 'gateway.yaml')
    writeFileSync(
      file,
      botConfig({
        upstream: 'http://127.0.0.1:9',
        secret: secret(),
        bot: '    token: "7171:AAHno-egress-token-0123456789abcdefghij"',
        policy: 'sources: { allow: [any] }\noutbound: { allow_methods: [sendMessage] }',
      }),
    )
    const config = loadConfig(file)
    expect(config.egress).toBeUndefined()
    const egress = new Egress(
      config,
      pino({ level: 'silent' }),
      new GatewayMetrics('test'),
      new MemoryStore(),
    )
    expect(egress.server).toBeUndefined()
    const body = Buffer.from(JSON.stringify({ method: 'sendPhoto', chat_id: 1, photo: 'x' }))
    expect(await egress.replies.execute('bot', 'application/json', body)).toEqual({
      status: 403,
      method: 'sendPhoto',
      errorCode: 403,
      reason: 'reply_method_not_allowed',
    })
    await egress.close()
  })
})
