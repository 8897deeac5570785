/**
 * The Bot API egress through the real CLI: a bot calls botgate with only its credential, botgate
 * calls the fake Bot API with the real token. JSON, form and multipart calls; a wrong credential
 * (Telegram's 401); deleteWebhook refused and logged; the token replaced in answers; a file
 * download and a 100 MB upload streamed with botgate's RSS bounded; grammY pointed at botgate.
 * The token never appears in a log line, an answer or /metrics.
 */

import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Bot } from 'grammy'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiError, FakeBotApi, tooManyRequests } from './helpers/bot-api.js'
import { botConfig, RunningGateway, secret } from './helpers/gateway.js'

const TOKEN = '4242:AAHreal-token-0123456789abcdefghijklmnop'
const CREDENTIAL = '4242:local-credential-ZYXWVUTSRQPONMLKJIHGF'

function egressConfig(apiBase: string, allow = '[any]'): string {
  return botConfig({
    upstream: 'http://127.0.0.1:9',
    secret: secret(),
    top: `egress: { listen: 127.0.0.1:0, api_base: "${apiBase}" }`,
    bot: `    token: "${TOKEN}"
    egress:
      credential: "${CREDENTIAL}"`,
    policy: `sources: { allow: [any] }\noutbound: { allow_methods: ${allow} }`,
  })
}

async function call(
  base: string,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const response = await fetch(`${base}${path}`, init)
  const text = await response.text()
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown>, text }
}

function everythingSeen(gateway: RunningGateway): string {
  return gateway.stdout + gateway.stderr
}

describe('egress against the fake Bot API', () => {
  let api: FakeBotApi
  let gateway: RunningGateway
  let egress: string

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    gateway = await RunningGateway.start({ config: egressConfig(api.url) })
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    egress = `http://${started.egress as string}`
  })

  afterAll(async () => {
    await gateway?.stop()
    await api?.close()
  })

  it('swaps the credential for the token on a JSON call', async () => {
    const answer = await call(egress, `/bot${CREDENTIAL}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: 77, text: 'hello' }),
    })
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ ok: true, result: { chat: { id: 77 }, text: 'hello' } })
    const [sent] = api.callsOf('sendMessage')
    expect(sent?.token).toBe(TOKEN)
  })

  it('passes form-urlencoded and multipart calls on', async () => {
    const form = await call(egress, `/bot${CREDENTIAL}/sendMessage`, {
      method: 'POST',
      body: new URLSearchParams({ chat_id: '78', text: 'form' }),
    })
    expect(form.body).toMatchObject({ ok: true, result: { text: 'form' } })
    const multipart = new FormData()
    multipart.set('chat_id', '79')
    multipart.set('document', new Blob([Buffer.from('file bytes')], { type: 'text/plain' }), 'a.txt')
    await call(egress, `/bot${CREDENTIAL}/sendDocument`, { method: 'POST', body: multipart })
    const [document] = api.callsOf('sendDocument')
    expect(document?.token).toBe(TOKEN)
    expect(document?.params.chat_id).toBe('79')
    expect(document?.files.document?.content.toString()).toBe('file bytes')
  })

  it("answers a wrong credential with Telegram's 401 and never reaches the Bot API", async () => {
    const before = api.calls.length
    const answer = await call(egress, '/bot4242:not-the-credential-000000000000000000/getMe')
    expect(answer.status).toBe(401)
    expect(answer.body).toEqual({ ok: false, error_code: 401, description: 'Unauthorized' })
    const token = await call(egress, `/bot${TOKEN}/getMe`)
    expect(token.status).toBe(401)
    expect(api.calls.length).toBe(before)
  })

  it('refuses deleteWebhook under allow_methods [any], logged', async () => {
    for (const method of ['deleteWebhook', 'DELETEWEBHOOK', 'setWebhook', 'logOut', 'close', 'getUpdates']) {
      const answer = await call(egress, `/bot${CREDENTIAL}/${method}`, { method: 'POST' })
      expect(answer.status).toBe(403)
      expect(answer.body).toEqual({
        ok: false,
        error_code: 403,
        description: 'Forbidden: method not allowed by botgate policy',
      })
    }
    expect(api.callsOf('deleteWebhook')).toHaveLength(0)
    const line = await gateway.waitFor((l) => l.msg === 'egress call' && l.method === 'deleteWebhook')
    expect(line).toMatchObject({ bot: 'bot', status: 403, reason: 'method_not_allowed' })
  })

  it('replaces the token in answers', async () => {
    api.failNext('sendMessage', apiError(400, `Bad Request: bot${TOKEN} said no`))
    const answer = await call(egress, `/bot${CREDENTIAL}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: 1, text: 'x' }),
    })
    expect(answer.status).toBe(400)
    expect(answer.body.description).toBe(`Bad Request: bot${CREDENTIAL} said no`)
    expect(answer.text).not.toContain(TOKEN)
  })

  it('serves grammY configured with only the credential', async () => {
    const bot = new Bot(CREDENTIAL, { client: { apiRoot: egress } })
    const me = await bot.api.getMe()
    expect(me.id).toBe(4242)
    const sent = await bot.api.sendMessage(90, 'from grammY')
    expect(sent.text).toBe('from grammY')
    await expect(bot.api.deleteWebhook()).rejects.toThrow(/method not allowed by botgate policy/)
  })

  it('never shows the token in logs or metrics', async () => {
    await gateway.waitFor((l) => l.msg === 'egress call' && l.method === 'getMe')
    expect(everythingSeen(gateway)).not.toContain(TOKEN)
    expect(everythingSeen(gateway)).not.toContain(CREDENTIAL)
    const metrics = await gateway.metrics()
    expect(metrics).not.toContain(TOKEN)
    expect(metrics).not.toContain(CREDENTIAL)
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="bot",method="deleteWebhook",status="403",via="egress",reason="method_not_allowed"\} [1-9]/,
    )
    expect(metrics).toMatch(
      /botgate_egress_calls_total\{bot="",method="other",status="401",via="egress",reason=""\} [1-9]/,
    )
  })
})

