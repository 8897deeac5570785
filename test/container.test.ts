/**
 * The image's runtime contract without Docker (which cannot run here): the Dockerfile's entry
 * command, run the way a container runs it. In new PID and mount namespaces (`unshare`), botgate
 * is PID 1, the root filesystem is read-only, and it runs as the Dockerfile's USER; the config is
 * the Kubernetes sidecar's, mounted where the image expects it. It must serve, answer the
 * HEALTHCHECK command, and on SIGTERM finish the update in flight and exit 0: as PID 1, a signal
 * without a handler would be ignored, so this shows botgate's own handler doing the work.
 *
 * Needs root and unshare (to create namespaces and switch users); skipped with a notice otherwise.
 */

import { spawnSync } from 'node:child_process'
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { messageUpdate, post, telegramHeaders } from './helpers/client.js'
import { ContainerFs, DEPLOY, execForm, instructions, parseDockerfile, type Stage } from './helpers/deploy.js'
import { ROOT, secret, tempDir } from './helpers/gateway.js'
import { RunningProcess } from './helpers/process.js'
import { type Received, TestUpstream } from './helpers/upstream.js'

const CAN_SIMULATE =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--pid', '--mount', '--fork', 'sh', '-c', 'mount -o remount,bind,ro / && true'], {
    stdio: 'ignore',
  }).status === 0 &&
  spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0
if (!CAN_SIMULATE)
  console.warn('container simulation skipped: needs root with unshare and setpriv (namespaces, user switch)')

const runtime = parseDockerfile(readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8')).at(-1) as Stage
const text = (keyword: string) => instructions(runtime, keyword)[0]?.text ?? ''
const ENTRY = [...execForm(text('ENTRYPOINT')), ...execForm(text('CMD'))]
const HEALTHCHECK = execForm(text('HEALTHCHECK'))
const [UID, GID] = text('USER').split(':')
const WORKDIR = text('WORKDIR')

const cleanup: (() => unknown)[] = []
afterAll(async () => {
  for (const step of cleanup.reverse()) await step()
})

/** Makes a folder tree readable by the container's unprivileged user (temp folders are 0700). */
function readableByAll(dir: string): void {
  chmodSync(dir, 0o755)
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry)
    if (statSync(file).isDirectory()) readableByAll(file)
    else chmodSync(file, 0o644)
  }
}

describe.skipIf(!CAN_SIMULATE)('the image entry command as a container runs it', () => {
  it('serves as PID 1, non-root, on a read-only root; drains the update in flight on SIGTERM and exits 0', async () => {
    // A bot that holds the first update until told to answer, so it is in flight at SIGTERM.
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await TestUpstream.start()
    cleanup.push(() => upstream.close())
    upstream.respond = async (_request: Received, response) => {
      await held
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end('{"method":"sendMessage","chat_id":4242,"text":"drained"}')
    }

    // The sidecar's ConfigMap and Secret, mounted where deployment.yaml mounts them; listeners
    // on loopback port 0 for the test, and the test itself as the "ingress" (trusted proxy).
    const SECRET = secret()
    const root = tempDir()
    const fs = new ContainerFs(root)
    fs.mount('/run/secrets/botgate', {
      shop_secret: SECRET,
      shop_upstream_secret: secret(),
      shop_bot_token: '123456:placeholder-token',
      shop_egress_credential: `1:${secret()}`,
    })
    const config = parseDocument(readFileSync(path.join(DEPLOY, 'kubernetes/sidecar/gateway.yaml'), 'utf8'))
    config.set('listen', '127.0.0.1:0')
    config.setIn(['admin', 'listen'], '127.0.0.1:0')
    config.setIn(['egress', 'listen'], '127.0.0.1:0')
    config.set('trusted_proxies', ['127.0.0.1'])
    config.setIn(['bots', 0, 'upstream', 'url'], upstream.url)
    fs.mount('/etc/botgate', {
      'gateway.yaml': fs.translate(config.toString()),
      'policy.yaml': readFileSync(path.join(DEPLOY, 'kubernetes/sidecar/policy.yaml'), 'utf8'),
    })
    readableByAll(root)

    const command = ENTRY.map((arg) =>
      arg.startsWith(`${WORKDIR}/`) ? path.join(ROOT, arg.slice(WORKDIR.length)) : fs.path(arg),
    )
    const container = await RunningProcess.start(
      'unshare',
      [
        '--pid',
        '--mount',
        '--fork',
        'sh',
        '-c',
        // The root filesystem read-only, as with `docker run --read-only` or readOnlyRootFilesystem.
        `mount -o remount,bind,ro / && cd "$0" && exec setpriv --reuid=${UID} --regid=${GID} --clear-groups -- "$@"`,
        ROOT,
        ...command,
      ],
      { env: { SHOP_PATH: 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6' }, ready: /"msg":"botgate listening"/ },
    )
    cleanup.push(() => container.child.kill('SIGKILL'))
    const lines = () =>
      container.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    const started = lines().find((line) => line.msg === 'botgate listening') as Record<string, unknown>
    expect(started.pid).toBe(1)

    // The process as the host sees it: the namespace's init, running as the image's user.
    const unshare = container.child.pid as number
    const init = Number(readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim())
    const status = readFileSync(`/proc/${init}/status`, 'utf8')
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(UID)
    expect(/^NSpid:\s+\d+\s+(\d+)/m.exec(status)?.[1]).toBe('1')
    const rootMount = readFileSync(`/proc/${init}/mountinfo`, 'utf8')
      .split('\n')
      .find((line) => line.split(' ')[4] === '/')
    expect(rootMount?.split(' ')[5]?.split(',')).toContain('ro')

    // The Dockerfile's HEALTHCHECK, pointed at this admin listener.
    const health = spawnSync(process.execPath, HEALTHCHECK.slice(1), {
      env: { ...process.env, BOTGATE_HEALTHCHECK_URL: `http://${started.admin as string}/healthz` },
      timeout: 15_000,
    })
    expect(health.status).toBe(0)

    // An update from a Telegram address, through the "ingress", held by the bot; then SIGTERM.
    const update = messageUpdate()
    const answer = post(
      `http://${started.webhook as string}/tg/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6`,
      JSON.stringify(update),
      telegramHeaders(SECRET, 'x-forwarded-for', '149.154.167.197'),
    )
    for (let i = 0; i < 500 && upstream.received.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    expect(upstream.received).toHaveLength(1)
    process.kill(init, 'SIGTERM')
    await container.waitFor(() => container.stdout.includes('shutting down'))
    release()
    const reply = await answer
    expect(reply.status).toBe(200)
    expect(reply.json()).toEqual({ method: 'sendMessage', chat_id: 4242, text: 'drained' })
    expect(await container.exited()).toBe(0) // unshare passes on the exit code of PID 1
    expect(lines().find((line) => line.msg === 'stopped')).toMatchObject({ clean: true, pid: 1 })
    expect(container.stderr).toBe('')
  })
})
