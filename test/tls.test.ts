/**
 * TLS termination through the real CLI: a self-signed certificate made with openssl for
 * 127.0.0.1, a verified handshake, an update forwarded over HTTPS (the upstream told
 * X-Forwarded-Proto: https), and a reload that swaps the certificate for new connections.
 */

import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { messageUpdate, post, type Reply, readReply, telegramHeaders } from './helpers/client.js'
import { RunningGateway, secret, tempDir } from './helpers/gateway.js'
import { TestUpstream } from './helpers/upstream.js'

const SECRET = secret()
const PATH = '/tg/hook-0123456789abcdef'
const cleanup: (() => Promise<unknown>)[] = []

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A self-signed certificate for 127.0.0.1, made the way docs/tls.md says. */
function selfSigned(folder: string, name: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-sha256',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-subj',
      `/CN=127.0.0.1/O=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { cwd: folder, stdio: 'ignore' },
  )
  return {
    cert: readFileSync(path.join(folder, `${name}.pem`), 'utf8'),
    key: readFileSync(path.join(folder, `${name}.key`), 'utf8'),
  }
}

/** Posts over HTTPS trusting only `ca`, with the hostname checked against the certificate. */
function postHttps(url: string, body: string, headers: string[], ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const pairs: Record<string, string> = {}
    for (let i = 0; i < headers.length; i += 2) pairs[headers[i] as string] = headers[i + 1] as string
    const request = https.request(url, { method: 'POST', ca, agent: false, headers: pairs }, (response) =>
      readReply(response).then(resolve, reject),
    )
    request.on('error', reject)
    request.end(body)
  })
}

/** The fingerprint of the certificate a fresh connection is served. */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.end()
      resolve(fingerprint)
    })
    socket.on('error', reject)
  })
}

/**
 * botgate terminating TLS with a fresh self-signed certificate (`first`), a second one ready for
 * a reload, and an upstream; all stopped after the test.
 */
async function startWithTls() {
  const folder = tempDir()
  const first = selfSigned(folder, 'first')
  const second = selfSigned(folder, 'second')
  const upstream = await TestUpstream.start()
  cleanup.push(() => upstream.close())
  const gateway = await RunningGateway.start({
    config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
tls: { cert_file: cert.pem, key_file: key.pem }
bots:
  - name: bot
    path: ${PATH}
    secret_token: ${SECRET}
    upstream: { url: ${upstream.url} }
    policy: { sources: { allow: [any] } }
`,
    files: { 'cert.pem': first.cert, 'key.pem': first.key },
  })
  cleanup.push(() => gateway.stop('SIGKILL'))
  return { first, second, upstream, gateway, url: `${gateway.webhook.replace('http://', 'https://')}${PATH}` }
}

describe.skipIf(!hasOpenssl())('TLS on the webhook listener', () => {
  it('completes a verified handshake and forwards an update over HTTPS, then swaps the certificate on reload', async () => {
    const { first, second, upstream, gateway, url } = await startWithTls()
    expect(gateway.lines.find((line) => line.msg === 'botgate listening')?.tls).toBe(true)

    const update = JSON.stringify(messageUpdate())
    const reply = await postHttps(url, update, telegramHeaders(SECRET), first.cert)
    expect(reply.status).toBe(200)
    expect(upstream.received).toHaveLength(1)
    expect(upstream.received[0]?.body.toString('utf8')).toBe(update)
    expect(upstream.received[0]?.headers['x-forwarded-proto']).toBe('https')
    // A client that trusts another certificate refuses the handshake.
    await expect(postHttps(url, update, telegramHeaders(SECRET), second.cert)).rejects.toThrow(
      /self.signed|verify/i,
    )
    // Plain HTTP to the TLS listener gets nowhere near the pipeline.
    await expect(post(url.replace('https://', 'http://'), update, telegramHeaders(SECRET))).rejects.toThrow()
    expect(upstream.received).toHaveLength(1)

    // Renew: key and certificate written to temporary names, then renamed into place.
    writeFileSync(path.join(gateway.dir, 'key.pem.new'), second.key)
    writeFileSync(path.join(gateway.dir, 'cert.pem.new'), second.cert)
    renameSync(path.join(gateway.dir, 'key.pem.new'), path.join(gateway.dir, 'key.pem'))
    renameSync(path.join(gateway.dir, 'cert.pem.new'), path.join(gateway.dir, 'cert.pem'))
    gateway.child.kill('SIGHUP')
    const reloaded = await gateway.waitFor(
      (line) => line.msg === 'tls certificate reloaded: new connections use it',
    )
    expect(reloaded.subject).toBe('CN=127.0.0.1, O=second')
    const expected = new X509Certificate(second.cert).fingerprint256
    expect(await servedFingerprint(url)).toBe(expected)
    // A fresh update: the first one's id is remembered by dedupe across the reload.
    const after = await postHttps(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET), second.cert)
    expect(after.status).toBe(200)
    expect(upstream.received).toHaveLength(2)
  })

  it('refuses a reload whose key does not belong to the certificate, and keeps serving the old one', async () => {
    const { first, second, gateway, url } = await startWithTls()
    writeFileSync(path.join(gateway.dir, 'cert.pem'), second.cert)
    gateway.child.kill('SIGHUP')
    const refused = await gateway.waitFor(
      (line) => line.msg === 'config reload refused: the running config stays in effect',
    )
    expect(refused.problems).toEqual([
      'gateway.yaml:3:39 tls.key_file: key.pem is not the private key of the certificate in cert.pem',
    ])
    expect(await servedFingerprint(url)).toBe(new X509Certificate(first.cert).fingerprint256)
    const reply = await postHttps(url, JSON.stringify(messageUpdate()), telegramHeaders(SECRET), first.cert)
    expect(reply.status).toBe(200)
  })
})