/** A Bot API stand-in for big bodies: counts upload bytes without keeping them, serves a big file. */
class BigFileApi {
  uploaded = 0
  /** Uploads received to their end (an upload botgate stopped never gets there). */
  completed = 0
  paths: string[] = []
  readonly #server: http.Server

  constructor(readonly fileBytes: number) {
    this.#server = http.createServer((request, response) => {
      this.paths.push(request.url ?? '')
      if (request.url?.startsWith('/file/')) {
        // The token inside the file, split across write boundaries, is replaced too.
        const chunk = Buffer.alloc(64 * 1024, 'a')
        const marker = Buffer.from(`[bot${TOKEN}]`)
        response.writeHead(200, { 'content-type': 'application/octet-stream' })
        let sent = 0
        const write = (): void => {
          while (sent < this.fileBytes) {
            const half = Math.floor(marker.length / 2)
            sent += chunk.length + marker.length
            response.write(chunk)
            response.write(marker.subarray(0, half))
            if (!response.write(marker.subarray(half))) return void response.once('drain', write)
          }
          response.end()
        }
        write()
        return
      }
      request.on('data', (data: Buffer) => {
        this.uploaded += data.length
      })
      request.on('end', () => {
        this.completed++
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ ok: true, result: { received: this.uploaded } }))
      })
    })
  }

  listen(): Promise<string> {
    return new Promise((resolve) =>
      this.#server.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`),
      ),
    )
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1])
  return kb / 1024
}

