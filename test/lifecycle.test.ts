/**
 * Shutdown, reload and slow clients through the real CLI: SIGTERM drains and exits 0, SIGHUP and
 * file changes reload off the request path, a bad change is refused while the old config serves,
 * and header, body and keep-alive timeouts cut stuck clients off.
 */

import { renameSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { messageUpdate, post, raw, telegramHeaders } from './helpers/client.js'
import { RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const cleanup: (() => Promise<unknown>)[] = []

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function start(options: { policy?: string; top?: string } = {}) {
  const upstream = await TestUpstream.start()
  cleanup.push(() => upstream.close())
  const gateway = await RunningGateway.start({
    config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
${options.top ?? ''}
bots:
  - name: bot
    path: ${PATH}
    secret_token: ${SECRET}
    upstream: { url: ${upstream.url}, timeout: 10s }
    policy: policy.yaml
`,
    files: { 'policy.yaml': options.policy ?? 'sources: { allow: [any] }\n' },
  })
  cleanup.push(() => gateway.stop('SIGKILL'))
  return { upstream, gateway, url: `${gateway.webhook}${PATH}` }
}

const send = (url: string) => post(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Checks a raw answer is `status` with an X-Request-Id and the error body of `reason`; returns the id. */
function expectErrorAnswer(text: string, status: number, reason: string): string {
  expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `))
  const [head = '', body] = text.split('\r\n\r\n')
  expect(body).toBe(JSON.stringify({ ok: false, error: reason }))
  const id = /^x-request-id: (\S+)$/im.exec(head)?.[1]
  expect(id).toMatch(/^[0-9a-f-]{36}$/)
  return id as string
}

async function metric(gateway: RunningGateway, name: string): Promise<number> {
  const text = await gateway.metrics()
  const match = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)
  return Number(match?.[1])
}

describe('SIGTERM', () => {
  it('finishes in-flight requests, refuses new connections, and exits 0', async () => {
    const { upstream, gateway, url } = await start()
    upstream.respond = async (_request, response) => {
      await sleep(1500)
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"method":"sendMessage","chat_id":1,"text":"late"}')
    }
    const inFlight = send(url)
    await sleep(300)
    gateway.child.kill('SIGTERM')
    await gateway.waitFor((line) => line.msg === 'shutting down: draining in-flight requests')
    const ready = await fetch(`${gateway.admin}/readyz`).catch(() => undefined)
    if (ready) expect(ready.status).toBe(503)
    await expect(send(url)).rejects.toThrow()
    const reply = await inFlight
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('late')
    expect(await gateway.exited()).toBe(0)
    expect(gateway.lines.some((line) => line.msg === 'stopped' && line.clean === true)).toBe(true)
  })

  it('gives up on requests still running after shutdown_grace: 502 and close, logged; still exits 0', async () => {
    const { upstream, gateway, url } = await start({ top: 'shutdown_grace: 1s' })
    upstream.respond = () => undefined // never answers
    const inFlight = send(url)
    await sleep(300)
    const started = Date.now()
    gateway.child.kill('SIGTERM')
    expect(await gateway.exited()).toBe(0)
    expect(Date.now() - started).toBeLessThan(5000)
    const reply = await inFlight
    expect(reply.status).toBe(502)
    expect(reply.headers.connection).toBe('close')
    expect(reply.json()).toEqual({ ok: false, error: 'upstream_unreachable' })
    expect(await gateway.requestLine(reply.headers['x-request-id'] as string)).toMatchObject({
      status: 502,
      detail: 'cut off at shutdown (shutdown_grace passed)',
    })
    expect(gateway.lines.some((line) => line.msg === 'stopped' && line.clean === false)).toBe(true)
  })

  it('past its grace also cuts forwards still running on a config replaced by a reload', async () => {
    const { upstream, gateway, url } = await start({ top: 'shutdown_grace: 1s' })
    upstream.respond = () => undefined // never answers
    const inFlight = send(url)
    await sleep(300)
    writeFileSync(
      path.join(gateway.dir, 'policy.yaml'),
      'sources: { allow: [any] }\nupdates: { unknown: drop }\n',
    )
    gateway.child.kill('SIGHUP')
    await gateway.waitFor((line) => line.msg === 'config reloaded')
    const started = Date.now()
    gateway.child.kill('SIGTERM')
    expect(await gateway.exited()).toBe(0)
    expect(Date.now() - started).toBeLessThan(5000) // not the upstream's 10 s timeout
    const reply = await inFlight
    expect(reply.status).toBe(502)
    expect(await gateway.requestLine(reply.headers['x-request-id'] as string)).toMatchObject({
      detail: 'cut off at shutdown (shutdown_grace passed)',
    })
  })

  it('exits 0 on SIGINT too', async () => {
    const { gateway } = await start()
    expect(await gateway.stop('SIGINT')).toBe(0)
  })
})

