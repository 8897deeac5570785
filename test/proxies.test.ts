/**
 * docs/proxies.md's verification, run: botgate behind a reverse proxy with trusted_proxies set
 * to the proxy, and a client (from another address, 127.0.0.2) that claims a Telegram address in
 * its own X-Forwarded-For. The documented curl must be refused with 403 (botgate saw the real
 * client) for both ways proxies write the header (append, as nginx's $proxy_add_x_forwarded_for,
 * Caddy and Traefik do; replace, as ingress-nginx does by default), while a trusted_proxies that
 * is too broad (covering the client too) is what the 401 answer in the docs reveals.
 */

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { messageUpdate } from './helpers/client.js'
import { RunningGateway, secret } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const cleanup: (() => unknown)[] = []
afterAll(async () => {
  for (const step of cleanup.reverse()) await step()
})

/** A reverse proxy on 127.0.0.1 that forwards to `target`, writing X-Forwarded-For its way. */
async function reverseProxy(target: string, mode: 'append' | 'replace'): Promise<string> {
  const server = http.createServer((request, response) => {
    const peer = request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? ''
    const incoming = request.headers['x-forwarded-for']
    const forwardedFor = mode === 'append' && incoming ? `${incoming}, ${peer}` : peer
    const { host: _host, 'x-forwarded-for': _xff, ...headers } = request.headers
    const upstream = http.request(
      new URL(request.url ?? '/', target),
      {
        method: request.method,
        headers: { ...headers, 'x-forwarded-for': forwardedFor, 'x-forwarded-proto': 'https' },
        localAddress: '127.0.0.1',
        agent: false,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(response)
      },
    )
    upstream.on('error', () => response.writeHead(502).end())
    request.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  cleanup.push(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The docs' curl: a spoofed Telegram address, no secret, from the client address 127.0.0.2. */
function spoofedCurl(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}${path}`,
      {
        method: 'POST',
        localAddress: '127.0.0.2',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '149.154.167.197' },
        agent: false,
      },
      (response) => {
        response.resume()
        response.on('end', () => resolve(response.statusCode ?? 0))
      },
    )
    request.on('error', reject)
    request.end(JSON.stringify(messageUpdate()))
  })
}

async function gatewayBehindProxy(trusted: string): Promise<RunningGateway> {
  const upstream = await TestUpstream.start()
  cleanup.push(() => upstream.close())
  const gateway = await RunningGateway.start({
    config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
trusted_proxies: [${trusted}]
bots:
  - name: shop
    path: /tg/shop-0123456789abcdef0123
    secret_token: ${secret()}
    upstream: { url: ${upstream.url} }
    policy: { sources: { allow: [telegram] } }
`,
  })
  cleanup.push(() => gateway.stop())
  return gateway
}

describe('the spoofed X-Forwarded-For check of docs/proxies.md', () => {
  it.each(['append', 'replace'] as const)(
    'is refused with 403 behind a proxy that %ss the header, trusted as one address',
    async (mode) => {
      const gateway = await gatewayBehindProxy('127.0.0.1')
      const proxy = await reverseProxy(gateway.webhook, mode)
      expect(await spoofedCurl(proxy, '/tg/shop-0123456789abcdef0123')).toBe(403)
      // The log names the real client, not the claimed address.
      const line = await gateway.waitFor((l) => l.msg === 'request' && l.reason === 'ip_not_allowed')
      expect(line.ip).toBe('127.0.0.2')
    },
  )

  it('gets 401 when trusted_proxies also covers the client: the spoofed address was believed', async () => {
    const gateway = await gatewayBehindProxy('127.0.0.0/8')
    const proxy = await reverseProxy(gateway.webhook, 'append')
    // The sources check passed on the forged address; only the missing secret stopped it.
    expect(await spoofedCurl(proxy, '/tg/shop-0123456789abcdef0123')).toBe(401)
  })

  it('is refused with 403 when the client goes around the proxy', async () => {
    const gateway = await gatewayBehindProxy('127.0.0.1')
    expect(await spoofedCurl(gateway.webhook, '/tg/shop-0123456789abcdef0123')).toBe(403)
  })
})