describe('egress streams big bodies', () => {
  let api: BigFileApi
  let gateway: RunningGateway
  let egress: string

  beforeAll(async () => {
    api = new BigFileApi(20 * 1024 * 1024)
    const url = await api.listen()
    // Above Telegram's 50 MB: the upload below is 100 MB.
    gateway = await RunningGateway.start({
      config: egressConfig(url).replace(`api_base: "${url}" }`, `api_base: "${url}", max_upload: 200MiB }`),
    })
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    egress = `http://${started.egress as string}`
  })

  afterAll(async () => {
    await gateway?.stop()
    await api?.close()
  })

  it('streams a 100 MB upload with RSS bounded', async () => {
    const pid = gateway.child.pid as number
    const before = rssMb(pid)
    const total = 100 * 1024 * 1024
    const piece = Buffer.alloc(256 * 1024, 'b')
    let peak = before
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller: ReadableStreamDefaultController<Uint8Array>) {
        peak = Math.max(peak, rssMb(pid))
        if (sent >= total) return controller.close()
        sent += piece.length
        controller.enqueue(piece)
      },
    })
    const answer = await call(egress, `/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body,
      duplex: 'half',
    } as RequestInit)
    expect(answer.body).toEqual({ ok: true, result: { received: total } })
    expect(api.paths.at(-1)).toBe(`/bot${TOKEN}/sendDocument`)
    // A buffered body would add at least its 100 MB; streaming adds the allocator's churn, which
    // plateaus (measured: about 36 MB for 60 MB, 41 MB for 150 MB).
    expect(peak - before).toBeLessThan(70)
  })

  it('streams a 20 MB download with the token replaced, also across chunk boundaries', async () => {
    const response = await fetch(`${egress}/file/bot${CREDENTIAL}/documents/file_1.bin`)
    expect(response.status).toBe(200)
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(api.paths.at(-1)).toBe(`/file/bot${TOKEN}/documents/file_1.bin`)
    expect(bytes.includes(Buffer.from(TOKEN))).toBe(false)
    const markers = bytes.toString('latin1').split(`[bot${CREDENTIAL}]`).length - 1
    expect(markers).toBeGreaterThan(300)
    expect(bytes.length).toBeGreaterThan(20 * 1024 * 1024)
  })
})

describe('egress.max_upload and egress.timeout', () => {
  let api: BigFileApi
  let silent: http.Server
  let gateway: RunningGateway
  let slowGateway: RunningGateway
  let egress: string
  let slowEgress: string

  beforeAll(async () => {
    api = new BigFileApi(0)
    const url = await api.listen()
    // A Bot API that takes calls and never answers them.
    silent = http.createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()))
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    ;[gateway, slowGateway] = await Promise.all([
      RunningGateway.start({
        config: egressConfig(url).replace(`api_base: "${url}" }`, `api_base: "${url}", max_upload: 1MiB }`),
      }),
      RunningGateway.start({
        config: egressConfig(silentUrl).replace(
          `api_base: "${silentUrl}" }`,
          `api_base: "${silentUrl}", timeout: 1s, pacing: { enabled: false } }`,
        ),
      }),
    ])
    const address = async (g: RunningGateway) =>
      `http://${(await g.waitFor((line) => line.msg === 'botgate listening')).egress as string}`
    egress = await address(gateway)
    slowEgress = await address(slowGateway)
  })

  afterAll(async () => {
    await gateway?.stop()
    await slowGateway?.stop()
    await api?.close()
    silent?.closeAllConnections()
    silent?.close()
  })

  const tooLarge = {
    ok: false,
    error_code: 413,
    description: 'Request Entity Too Large: the upload is larger than botgate allows (egress.max_upload)',
  }

  it("answers an upload declared larger than the cap with Telegram's 413, sending nothing", async () => {
    const answer = await call(egress, `/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: Buffer.alloc(2 * 1024 * 1024, 'a'),
    })
    expect(answer.status).toBe(413)
    expect(answer.body).toEqual(tooLarge)
    expect(api.paths).toHaveLength(0)
  })

  it('stops a streamed upload at the cap, before Telegram has all of it', async () => {
    const piece = Buffer.alloc(64 * 1024, 'b')
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller: ReadableStreamDefaultController<Uint8Array>) {
        if (sent >= 4 * 1024 * 1024) return controller.close()
        sent += piece.length
        controller.enqueue(piece)
      },
    })
    const answer = await call(egress, `/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body,
      duplex: 'half',
    } as RequestInit)
    expect(answer.status).toBe(413)
    expect(answer.body).toEqual(tooLarge)
    expect(api.completed).toBe(0)
    expect(api.uploaded).toBeLessThanOrEqual(1024 * 1024)
    const line = await gateway.waitFor((l) => l.msg === 'egress call' && l.reason === 'upload_too_large')
    expect(line).toMatchObject({ status: 413, method: 'sendDocument' })
  })

  it('passes an upload at the cap', async () => {
    const answer = await call(egress, `/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: Buffer.alloc(1024 * 1024, 'c'),
    })
    expect(answer.body).toEqual({ ok: true, result: { received: expect.any(Number) } })
    expect(api.completed).toBe(1)
  })

  it("answers Telegram's 504 shape when the Bot API does not answer within egress.timeout", async () => {
    const started = performance.now()
    const answer = await call(slowEgress, `/bot${CREDENTIAL}/getMe`)
    expect(answer.status).toBe(504)
    expect(answer.body).toEqual({
      ok: false,
      error_code: 504,
      description: 'Gateway Timeout: the Bot API did not answer in time',
    })
    expect(performance.now() - started).toBeGreaterThan(900)
    expect(performance.now() - started).toBeLessThan(10_000)
  })
})

describe('egress pacing: Telegram flood limits kept for the bot', () => {
  let api: FakeBotApi
  let gateway: RunningGateway
  let egress: string

  beforeAll(async () => {
    api = await FakeBotApi.start([TOKEN])
    gateway = await RunningGateway.start({
      config: egressConfig(api.url).replace(
        `api_base: "${api.url}" }`,
        `api_base: "${api.url}", pacing: { group_chat: "10/s", private_chat: "100/s", max_wait: 5s } }`,
      ),
    })
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    egress = `http://${started.egress as string}`
  })

  afterAll(async () => {
    await gateway?.stop()
    await api?.close()
  })

  const send = (chatId: number, text: string) =>
    call(egress, `/bot${CREDENTIAL}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: chatId, text }),
    })

  it("sends a burst to one group at the group's pace, in order, nothing lost", async () => {
    const started = performance.now()
    const answers = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const answer = await send(-100777, `m${i}`)
        return { ...answer, at: performance.now() - started }
      }),
    )
    expect(answers.every((answer) => answer.status === 200)).toBe(true)
    const texts = api.callsOf('sendMessage').filter((c) => c.params.chat_id === -100777)
    expect(texts.map((c) => c.params.text)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`))
    // 10 a second, one at once: the twelfth leaves 1.1 s after the first (a margin for timers).
    expect(Math.max(...answers.map((answer) => answer.at))).toBeGreaterThan(1000)
  })

  it('retries a call Telegram answers 429, after the retry_after it names, and the bot sees only the success', async () => {
    const before = api.callsOf('sendMessage').length
    api.failNext('sendMessage', tooManyRequests(1))
    const started = performance.now()
    const answer = await send(4242, 'after the flood')
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ ok: true, result: { text: 'after the flood' } })
    expect(performance.now() - started).toBeGreaterThan(900)
    expect(api.callsOf('sendMessage').length - before).toBe(2)
    const line = await gateway.waitFor(
      (l) =>
        l.msg === 'egress call' &&
        l.method === 'sendMessage' &&
        typeof l.queued_ms === 'number' &&
        (l.queued_ms as number) > 900,
    )
    expect(line).toMatchObject({ bot: 'bot', status: 200 })
  })

  it("answers Telegram's own 429 when a call would wait longer than max_wait", async () => {
    const burst = await Promise.all(Array.from({ length: 70 }, (_, i) => send(-100888, `x${i}`)))
    const refused = burst.filter((answer) => answer.status === 429)
    // 10 a second with at most 5 s of waiting: about 50 go, the rest are refused at once.
    expect(refused.length).toBeGreaterThan(0)
    expect(refused[0]?.body).toMatchObject({
      ok: false,
      error_code: 429,
      parameters: { retry_after: expect.any(Number) },
    })
    expect(burst.filter((answer) => answer.status === 200).length).toBeGreaterThan(30)
  })

  it('answers a streamed upload the pacing refuses, its body drained', async () => {
    // Telegram pauses the chat for longer than max_wait: its later calls are refused at once.
    api.failNext('sendMessage', tooManyRequests(30))
    expect((await send(-100999, 'flooded')).status).toBe(429)
    // Streamed (chunked, 16 MiB: more than sockets buffer), chat_id before the file: paced by that
    // chat. node:http keeps sending the body after the answer, as a plain bot's client would.
    const request = http.request(`${egress}/bot${CREDENTIAL}/sendDocument`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=up' },
    })
    const answered = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      request.on('response', (response) => {
        let text = ''
        response.on('data', (chunk: Buffer) => {
          text += chunk
        })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }))
      })
      request.on('error', reject)
    })
    const sent = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000)
      request.on('finish', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    request.write('--up\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n-100999\r\n')
    request.write('--up\r\nContent-Disposition: form-data; name="document"; filename="u.bin"\r\n\r\n')
    for (let i = 0; i < 256; i++) request.write(Buffer.alloc(64 * 1024, 'u'))
    request.end('\r\n--up--\r\n')
    const upload = await answered
    expect(upload.status).toBe(429)
    expect(upload.body).toMatchObject({
      ok: false,
      error_code: 429,
      parameters: { retry_after: expect.any(Number) },
    })
    expect(api.callsOf('sendDocument').filter((c) => c.params.chat_id === '-100999')).toHaveLength(0)
    // botgate reads and drops the rest of the body: the bot's upload finishes.
    expect(await sent).toBe(true)
  })
})

