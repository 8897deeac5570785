/**
 * The CLI as users meet it: help everywhere, check, secret, schema and the demo.
 */

import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { MAIN, ROOT, RunningGateway, runCli, secret, tempDir } from './helpers/gateway.js'
import { freePort } from './helpers/upstream.js'

const COMMANDS = [
  'serve',
  'check',
  'secret',
  'schema',
  'demo',
  'set-webhook',
  'webhook-info',
  'delete-webhook',
]

describe('help and usage', () => {
  it('botgate --help lists every command', async () => {
    const result = await runCli(['--help'])
    expect(result.code).toBe(0)
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
  })

  it.each(COMMANDS)('botgate %s --help prints its usage', async (command) => {
    const result = await runCli([command, '--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Usage: botgate ${command}`)
  })

  it('prints the version', async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string
    }
    expect((await runCli(['--version'])).stdout.trim()).toBe(version)
  })

  it('exits 2 on an unknown command or option', async () => {
    const unknown = await runCli(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown command "frobnicate"')
    const option = await runCli(['check', '--frobnicate'])
    expect(option.code).toBe(2)
    expect(option.stderr).toContain("Unknown option '--frobnicate'")
  })
})

describe('botgate check', () => {
  const dir = tempDir()
  const SECRET = secret()
  const UPSTREAM_SECRET = secret()
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    `bots:
  - name: shop
    path: /tg/averysecretpathsegment0123456789
    secret_token: ${SECRET}
    upstream: { url: "http://user:hunter2@127.0.0.1:8081/webhook", secret_token: ${UPSTREAM_SECRET} }
`,
  )

  it('prints a summary with every secret masked, and exits 0', async () => {
    const result = await runCli(['check', '--config', 'gateway.yaml'], { cwd: dir })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('gateway.yaml: OK')
    expect(result.stdout).toContain('bot shop')
    expect(result.stdout).toContain('secret_token  **** (64 chars)')
    expect(result.stdout).toContain('/tg/av**** (32 chars)')
    expect(result.stdout).toContain('http://user:****@127.0.0.1:8081/webhook')
    for (const hidden of [SECRET, UPSTREAM_SECRET, 'hunter2', 'averysecretpathsegment'])
      expect(result.stdout).not.toContain(hidden)
  })

  it("prints each bot's egress: listener, credential masked, methods, chats and pacing; never the token", async () => {
    const token = '4242:AAHreal-token-0123456789abcdefghijklmnop'
    const credential = '4242:local-credential-ZYXWVUTSRQPONMLKJIHGF'
    writeFileSync(
      path.join(dir, 'egress.yaml'),
      `egress: { listen: 127.0.0.1:8082, api_base: "https://api.telegram.org", pacing: { enabled: false } }
bots:
  - name: shop
    path: /tg/averysecretpathsegment0123456789
    secret_token: ${SECRET}
    upstream: { url: "http://127.0.0.1:8081/webhook" }
    token: "${token}"
    egress: { credential: "${credential}" }
    policy:
      sources: { allow: [any] }
      outbound:
        allow_methods: [any, deleteWebhook]
        chats: { allow: [heard_from, -1001234567890], methods: { forwardMessage: ["@shop_news"] }, heard_from_ttl: 1h }
  - name: plain
    path: /tg/bverysecretpathsegment0123456789
    secret_token: ${UPSTREAM_SECRET}
    upstream: { url: "http://127.0.0.1:8083/webhook" }
`,
    )
    const result = await runCli(['check', '-c', 'egress.yaml'], { cwd: dir })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines).toContain(
      'egress listen 127.0.0.1:8082, api_base https://api.telegram.org, max_upload 50MiB, timeout 1m',
    )
    expect(lines).toContain('  pacing off')
    const shop = lines.indexOf(
      '  egress        listen 127.0.0.1:8082, credential 4242... (43 chars), pacing off',
    )
    expect(shop).toBeGreaterThan(lines.indexOf('bot shop'))
    expect(lines.slice(shop + 1, shop + 3)).toEqual([
      '                methods allowed any, deleteWebhook; denied setWebhook, logOut, close, getUpdates',
      '                chats allowed heard_from, -1001234567890; forwardMessage @shop_news; heard_from_ttl 1h',
    ])
    expect(
      lines.indexOf('  egress        none: no credential (the bot calls the Bot API itself)'),
    ).toBeGreaterThan(lines.indexOf('bot plain'))
    for (const hidden of [token, credential, credential.slice(4), token.slice(5)])
      expect(result.stdout).not.toContain(hidden)
  })

  it('finds the config through $BOTGATE_CONFIG', async () => {
    const result = await runCli(['check'], {
      cwd: ROOT,
      env: { BOTGATE_CONFIG: path.join(dir, 'gateway.yaml') },
    })
    expect(result.code).toBe(0)
  })

  it('reports problems as file:line:col path: message on stderr and exits 1', async () => {
    writeFileSync(
      path.join(dir, 'bad.yaml'),
      'bots:\n  - name: shop\n    path: /x\n    secret_token: short\n    upstream: { url: "ftp://x" }\n',
    )
    const result = await runCli(['check', '-c', 'bad.yaml'], { cwd: dir })
    expect(result.code).toBe(1)
    // Shape errors come first; rules about values (secret strength) are checked once the shape is right.
    expect(result.stderr.trim().split('\n')).toEqual([
      'bad.yaml:5:22 bots[0].upstream.url: must be an http(s) URL',
    ])
    writeFileSync(
      path.join(dir, 'bad.yaml'),
      'bots:\n  - name: shop\n    path: /x\n    secret_token: short\n    upstream: { url: "http://x" }\n',
    )
    const second = await runCli(['check', '-c', 'bad.yaml'], { cwd: dir })
    expect(second.code).toBe(1)
    expect(second.stderr.trim().split('\n')).toEqual([
      'bad.yaml:4:19 bots[0].secret_token: is too weak: 5 characters, at least 32 required (botgate secret prints one)',
    ])
    expect(result.stdout).toBe('')
  })

  it('validates the example config and every shipped policy', async () => {
    const example = await runCli(['check', '-c', 'gateway.example.yaml'], {
      env: { SHOP_PATH: 'x'.repeat(32), SHOP_SECRET: secret(), SHOP_UPSTREAM_SECRET: secret() },
    })
    expect(example.stderr).toBe('')
    expect(example.code).toBe(0)
    const shipped = readdirSync(path.join(ROOT, 'policies')).filter((name) => name.endsWith('.yaml'))
    expect(shipped.sort()).toEqual([
      'default.yaml',
      'group-bot.yaml',
      'private-bot.yaml',
      'public-bot.yaml',
      'strict.yaml',
    ])
    const policies = await runCli(['check', '--policy', ...shipped.map((name) => `policies/${name}`)])
    expect(policies.stderr).toBe('')
    expect(policies.code).toBe(0)
    for (const name of shipped) expect(policies.stdout).toContain(`policies/${name}: OK`)
  })

  it('reports a bad policy file and exits 1', async () => {
    writeFileSync(path.join(dir, 'policy.yaml'), 'sources: { allow: [] }\n')
    const result = await runCli(['check', '--policy', 'policy.yaml'], { cwd: dir })
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toBe(
      'policy.yaml:1:19 sources.allow: must not be empty (write [any] to allow every address explicitly)',
    )
  })
})

