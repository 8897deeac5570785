// Signing micro-benchmark: tokens per second and CPU per token for one forward's JWT, per
// algorithm, three ways, each making the same token (same header, same claims, body hash included):
//
//   botgate      the gateway's signer (dist/forward/sign.js): prebuilt header and fixed claims,
//                node:crypto sign on the KeyObject imported at config load
//   CompactSign  jose's CompactSign with the same prebuilt payload string (WebCrypto, a promise each)
//   SignJWT      jose's SignJWT built per token from a claims object (the straightforward way)
//
// plus the SHA-256 of the body alone, the floor every variant pays. The baseline is SignJWT,
// measured in the same run. Async variants are measured with 64 tokens in flight (WebCrypto may
// use the thread pool, which wall-clock tokens/s then shows, and CPU per token does not hide).
//
//   npm run build && node bench/sign.mjs [--seconds 2] [--rounds 3] [--body bench/update.json]
import { createHash, createSecretKey, generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CompactSign, SignJWT } from 'jose'
import { median } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    body: { type: 'string', default: path.join(root, 'bench/update.json') },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const { createSigner } = await import(path.join(root, 'dist/forward/sign.js'))

const body = readFileSync(values.body)
const requestId = '0b7c1f5e-3a4d-4f8e-9b2a-6c1d2e3f4a5b'
const IN_FLIGHT = 64

function keyFor(alg) {
  if (alg === 'HS256') return createSecretKey(Buffer.from('a-shared-hs256-key-of-at-least-32-bytes!'))
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  return generateKeyPairSync('ed25519').privateKey
}

function claimsOf() {
  const now = Math.floor(Date.now() / 1000)
  return {
    iss: 'botgate',
    aud: 'bench',
    iat: now,
    exp: now + 60,
    jti: requestId,
    update_id: 77,
    body_sha256: createHash('sha256').update(body).digest('base64url'),
  }
}

/** Runs `once` (sync or async) for `seconds`; returns tokens/s and CPU microseconds per token. */
async function measure(once, async) {
  const cpu = process.cpuUsage()
  const start = performance.now()
  const deadline = start + seconds * 1000
  let count = 0
  if (async) {
    while (performance.now() < deadline) {
      await Promise.all(Array.from({ length: IN_FLIGHT }, once))
      count += IN_FLIGHT
    }
  } else {
    while (performance.now() < deadline) {
      for (let i = 0; i < 256; i++) once()
      count += 256
    }
  }
  const elapsed = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  return { rate: count / elapsed, cpuUs: (used.user + used.system) / count }
}

const variants = (alg, key) => {
  const header = { alg, typ: 'JWT', kid: 'bench-1' }
  const signer = createSigner({
    alg,
    kid: 'bench-1',
    key,
    header: 'authorization',
    bearer: true,
    ttlS: 60,
    issuer: 'botgate',
    audience: 'bench',
    published: [],
  })
  const encoder = new TextEncoder()
  return [
    { name: 'sha256 only', async: false, once: () => createHash('sha256').update(body).digest('base64url') },
    { name: 'botgate', async: false, once: () => signer(body, 77, requestId) },
    {
      name: 'CompactSign',
      async: true,
      once: () =>
        new CompactSign(encoder.encode(JSON.stringify(claimsOf()))).setProtectedHeader(header).sign(key),
    },
    {
      name: 'SignJWT',
      async: true,
      once: () => new SignJWT(claimsOf()).setProtectedHeader(header).sign(key),
    },
  ]
}

console.log(
  `signing benchmark: node ${process.version}, body ${body.length} bytes, ${seconds}s x ${rounds} rounds per variant (medians)`,
)
console.log('alg     variant        tokens/s   CPU us/token   vs SignJWT')
for (const alg of ['HS256', 'EdDSA', 'ES256']) {
  const list = variants(alg, keyFor(alg))
  for (const variant of list) await measure(variant.once, variant.async) // warm-up
  const results = new Map(list.map((variant) => [variant.name, []]))
  for (let round = 0; round < rounds; round++)
    for (const variant of list) results.get(variant.name).push(await measure(variant.once, variant.async))
  const summary = new Map(
    [...results].map(([name, runs]) => [
      name,
      { rate: median(runs.map((r) => r.rate)), cpuUs: median(runs.map((r) => r.cpuUs)) },
    ]),
  )
  const base = summary.get('SignJWT').rate
  for (const [name, s] of summary) {
    console.log(
      `${alg.padEnd(7)} ${name.padEnd(12)} ${s.rate.toFixed(0).padStart(10)} ${s.cpuUs.toFixed(2).padStart(14)} ${(s.rate / base).toFixed(2).padStart(11)}x`,
    )
  }
}