describe('egress alerts', () => {
  const ALERT_TOKEN = '777000:alert-bot-token-egress_ABCDEFGHIJKLM'
  let api: FakeBotApi
  let gateway: RunningGateway
  let egress: string

  beforeAll(async () => {
    // The fake Bot API knows the alert bot, not the shop bot's token: as if it had been revoked.
    api = await FakeBotApi.start([ALERT_TOKEN])
    gateway = await RunningGateway.start({
      config: egressConfig(api.url).replace(
        'egress: {',
        `alerts: { token: "${ALERT_TOKEN}", chat_id: -100123, api_base: "${api.url}", interval: 2s }\negress: {`,
      ),
    })
    const started = await gateway.waitFor((line) => line.msg === 'botgate listening')
    egress = `http://${started.egress as string}`
  })

  afterAll(async () => {
    await gateway?.stop()
    await api?.close()
  })

  it('raises egress_token_rejected when Telegram refuses the token, naming the bot only', async () => {
    const answer = await call(egress, `/bot${CREDENTIAL}/getMe`)
    expect(answer.status).toBe(401)
    expect(answer.text).not.toContain(TOKEN)
    const [alert] = await api.waitForCalls('sendMessage', 1)
    expect(alert?.token).toBe(ALERT_TOKEN)
    expect(String(alert?.params.text)).toContain('egress_token_rejected')
    expect(String(alert?.params.text)).toContain('By bot: bot 1')
    expect(JSON.stringify(api.calls)).not.toContain(CREDENTIAL)
  })
})
