import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiError, FakeBotApi, tooManyRequests } from '../../test/helpers/bot-api.js'
import { freePort } from '../../test/helpers/upstream.js'
import { BotApi, describeFailure, displayApiBase, parseAnswer } from './bot-api.js'

const TOKEN = '4242:bot-api-client-test-token_abcdefghij'
let api: FakeBotApi

beforeAll(async () => {
  api = await FakeBotApi.start([TOKEN])
})
afterAll(() => api.close())

describe('BotApi', () => {
  it('posts JSON to <base>/bot<token>/<method>, leaving undefined parameters out', async () => {
    const client = new BotApi(TOKEN, { apiBase: `${api.url}/` })
    const result = await client.call('sendMessage', { chat_id: 5, text: 'hi', message_thread_id: undefined })
    expect(result).toMatchObject({ kind: 'ok', result: { text: 'hi' } })
    expect(api.calls.at(-1)).toMatchObject({
      token: TOKEN,
      method: 'sendMessage',
      httpMethod: 'POST',
      contentType: 'application/json',
      params: { chat_id: 5, text: 'hi' },
    })
  })

  it('sends multipart/form-data with files, other parameters as fields (lists JSON-serialized)', async () => {
    const client = new BotApi(TOKEN, { apiBase: api.url })
    const content = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    await client.call(
      'setWebhook',
      { url: 'https://example.com/hook', allowed_updates: ['message'], drop_pending_updates: true },
      { certificate: { filename: 'cert.pem', content, type: 'application/x-pem-file' } },
    )
    const call = api.calls.at(-1)
    expect(call?.contentType).toBe('multipart/form-data')
    expect(call?.params).toEqual({
      url: 'https://example.com/hook',
      allowed_updates: '["message"]',
      drop_pending_updates: 'true',
    })
    expect(call?.files.certificate).toEqual({ filename: 'cert.pem', type: 'application/x-pem-file', content })
  })

  it("returns Telegram's error code, description and retry_after", async () => {
    const client = new BotApi(TOKEN, { apiBase: api.url })
    api.failNext('getWebhookInfo', tooManyRequests(7))
    const result = await client.call('getWebhookInfo')
    expect(result).toEqual({
      kind: 'error',
      errorCode: 429,
      description: 'Too Many Requests: retry after 7',
      retryAfter: 7,
    })
    if (result.kind !== 'ok')
      expect(describeFailure(result, api.url)).toBe(
        'Too Many Requests: retry after 7 (error 429; retry after 7 s)',
      )
    const unknown = await new BotApi('1:unknown', { apiBase: api.url }).call('getMe')
    expect(unknown).toMatchObject({ kind: 'error', errorCode: 401, description: 'Unauthorized' })
  })

  it('names an answer that is not from the Bot API by its HTTP status', async () => {
    api.failNext('getMe', { status: 502, body: '<html>Bad Gateway</html>' })
    const result = await new BotApi(TOKEN, { apiBase: api.url }).call('getMe')
    expect(result).toEqual({
      kind: 'error',
      errorCode: 502,
      description: 'HTTP 502 without a Bot API answer (is the API base right?)',
      retryAfter: undefined,
    })
    expect(parseAnswer(200, '[1]')).toMatchObject({ kind: 'error', errorCode: 200 })
    api.failNext('getMe', apiError(403, 'Forbidden: bot was blocked by the user'))
    expect(await new BotApi(TOKEN, { apiBase: api.url }).call('getMe')).toMatchObject({ errorCode: 403 })
  })

  it('reports a network failure by its code only: the URL holds the token', async () => {
    const base = `http://127.0.0.1:${await freePort()}`
    const result = await new BotApi(TOKEN, { apiBase: base }).call('getMe')
    expect(result).toEqual({ kind: 'network', code: 'ECONNREFUSED' })
    if (result.kind !== 'ok') expect(describeFailure(result, base)).not.toContain(TOKEN)
  })

  it('masks credentials in an API base shown to people', () => {
    expect(displayApiBase('https://user:hunter2@proxy.example/')).toBe('https://user:****@proxy.example')
    expect(displayApiBase('not a url')).toBe('the configured API base')
  })
})