describe('botgate secret', () => {
  it("prints a 64-character secret token and a path segment in Telegram's charset, fresh each time", async () => {
    const first = await runCli(['secret'])
    const second = await runCli(['secret'])
    expect(first.stdout).toMatch(/^secret_token=[A-Za-z0-9_-]{64}\npath_segment=[A-Za-z0-9_-]{32}\n$/)
    expect(first.stdout).not.toBe(second.stdout)
    const json = JSON.parse((await runCli(['secret', '--json'])).stdout) as Record<string, string>
    expect(json.secret_token).toMatch(/^[A-Za-z0-9_-]{64}$/)
  })
})

/** A value deep inside parsed JSON, or undefined. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  return path.reduce<unknown>(
    (node, key) => (node as Record<string | number, unknown> | undefined)?.[key],
    value,
  )
}

describe('botgate schema', () => {
  it('prints the JSON Schema of the config, the same the loader uses', async () => {
    const result = await runCli(['schema'])
    expect(result.code).toBe(0)
    const schema: unknown = JSON.parse(result.stdout)
    expect(at(schema, '$schema')).toBe('http://json-schema.org/draft-07/schema#')
    expect(at(schema, 'additionalProperties')).toBe(false)
    expect(at(schema, 'required')).toContain('bots')
    const bot = at(schema, 'properties', 'bots', 'items')
    expect(at(bot, 'required')).toEqual(expect.arrayContaining(['name', 'path', 'upstream']))
    expect(at(bot, 'properties', 'upstream', 'properties', 'url', 'anyOf', 0, 'pattern')).toBeDefined()
    expect(
      at(bot, 'properties', 'policy', 'anyOf', 1, 'properties', 'sources', 'properties', 'allow', 'minItems'),
    ).toBe(1)
    expect(result.stdout).not.toContain('errorMessage')
  })

  it('stops quietly when its reader goes away (botgate schema | head)', async () => {
    // More than a pipe holds (Linux: 64 KiB), so the writes are still going when head exits.
    expect((await runCli(['schema'])).stdout.length).toBeGreaterThan(64 * 1024)
    const piped = `set -o pipefail; "${process.execPath}" "${MAIN}" schema | head -c 1 >/dev/null`
    const result = await promisify(execFile)('bash', ['-c', piped]).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    )
    expect(result).toEqual({ code: 0, stderr: '' })
  })

  it('prints the policy schema with --policy', async () => {
    const schema: unknown = JSON.parse((await runCli(['schema', '--policy'])).stdout)
    expect(Object.keys(at(schema, 'properties') as object)).toEqual(
      expect.arrayContaining(['mode', 'sources', 'updates', 'replies']),
    )
  })

  it('accepts what the loader accepts, keys with defaults left out included; refuses unknown keys', async () => {
    const ajv = new Ajv({ allErrors: true, strict: false })
    const config = ajv.compile(JSON.parse((await runCli(['schema'])).stdout))
    const policy = ajv.compile(JSON.parse((await runCli(['schema', '--policy'])).stdout))
    const minimal = {
      bots: [
        { name: 'shop', path: '/tg/x', secret_token: secret(), upstream: { url: 'http://127.0.0.1:8081/' } },
      ],
    }
    expect(config(minimal), JSON.stringify(config.errors)).toBe(true)
    // The example as the loader sees it: ${NAME:-default} as its default, ${NAME} as a set variable.
    const raw = readFileSync(path.join(ROOT, 'gateway.example.yaml'), 'utf8')
    const example = raw.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1').replace(/\$\{[A-Z_]+\}/g, secret())
    expect(config(parseYaml(example)), JSON.stringify(config.errors)).toBe(true)
    expect(config(parseYaml(raw)), JSON.stringify(config.errors)).toBe(true)
    const shipped = parseYaml(readFileSync(path.join(ROOT, 'policies/default.yaml'), 'utf8'))
    expect(policy(shipped), JSON.stringify(policy.errors)).toBe(true)
    expect(policy({ updates: {} })).toBe(true)
    expect(config({ ...minimal, listn: '127.0.0.1:8080' })).toBe(false)
  })

  it('accepts an environment reference wherever a scalar value goes, as the loader replaces it first', async () => {
    const ajv = new Ajv({ allErrors: true, strict: false })
    const config = ajv.compile(JSON.parse((await runCli(['schema'])).stdout))
    const policy = ajv.compile(JSON.parse((await runCli(['schema', '--policy'])).stdout))
    const bot = (fields: object) => ({
      bots: [
        { name: 'shop', path: '/tg/x', secret_token: secret(), upstream: { url: 'http://b/' }, ...fields },
      ],
    })
    // A pattern (path), an integer (max_inflight), a choice of constants (policy mode), list items.
    for (const fields of [
      { path: '/tg/${SHOP_PATH}' },
      { max_inflight: '${MAX_INFLIGHT:-64}' },
      { policy: { mode: '${MODE:-enforce}', sources: { allow: ['telegram', '${EXTRA_SOURCE}'] } } },
    ])
      expect(config(bot(fields)), JSON.stringify(config.errors)).toBe(true)
    expect(policy({ dedupe: { ttl: '${DEDUPE_TTL:-24h}' } }), JSON.stringify(policy.errors)).toBe(true)
    // A choice of a constant and a section: the reference may stand for the constant.
    expect(policy({ dedupe: '${DEDUPE:-false}' }), JSON.stringify(policy.errors)).toBe(true)
    // Values that are not references are still checked.
    for (const fields of [{ path: 'tg/x' }, { max_inflight: 'lots' }, { policy: { mode: 'loud' } }])
      expect(config(bot(fields))).toBe(false)
    expect(config(bot({ path: '/tg/$SHOP_PATH' }))).toBe(false)
    // An escaped reference is literal text to the loader, so the value's own schema decides.
    expect(config(bot({ max_inflight: '$${MAX_INFLIGHT}' }))).toBe(false)
    expect(config(bot({ max_inflight: '$$${MAX_INFLIGHT}' }))).toBe(false)
    expect(config(bot({ max_inflight: '$${LITERAL}${MAX_INFLIGHT}' })), JSON.stringify(config.errors)).toBe(
      true,
    )
    expect(policy({ dedupe: { ttl: '1h', tll: '1h' } })).toBe(false)
  })
})

describe('botgate demo', () => {
  it('serves the example config in front of its echo bot, and the curl it prints gets through', async () => {
    const demo = await RunningGateway.start(
      {
        config: '',
        env: {
          BOTGATE_LISTEN: '127.0.0.1:0',
          BOTGATE_ADMIN_LISTEN: '127.0.0.1:0',
          SHOP_UPSTREAM: `http://127.0.0.1:${await freePort()}/webhook`,
        },
      },
      ['demo'],
    )
    try {
      // Up to 25 s: beside the fuzzer and the 2,000-bot reload test, a start took 16 s once.
      for (let i = 0; i < 500 && !demo.stdout.includes('Ctrl-C stops the demo'); i++)
        await new Promise((r) => setTimeout(r, 50))
      const curl = /^curl [\s\S]*?\}'$/m.exec(demo.stdout)?.[0]
      expect(curl).toBeDefined()
      const { stdout } = await promisify(execFile)('bash', ['-c', curl as string])
      expect(stdout).toMatch(/^HTTP\/1\.1 200 OK/)
      expect(stdout).toContain('{"method":"sendMessage","chat_id":42,"text":"echo: /start hello"}')
    } finally {
      expect(await demo.stop()).toBe(0)
    }
  }, 45_000)
})