describe('reload', () => {
  it('SIGHUP applies a changed policy', async () => {
    const { gateway, url } = await start()
    expect((await send(url)).status).toBe(200)
    writeFileSync(path.join(gateway.dir, 'policy.yaml'), 'sources: { allow: [telegram] }\n')
    gateway.child.kill('SIGHUP')
    await gateway.waitFor((line) => line.msg === 'config reloaded')
    expect((await send(url)).status).toBe(403)
    expect(await metric(gateway, 'botgate_config_reloads_total{result="success"}')).toBeGreaterThanOrEqual(1)
  })

  it('a saved file reloads by itself, including an editor-style rename over the old file', async () => {
    const { gateway, url } = await start()
    const temp = path.join(gateway.dir, '.policy.yaml.swp')
    writeFileSync(temp, 'sources: { allow: [telegram] }\n')
    renameSync(temp, path.join(gateway.dir, 'policy.yaml'))
    await gateway.waitFor((line) => line.msg === 'config reloaded' && line.trigger === 'file change')
    expect((await send(url)).status).toBe(403)
  })

  it('refuses an invalid change, says why, and keeps serving the old config', async () => {
    const { gateway, url } = await start()
    writeFileSync(path.join(gateway.dir, 'policy.yaml'), 'sources: { allow: [] }\n')
    const refused = await gateway.waitFor(
      (line) => line.msg === 'config reload refused: the running config stays in effect',
    )
    expect(refused.level).toBe('error')
    expect(refused.problems).toEqual([
      'policy.yaml:1:19 sources.allow: must not be empty (write [any] to allow every address explicitly)',
    ])
    expect((await send(url)).status).toBe(200)
    expect(await metric(gateway, 'botgate_config_reloads_total{result="failure"}')).toBe(1)
    gateway.child.kill('SIGHUP')
    await gateway.waitFor(
      (line) =>
        line.msg === 'config reload refused: the running config stays in effect' && line.trigger === 'SIGHUP',
    )
    expect((await send(url)).status).toBe(200)
    // Fixing the file applies it.
    writeFileSync(path.join(gateway.dir, 'policy.yaml'), 'sources: { allow: [telegram] }\n')
    await gateway.waitFor((line) => line.msg === 'config reloaded')
    expect((await send(url)).status).toBe(403)
  })

  it('lets requests in flight during a reload finish on the config they started with', async () => {
    const { upstream, gateway, url } = await start()
    upstream.respond = async (_request, response) => {
      await sleep(800)
      response.writeHead(200).end()
    }
    const inFlight = send(url)
    await sleep(200)
    writeFileSync(path.join(gateway.dir, 'policy.yaml'), 'sources: { allow: [telegram] }\n')
    gateway.child.kill('SIGHUP')
    await gateway.waitFor((line) => line.msg === 'config reloaded')
    expect((await inFlight).status).toBe(200)
  })
})

