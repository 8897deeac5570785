import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { apiError, FakeBotApi, tooManyRequests } from '../../../test/helpers/bot-api.js'
import { freePort } from '../../../test/helpers/upstream.js'
import { createLogger } from '../logger.js'
import { AlertSender, type SendTarget } from './sender.js'

const TOKEN = '123456:alert-bot-token-for-tests_0123456789'
const ALERT = { kind: 'bad_secret', text: 'botgate alert on test: bad_secret\n9 requests' } as const

let api: FakeBotApi
let lines: Record<string, unknown>[]
let waits: number[]

function logger() {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return createLogger('info', sink)
}

function sender(target: Partial<SendTarget> = {}, maxAttempts = 5) {
  return new AlertSender(
    { token: TOKEN, apiBase: api.url, chatId: -1001234567890, messageThreadId: undefined, ...target },
    {
      logger: logger(),
      maxAttempts,
      // Records the waits it is asked for instead of sleeping them.
      wait: async (ms) => {
        waits.push(ms)
      },
    },
  )
}

beforeEach(async () => {
  api = await FakeBotApi.start([TOKEN])
  lines = []
  waits = []
})

afterEach(async () => {
  await api.close()
})

describe('AlertSender', () => {
  it('sends the text with sendMessage to the chat (and topic)', async () => {
    const alerts = sender({ messageThreadId: 7 })
    alerts.enqueue(ALERT)
    await alerts.idle()
    const [call] = api.callsOf('sendMessage')
    expect(call?.contentType).toBe('application/json')
    expect(call?.params).toEqual({ chat_id: -1001234567890, message_thread_id: 7, text: ALERT.text })
    expect(lines.find((line) => line.msg === 'alert sent')).toMatchObject({ kind: 'bad_secret', attempt: 1 })
  })

  it('waits the retry_after a 429 asks for, then sends', async () => {
    api.failNext('sendMessage', tooManyRequests(3), tooManyRequests(1))
    const alerts = sender()
    alerts.enqueue(ALERT)
    await alerts.idle()
    expect(api.callsOf('sendMessage')).toHaveLength(3)
    expect(waits).toEqual([3000, 1000])
    expect(lines.filter((line) => line.msg === 'alert delayed: Telegram asked to retry later')).toHaveLength(
      2,
    )
    expect(lines.at(-1)).toMatchObject({ msg: 'alert sent', attempt: 3 })
  })

  it('backs off exponentially on 5xx answers, and gives up after its attempts', async () => {
    api.failNext('sendMessage', ...Array.from({ length: 4 }, () => apiError(502, 'Bad Gateway')))
    const alerts = sender({}, 4)
    alerts.enqueue(ALERT)
    await alerts.idle()
    expect(api.callsOf('sendMessage')).toHaveLength(4)
    expect(waits).toEqual([1000, 2000, 4000])
    expect(lines.at(-1)).toMatchObject({
      msg: 'alert not sent: giving up after retries',
      attempts: 4,
      error_code: 502,
      description: 'Bad Gateway',
    })
  })

  it('backs off on network errors, and never logs the URL with the token', async () => {
    const alerts = sender({ apiBase: `http://127.0.0.1:${await freePort()}` }, 3)
    alerts.enqueue(ALERT)
    await alerts.idle()
    expect(waits).toEqual([1000, 2000])
    expect(lines.at(-1)).toMatchObject({
      msg: 'alert not sent: giving up after retries',
      code: 'ECONNREFUSED',
    })
    expect(JSON.stringify(lines)).not.toContain(TOKEN)
    expect(JSON.stringify(lines)).not.toContain('/bot')
  })

  it('does not retry what retrying cannot fix (chat not found, bad token)', async () => {
    api.failNext('sendMessage', apiError(400, 'Bad Request: chat not found'))
    const alerts = sender()
    alerts.enqueue(ALERT)
    await alerts.idle()
    expect(api.callsOf('sendMessage')).toHaveLength(1)
    expect(lines.at(-1)).toMatchObject({
      msg: 'alert not sent: Telegram refused it',
      error_code: 400,
      description: 'Bad Request: chat not found',
    })
    const wrongToken = sender({ token: '999:not-known-to-the-fake' })
    wrongToken.enqueue(ALERT)
    await wrongToken.idle()
    expect(lines.at(-1)).toMatchObject({ msg: 'alert not sent: Telegram refused it', error_code: 401 })
    expect(waits).toEqual([])
  })

  it('sends queued alerts in order, one at a time, and follows a new target', async () => {
    const alerts = sender()
    alerts.enqueue({ kind: 'bad_secret', text: 'one' })
    alerts.enqueue({ kind: 'reload_refused', text: 'two' })
    alerts.retarget({ token: TOKEN, apiBase: api.url, chatId: '@ops_channel', messageThreadId: undefined })
    alerts.enqueue({ kind: 'store_outage', text: 'three' })
    await alerts.idle()
    expect(api.callsOf('sendMessage').map((call) => call.params.text)).toEqual(['one', 'two', 'three'])
    expect(api.callsOf('sendMessage').at(-1)?.params.chat_id).toBe('@ops_channel')
  })

  it('abandons what is left when stopped, and says so', async () => {
    const alerts = new AlertSender(
      { token: TOKEN, apiBase: api.url, chatId: 1, messageThreadId: undefined },
      { logger: logger() },
    )
    api.failNext('sendMessage', tooManyRequests(3600))
    alerts.enqueue({ kind: 'bad_secret', text: 'one' })
    alerts.enqueue({ kind: 'reload_refused', text: 'two' })
    await api.waitForCalls('sendMessage', 1)
    await alerts.stop()
    expect(api.callsOf('sendMessage')).toHaveLength(1)
    expect(lines.at(-1)).toMatchObject({
      msg: 'alerts not sent: shutting down',
      kinds: ['bad_secret', 'reload_refused'],
    })
  })
})