describe('slow clients', () => {
  const timeouts = 'timeouts: { header: 1s, body: 2s, keep_alive: 1s }'

  it('cuts off a client that never finishes its headers: 408 request_timeout, logged', async () => {
    const { gateway, url } = await start({ top: timeouts })
    const started = Date.now()
    const reply = await raw(url, `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: app`, [], 8000)
    expect(reply.closed).toBe(true)
    expect(Date.now() - started).toBeLessThan(6000)
    const id = expectErrorAnswer(reply.text, 408, 'request_timeout')
    const line = await gateway.requestLine(id)
    expect(line).toMatchObject({ reason: 'request_timeout', status: 408, bot: '-', ip: '127.0.0.1' })
  })

  it('cuts off a client that never finishes its body: 408 request_timeout, logged under its bot', async () => {
    const { gateway, upstream, url } = await start({ top: timeouts })
    const before = upstream.received.length
    const started = Date.now()
    const reply = await raw(
      url,
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: 100\r\n\r\n{"update_id":`,
      [],
      8000,
    )
    expect(reply.closed).toBe(true)
    expect(Date.now() - started).toBeLessThan(6000)
    expect(upstream.received.length).toBe(before)
    const id = expectErrorAnswer(reply.text, 408, 'request_timeout')
    const line = await gateway.requestLine(id)
    expect(line).toMatchObject({ reason: 'request_timeout', status: 408, bot: 'bot' })
    expect(line.detail).toBe('body not complete within timeouts.body')
  })

  it('does not count the upstream time against the client: a reply after timeouts.body still arrives', async () => {
    const { upstream, url } = await start({ top: timeouts })
    upstream.respond = async (_request, response) => {
      await sleep(3000)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"method":"sendMessage"}')
    }
    const reply = await send(url)
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('{"method":"sendMessage"}')
  })

  it('answers HTTP it cannot read with 400 bad_request, and oversized headers with 431, logged', async () => {
    const { gateway, url } = await start({ top: timeouts })
    const garbage = await raw(url, 'NOT HTTP AT ALL\r\n\r\n')
    const garbageId = expectErrorAnswer(garbage.text, 400, 'bad_request')
    expect(await gateway.requestLine(garbageId)).toMatchObject({
      reason: 'bad_request',
      status: 400,
      bot: '-',
    })
    const huge = await raw(url, `POST ${PATH} HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`)
    const hugeId = expectErrorAnswer(huge.text, 431, 'bad_request')
    expect(await gateway.requestLine(hugeId)).toMatchObject({ detail: 'HPE_HEADER_OVERFLOW', status: 431 })
    expect(
      await metric(gateway, 'botgate_requests_total{bot="-",reason="bad_request",outcome="rejected"}'),
    ).toBe(2)
  })

  it('a pipelined request with slow headers: the answer before it goes out and closes; it is never forwarded', async () => {
    const { gateway, upstream, url } = await start({ top: timeouts })
    upstream.respond = async (_request, response) => {
      await sleep(2500)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    }
    // Two updates (not a duplicate, which dedupe alone would keep from the upstream).
    const [first, second] = [JSON.stringify(messageUpdate()), JSON.stringify(messageUpdate())]
    const head = (body: string) =>
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    const { port } = new URL(url)
    const socket = net.connect(Number(port), '127.0.0.1')
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
    })
    const closed = new Promise((resolve) => socket.once('close', resolve))
    socket.write(`${head(first)}\r\n${first}${head(second)}`) // the second request stops in its headers
    await sleep(2200) // past timeouts.header and Node's one-second check
    socket.write(`\r\n${second}`)
    await Promise.race([closed, sleep(8000)])
    socket.destroy()
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1)
    expect(text).toMatch(/^HTTP\/1\.1 200 /)
    expect(text.toLowerCase()).toContain('\r\nconnection: close\r\n')
    expect(upstream.received.length).toBe(1)
    // Nothing is left counted as in flight: shutdown finds no request to wait for.
    gateway.child.kill('SIGTERM')
    expect(await gateway.exited()).toBe(0)
    expect(gateway.lines.find((line) => line.msg === 'stopped')?.clean).toBe(true)
  })

  it('a pipelined request whose connection closes before its answer is not left counted for shutdown', async () => {
    const { gateway, upstream, url } = await start({ top: `${timeouts}\nshutdown_grace: 3s` })
    upstream.respond = async (_request, response) => {
      await sleep(1000)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    }
    const request = () => {
      const body = JSON.stringify(messageUpdate()) // a fresh update_id: not a duplicate
      return `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    }
    const { port } = new URL(url)
    const socket = net.connect(Number(port), '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(request() + request()) // the second answer waits behind the first
    await sleep(300)
    socket.destroy()
    await sleep(1500) // both forwards finish
    gateway.child.kill('SIGTERM')
    expect(await gateway.exited()).toBe(0)
    expect(gateway.lines.find((line) => line.msg === 'stopped')?.clean).toBe(true)
    expect(upstream.received.length).toBe(2)
  })

  it('answers a body Node cannot parse with 400 bad_request, logged under its bot', async () => {
    const { gateway, upstream, url } = await start({ top: timeouts })
    const reply = await raw(
      url,
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"upd\r\nzz\r\n`,
    )
    expect(reply.closed).toBe(true)
    const id = expectErrorAnswer(reply.text, 400, 'bad_request')
    expect(await gateway.requestLine(id)).toMatchObject({
      bot: 'bot',
      status: 400,
      detail: 'HPE_INVALID_CHUNK_SIZE',
    })
    expect(upstream.received.length).toBe(0)
  })

  it('closes an idle keep-alive connection', async () => {
    const { url } = await start({ top: timeouts })
    const body = JSON.stringify(messageUpdate())
    const started = Date.now()
    const reply = await raw(
      url,
      `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: ${SECRET}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      [],
      8000,
    )
    expect(reply.text).toMatch(/^HTTP\/1\.1 200 /)
    expect(reply.closed).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
