/**
 * The deployment files agree with each other and with botgate: the Dockerfile's entry command,
 * ports, health check, user and build context; the Kubernetes manifests' ports, probes, mounts,
 * env and selectors against the config they mount; and every shipped config passes
 * `botgate check` as the container would load it, with placeholder secrets in its mounts.
 * Docker and a cluster are not available here; what they would read is read the same way.
 */

import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import {
  ContainerFs,
  DEPLOY,
  dockerignore,
  execForm,
  find,
  flagsAndArgs,
  inContext,
  instructions,
  type K8sObject,
  parseDockerfile,
  placeholderSecrets,
  portOf,
  readKustomization,
  type Stage,
} from './helpers/deploy.js'
import { ROOT, RunningGateway, runCli, secret, tempDir } from './helpers/gateway.js'
import { available } from './helpers/process.js'
import { freePort } from './helpers/upstream.js'

const DOCKERFILE = path.join(DEPLOY, 'Dockerfile')
const stages = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'))
const runtime = stages.at(-1) as Stage
const only = (stage: Stage, keyword: string) => {
  const found = instructions(stage, keyword)
  expect(found, keyword).toHaveLength(1)
  return (found[0] as { text: string }).text
}

/** What the image runs: ENTRYPOINT followed by CMD. */
const ENTRY = [...execForm(only(runtime, 'ENTRYPOINT')), ...execForm(only(runtime, 'CMD'))]
const WORKDIR = only(runtime, 'WORKDIR')
const CONFIG_PATH = ENTRY[ENTRY.indexOf('--config') + 1] as string
const HEALTHCHECK = execForm(only(runtime, 'HEALTHCHECK'))
const HAS_KUBECTL = available('kubectl', ['version', '--client'])
if (!HAS_KUBECTL) console.warn('deploy/kubernetes: kustomize builds skipped, `kubectl` is not on PATH')

describe('deploy/make-secrets.sh', () => {
  const make = (dir: string, ...names: string[]) =>
    execFileSync('sh', [path.join(DEPLOY, 'make-secrets.sh'), dir, ...names], { encoding: 'utf8' })

  it('writes 64 characters of the secret_token charset, and a token-shaped egress credential', () => {
    const dir = path.join(tempDir(), 'secrets')
    make(dir, 'shop_secret', 'shop_egress_credential', 'news_egress_credential')
    const secretValue = readFileSync(path.join(dir, 'shop_secret'), 'utf8')
    expect(secretValue).toMatch(/^[A-Za-z0-9_-]{64}$/) // Telegram's secret_token charset, no newline
    const credentials = ['shop', 'news'].map((bot) =>
      readFileSync(path.join(dir, `${bot}_egress_credential`), 'utf8'),
    )
    // The shape botgate's config accepts for bots[].egress.credential (src/config/bots.ts), and
    // that bot frameworks check a token against: digits, a colon, at least 35 more.
    for (const credential of credentials) expect(credential).toMatch(/^[0-9]{1,20}:[A-Za-z0-9_-]{64}$/)
    expect(new Set([...credentials, secretValue]).size).toBe(3)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })

  it('keeps files that exist: running it again rotates nothing', () => {
    const dir = path.join(tempDir(), 'secrets')
    make(dir, 'shop_egress_credential')
    const first = readFileSync(path.join(dir, 'shop_egress_credential'), 'utf8')
    expect(make(dir, 'shop_egress_credential', 'shop_secret')).toContain('kept')
    expect(readFileSync(path.join(dir, 'shop_egress_credential'), 'utf8')).toBe(first)
  })
})

describe('deploy/Dockerfile', () => {
  it('builds in stages: production dependencies, compile, runtime', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['deps', 'build', 'runtime'])
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(DOCKERFILE, 'utf8'))?.[1]
    expect(base).toBe('node:20-bookworm-slim') // Node 20, as package.json's engines and CI
    for (const stage of stages) expect(stage.from).toBe('${NODE_IMAGE}')
    // The runtime's node_modules come from the stage that installed without dev dependencies.
    const install = instructions(stages[0] as Stage, 'RUN').map((run) => run.text)
    expect(install.some((run) => /npm ci .*--omit=dev/.test(run))).toBe(true)
    const copies = instructions(runtime, 'COPY').map((copy) => flagsAndArgs(copy.text))
    expect(copies.find((copy) => copy.args[0]?.endsWith('node_modules'))?.flags.from).toBe('deps')
    expect(copies.find((copy) => copy.args[0]?.endsWith('dist'))?.flags.from).toBe('build')
  })

  it('runs as an unprivileged numeric user (runAsNonRoot can verify it)', () => {
    const [user, group] = only(runtime, 'USER').split(':')
    expect(Number(user)).toBeGreaterThan(0)
    expect(Number(group)).toBeGreaterThan(0)
  })

  it('runs `botgate serve --config /etc/botgate/gateway.yaml`, the command the tests run', () => {
    expect(ENTRY).toEqual(['node', '/app/dist/main.js', 'serve', '--config', '/etc/botgate/gateway.yaml'])
    expect(WORKDIR).toBe('/app')
    // /app/dist/main.js is the package's bin, copied from the build stage's dist.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      bin: { botgate: string }
    }
    expect(path.posix.join(WORKDIR, pkg.bin.botgate)).toBe(ENTRY[1])
    // Commands run with `docker compose exec` / `kubectl exec` find the same config.
    expect(only(runtime, 'ENV')).toContain(`BOTGATE_CONFIG=${CONFIG_PATH}`)
  })

  it('sends the builder everything it copies, and nothing else of note', () => {
    const rules = dockerignore(path.join(ROOT, '.dockerignore'))
    const sources = stages.flatMap((stage) =>
      instructions(stage, 'COPY')
        .map((copy) => flagsAndArgs(copy.text))
        .filter((copy) => copy.flags.from === undefined)
        .flatMap((copy) => copy.args.slice(0, -1)),
    )
    expect(sources).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'src',
        'policies',
        'gateway.example.yaml',
      ]),
    )
    for (const source of sources) {
      expect(existsSync(path.join(ROOT, source)), source).toBe(true)
      expect(inContext(rules, source), source).toBe(true)
    }
    for (const file of ['src/main.ts', 'src/config/load.ts', 'policies/default.yaml'])
      expect(inContext(rules, file), file).toBe(true)
    for (const file of [
      'node_modules/hono/package.json',
      'dist/main.js',
      '.git/HEAD',
      'test/cli.test.ts',
      'src/config/load.test.ts',
      'examples/python-echo/bot.py',
      'deploy/compose/secrets/shop_secret',
      'deploy/kubernetes/sidecar/secrets/shop_secret',
      'gateway.yaml',
      '.env',
    ])
      expect(inContext(rules, file), file).toBe(false)
  })

  it('needs at runtime only what the production install provides', () => {
    const { dependencies } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    const imported = new Set<string>()
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name)
        if (entry.isDirectory()) walk(file)
        else if (file.endsWith('.js'))
          for (const [, name] of readFileSync(file, 'utf8').matchAll(/from '([^'.][^']*)'/g))
            if (!name?.startsWith('node:'))
              imported.add(
                name?.startsWith('@')
                  ? name.split('/').slice(0, 2).join('/')
                  : (name?.split('/')[0] as string),
              )
      }
    }
    walk(path.join(ROOT, 'dist'))
    expect(imported.size).toBeGreaterThan(3)
    for (const name of imported) expect(Object.keys(dependencies), name).toContain(name)
  })

  it('exposes the webhook and admin ports; its health check asks the admin listener', () => {
    expect(only(runtime, 'EXPOSE').split(/\s+/).map(Number)).toEqual([8080, 9090])
    expect(HEALTHCHECK.slice(0, 2)).toEqual(['node', '-e'])
    expect(HEALTHCHECK[2]).toContain("'http://127.0.0.1:9090/healthz'")
  })

  describe('the health check command', () => {
    let gateway: RunningGateway
    beforeAll(async () => {
      gateway = await RunningGateway.start({
        config: `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
bots:
  - name: shop
    path: /tg/shop-0123456789abcdef0123
    secret_token: ${secret()}
    upstream: { url: http://127.0.0.1:9/webhook }
`,
      })
    })
    afterAll(async () => {
      expect(await gateway.stop()).toBe(0)
    })
    const healthcheck = (url: string) =>
      spawnSync(process.execPath, HEALTHCHECK.slice(1), {
        env: { ...process.env, BOTGATE_HEALTHCHECK_URL: url },
        timeout: 15_000,
      }).status

    it('exits 0 while botgate runs, 1 when nothing answers', async () => {
      expect(healthcheck(`${gateway.admin}/healthz`)).toBe(0)
      expect(healthcheck(`http://127.0.0.1:${await freePort()}/healthz`)).toBe(1)
      expect(healthcheck(`${gateway.admin}/nothing-here`)).toBe(1)
    })
  })
})

/** The values of every `*_file` key in a config: the files botgate reads. */
function fileKeys(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(fileKeys)
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, inner]) =>
    key.endsWith('_file') && typeof inner === 'string' ? [inner] : fileKeys(inner),
  )
}

/** The botgate container of a pod spec, and the config it mounts, loaded as the pod would. */
function podFacts(kustomization: ReturnType<typeof readKustomization>, deployment: K8sObject) {
  const spec = deployment.spec.template.spec
  const container = (spec.containers as K8sObject[]).find((c) => c.name === 'botgate') as K8sObject
  const configMount = (container.volumeMounts as K8sObject[]).find((mount) =>
    CONFIG_PATH.startsWith(`${mount.mountPath}/`),
  ) as K8sObject
  const configVolume = (spec.volumes as K8sObject[]).find(
    (volume) => volume.name === configMount.name,
  ) as K8sObject
  const configFiles = kustomization.configMaps.get(configVolume.configMap.name) as Map<string, string>
  const config = parseYaml(
    readFileSync(configFiles.get(path.basename(CONFIG_PATH)) as string, 'utf8'),
  ) as K8sObject
  return { spec, container, configMount, configVolume, configFiles, config }
}

/**
 * Loads the pod's botgate config with `botgate check`, as the container would: the ConfigMap's
 * and the Secret's files at their mount paths (under a temporary root), its env from the
 * manifest, placeholder secrets (but none for the keys in `missing`).
 */
async function checkInPod(
  kustomization: ReturnType<typeof readKustomization>,
  deployment: K8sObject,
  missing: readonly string[] = [],
) {
  const { spec, container, configFiles } = podFacts(kustomization, deployment)
  const fs = new ContainerFs(tempDir())
  const secretValues = new Map<string, Record<string, string>>()
  for (const [name, keys] of kustomization.secrets)
    secretValues.set(name, placeholderSecrets(keys.filter((key) => !missing.includes(key))))
  const configMounts: [string, Map<string, string>][] = []
  for (const mount of container.volumeMounts as K8sObject[]) {
    const volume = (spec.volumes as K8sObject[]).find((v) => v.name === mount.name) as K8sObject
    if (volume.secret) fs.mount(mount.mountPath, secretValues.get(volume.secret.secretName) ?? {})
    else
      configMounts.push([mount.mountPath, kustomization.configMaps.get(volume.configMap.name) ?? configFiles])
  }
  for (const [mountPath, files] of configMounts)
    fs.mount(
      mountPath,
      Object.fromEntries([...files].map(([key, file]) => [key, fs.translate(readFileSync(file, 'utf8'))])),
    )
  const env: Record<string, string> = {}
  for (const variable of (container.env ?? []) as K8sObject[]) {
    const ref = variable.valueFrom?.secretKeyRef
    env[variable.name] = ref ? (secretValues.get(ref.name)?.[ref.key] as string) : fs.path(variable.value)
    expect(env[variable.name], `${variable.name} resolves`).toBeDefined()
  }
  const args = (container.args as string[]).map((arg) => fs.path(arg))
  expect(args[0]).toBe('serve')
  return runCli(['check', ...args.slice(1)], { env: { BOTGATE_CONFIG: '', ...env } })
}

/**
 * What a container can read of the layout's Secrets: each key with the path it has in the
 * container (mounted files; `env:NAME` for a secretKeyRef variable).
 */
function readableSecrets(
  kustomization: ReturnType<typeof readKustomization>,
  spec: K8sObject,
  container: K8sObject,
): Map<string, string> {
  const readable = new Map<string, string>()
  for (const mount of (container.volumeMounts ?? []) as K8sObject[]) {
    const secret = (spec.volumes as K8sObject[]).find((v) => v.name === mount.name)?.secret
    if (!secret) continue
    const items: [string, string][] =
      secret.items === undefined
        ? (kustomization.secrets.get(secret.secretName) ?? []).map((key) => [key, key])
        : secret.items.map((item: K8sObject) => [item.key, item.path])
    for (const [key, file] of items) readable.set(key, `${mount.mountPath}/${file}`)
  }
  for (const variable of (container.env ?? []) as K8sObject[]) {
    const ref = variable.valueFrom?.secretKeyRef
    if (ref) readable.set(ref.key, `env:${variable.name}`)
  }
  return readable
}

/** The container's plain env values by name. */
const envOf = (container: K8sObject): Record<string, string> =>
  Object.fromEntries(((container.env ?? []) as K8sObject[]).map((e) => [e.name, e.value]))

/** Every pod template of the layout (Deployments and StatefulSets), with its workload's name. */
function podTemplates(objects: readonly K8sObject[]): [string, K8sObject][] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => [o.metadata.name as string, o.spec.template as K8sObject])
}

/** Whether a NetworkPolicy peer list admits pods with these labels (podSelector only). */
const admitsPods = (peers: K8sObject[], labels: Record<string, string>) =>
  peers.some(
    (peer) => peer.podSelector && !peer.namespaceSelector && isSubset(peer.podSelector.matchLabels, labels),
  )
const isSubset = (subset: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(subset).every(([key, value]) => labels[key] === value)

describe.each([
  { layout: 'sidecar', gatewayDeployment: 'shop-bot', kinds: [] as string[] },
  { layout: 'shared', gatewayDeployment: 'botgate', kinds: ['HorizontalPodAutoscaler', 'StatefulSet'] },
])('deploy/kubernetes/$layout', ({ layout, gatewayDeployment, kinds }) => {
  const kustomization = readKustomization(path.join(DEPLOY, 'kubernetes', layout))
  const { objects } = kustomization
  const deployment = find(objects, 'Deployment', gatewayDeployment)
  const { spec, container, configMount, config } = podFacts(kustomization, deployment)
  const labels = deployment.spec.template.metadata.labels as Record<string, string>
  const port = (name: string) => (container.ports as K8sObject[]).find((p) => p.name === name)?.containerPort
  const service = objects.find(
    (o) =>
      o.kind === 'Service' && isSubset(o.spec.selector, labels) && o.spec.ports[0].targetPort === 'webhook',
  ) as K8sObject
  const gatewayPolicy = objects.find(
    (o) => o.kind === 'NetworkPolicy' && isSubset(o.spec.podSelector.matchLabels, labels),
  ) as K8sObject

  it('runs the image command with the config from the ConfigMap mount', () => {
    expect(container.command).toBeUndefined() // the image's ENTRYPOINT
    expect(['node', '/app/dist/main.js', ...container.args]).toEqual(ENTRY)
    expect(configMount.readOnly).toBe(true)
    expect(configMount.subPath).toBeUndefined() // a subPath mount would never see ConfigMap updates
    expect(container.env.find((e: K8sObject) => e.name === 'BOTGATE_CONFIG')?.value).toBe(CONFIG_PATH)
  })

  it('exposes the config ports; probes ask /healthz and /readyz on the admin port', () => {
    expect(port('webhook')).toBe(portOf(config.listen))
    expect(port('admin')).toBe(portOf(config.admin.listen))
    expect(config.admin.listen).toMatch(/^0\.0\.0\.0:/) // the kubelet connects to the pod address
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' })
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' })
    const annotations = deployment.spec.template.metadata.annotations
    expect(Number(annotations['prometheus.io/port'])).toBe(port('admin'))
    expect(annotations['prometheus.io/path']).toBe('/metrics')
  })

  it('locks down every pod and container, and gives each resources', () => {
    for (const [name, template] of podTemplates(objects)) {
      expect(template.spec.securityContext.runAsNonRoot, name).toBe(true)
      expect(template.spec.securityContext.seccompProfile, name).toEqual({ type: 'RuntimeDefault' })
      expect(template.spec.automountServiceAccountToken, name).toBe(false)
      for (const c of template.spec.containers as K8sObject[]) {
        expect(c.securityContext, `${name}/${c.name}`).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        })
        expect(c.resources.requests.cpu, `${name}/${c.name}`).toBeDefined()
        expect(c.resources.requests.memory, `${name}/${c.name}`).toBeDefined()
        expect(c.resources.limits.memory, `${name}/${c.name}`).toBeDefined()
      }
    }
    expect(spec.securityContext.runAsUser).toBe(Number(only(runtime, 'USER').split(':')[0]))
  })

  it('gives botgate time to drain: grace period > shutdown_grace + preStop pause', () => {
    const preStop = container.lifecycle.preStop.exec.command as string[]
    expect(preStop[0]).toBe('sleep')
    const grace = Number.parseInt(config.shutdown_grace ?? '20s', 10)
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(grace + Number(preStop[1]))
  })

  it('routes the Service, the Ingress, the PDB and the NetworkPolicy to botgate and its ports', () => {
    expect(service.spec.ports).toHaveLength(1) // the webhook only; never the admin port
    const ingress = find(objects, 'Ingress')
    const backend = ingress.spec.rules[0].http.paths[0]
    expect(backend.backend.service).toEqual({ name: service.metadata.name, port: { name: 'webhook' } })
    for (const bot of config.bots) expect(bot.path.startsWith(backend.path)).toBe(true)
    expect(
      isSubset(
        (objects.find((o) => o.kind === 'PodDisruptionBudget') as K8sObject).spec.selector.matchLabels,
        labels,
      ),
    ).toBe(true)
    const rules = new Map(
      (gatewayPolicy.spec.ingress as K8sObject[]).map((rule) => [rule.ports[0].port as number, rule]),
    )
    // The egress port is open on the pod network only where it listens there (shared); the
    // sidecar's egress is on the pod's loopback, which no NetworkPolicy governs.
    const egressPort = port('egress')
    expect([...rules.keys()].sort()).toEqual(
      [port('webhook'), port('admin'), ...(egressPort === undefined ? [] : [egressPort])].sort(),
    )
    // Only namespaces (the ingress controller, monitoring) may connect to the webhook and admin
    // ports: trusted_proxies relies on it.
    for (const name of ['webhook', 'admin'])
      for (const peer of rules.get(port(name) as number)?.from ?? [])
        expect(Object.keys(peer), name).toEqual(['namespaceSelector'])
    expect(deployment.spec.selector.matchLabels).toEqual(labels)
    expect(config.trusted_proxies.length).toBeGreaterThan(0)
  })

  it('the config names only files that the mounts provide', () => {
    const mounted = (container.volumeMounts as K8sObject[]).map((mount) => mount.mountPath as string)
    const secretMount = (container.volumeMounts as K8sObject[]).find((m) => m.name === 'secrets')?.mountPath
    const keys = kustomization.secrets.get('botgate-secrets') as string[]
    const files = fileKeys(config)
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) {
      expect(
        mounted.some((m) => file.startsWith(`${m}/`)),
        file,
      ).toBe(true)
      if (file.startsWith(`${secretMount}/`)) expect(keys).toContain(path.basename(file))
    }
  })

  it('passes `botgate check` as the pod loads it', async () => {
    const result = await checkInPod(kustomization, deployment)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('bot shop (@shop_bot)')
    expect(result.stdout).toContain(`store ${config.store.type}`)
    expect(result.stdout).toContain('outbound {"allow_methods":["messaging"]}')
  })

  it("refuses the pod's config when the bot's egress credential is missing from the Secret", async () => {
    const credential = path.basename(config.bots[0].egress.credential_file)
    const result = await checkInPod(kustomization, deployment, [credential])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('bots[0].egress.credential_file')
  })

  it.skipIf(!HAS_KUBECTL)('builds with kustomize', () => {
    const dir = path.join(tempDir(), layout)
    execFileSync('cp', ['-r', kustomization.dir, dir])
    const names = [...new Set([...kustomization.secrets.values()].flat())]
    for (const [name, value] of Object.entries(placeholderSecrets(names)))
      execFileSync('sh', ['-c', `printf '%s' "$1" > "$2"`, 'sh', value, path.join(dir, 'secrets', name)])
    const built = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })
    const builtKinds = new Set(built.match(/^kind: \S+/gm)?.map((line) => line.slice(6)))
    for (const kind of [
      'ConfigMap',
      'Deployment',
      'Ingress',
      'Namespace',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      ...kinds,
    ])
      expect(builtKinds).toContain(kind)
    expect(built).toContain(`namespace: ${find(objects, 'Namespace').metadata.name}`)
  })
})

describe('deploy/kubernetes/sidecar: the bot in the pod', () => {
  const kustomization = readKustomization(path.join(DEPLOY, 'kubernetes/sidecar'))
  const deployment = find(kustomization.objects, 'Deployment')
  const { spec, config } = podFacts(kustomization, deployment)
  const bot = (spec.containers as K8sObject[]).find((c) => c.name === 'bot') as K8sObject

  it('listens on the pod loopback only, where the upstream URL points', () => {
    const upstream = new URL(config.bots[0].upstream.url)
    expect(upstream.hostname).toBe('127.0.0.1')
    const env = Object.fromEntries((bot.env as K8sObject[]).map((e) => [e.name, e.value]))
    expect(env.HOST).toBe('127.0.0.1')
    expect(env.PORT).toBe(upstream.port)
    expect(bot.ports).toBeUndefined()
    // The bot reads the same upstream secret file botgate sends.
    expect(env.BOTGATE_UPSTREAM_SECRET_FILE).toBe(config.bots[0].upstream.secret_token_file)
  })

  it("mounts the bot token into botgate's container only", () => {
    const volumes = new Map((spec.volumes as K8sObject[]).map((volume) => [volume.name, volume]))
    const projected = (name: string) => {
      const secret = volumes.get(name)?.secret
      return secret?.items === undefined
        ? 'the whole secret'
        : secret.items.map((item: K8sObject) => item.key)
    }
    const mounts = (bot.volumeMounts as K8sObject[]).filter((mount) => volumes.get(mount.name)?.secret)
    expect(mounts.map((mount) => projected(mount.name))).toEqual([
      ['shop_upstream_secret', 'shop_egress_credential'],
    ])
    const botgate = (spec.containers as K8sObject[]).find((c) => c.name === 'botgate') as K8sObject
    const tokenFile = config.bots[0].token_file as string
    expect(
      (botgate.volumeMounts as K8sObject[]).some(
        (mount) =>
          tokenFile.startsWith(`${mount.mountPath}/`) && projected(mount.name) === 'the whole secret',
      ),
    ).toBe(true)
  })
})

describe('deploy/kubernetes/shared: the pool, Redis and the bot', () => {
  const kustomization = readKustomization(path.join(DEPLOY, 'kubernetes/shared'))
  const { objects } = kustomization

  it("gives the bot token to botgate's Secret only, never the bot's", () => {
    expect(kustomization.secrets.get('botgate-secrets')).toContain('shop_bot_token')
    expect(kustomization.secrets.get('shop-bot-secrets')).toEqual([
      'shop_upstream_secret',
      'shop_egress_credential',
    ])
  })
  const deployment = find(objects, 'Deployment', 'botgate')
  const { config } = podFacts(kustomization, deployment)
  const gatewayLabels = deployment.spec.template.metadata.labels
  const policyOf = (labels: Record<string, string>) =>
    objects.find(
      (o) => o.kind === 'NetworkPolicy' && isSubset(o.spec.podSelector.matchLabels, labels),
    ) as K8sObject
  const egressPorts = (policy: K8sObject, labels: Record<string, string>) =>
    (policy.spec.egress as K8sObject[])
      .filter((rule) => admitsPods(rule.to, labels))
      .flatMap((rule) => rule.ports.map((p: K8sObject) => p.port))

  it('lets the HorizontalPodAutoscaler own the replica count, from two up', () => {
    const hpa = find(objects, 'HorizontalPodAutoscaler')
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'botgate' })
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2)
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas)
    expect(deployment.spec.replicas).toBeUndefined()
    const cpu = deployment.spec.template.spec.containers[0].resources.requests.cpu
    expect(cpu).toBeDefined() // utilization is relative to the request
  })

  it('points the store at the Redis StatefulSet, which only botgate can reach', () => {
    expect(config.store.type).toBe('redis')
    const url = new URL(config.store.url)
    const redisService = find(objects, 'Service', url.hostname)
    expect(redisService.spec.ports[0].port).toBe(Number(url.port))
    const redis = find(objects, 'StatefulSet', 'redis')
    expect(redis.spec.serviceName).toBe(url.hostname)
    const redisLabels = redis.spec.template.metadata.labels
    expect(isSubset(redisService.spec.selector, redisLabels)).toBe(true)
    expect(egressPorts(policyOf(gatewayLabels), redisLabels)).toContain(Number(url.port))
    const redisPolicy = policyOf(redisLabels)
    expect(redisPolicy.spec.ingress).toHaveLength(1)
    expect(admitsPods(redisPolicy.spec.ingress[0].from, gatewayLabels)).toBe(true)
    expect(redisPolicy.spec.egress).toBeUndefined() // Redis reaches nothing
    // Redis' password file is the one botgate reads.
    const command = redis.spec.template.spec.containers[0].command.join(' ')
    const mount = redis.spec.template.spec.containers[0].volumeMounts.find(
      (m: K8sObject) => m.name === 'secrets',
    )
    expect(command).toContain(`${mount.mountPath}/${path.basename(config.store.password_file)}`)
    expect(kustomization.secrets.get('redis-secrets')).toEqual([path.basename(config.store.password_file)])
  })

  it("points the upstream at the bot's Service, which only botgate can reach", () => {
    const url = new URL(config.bots[0].upstream.url)
    const botService = find(objects, 'Service', url.hostname)
    expect(botService.spec.ports[0].port).toBe(Number(url.port))
    const bot = find(objects, 'Deployment', url.hostname)
    const botLabels = bot.spec.template.metadata.labels
    expect(isSubset(botService.spec.selector, botLabels)).toBe(true)
    const container = bot.spec.template.spec.containers[0]
    const env = Object.fromEntries((container.env as K8sObject[]).map((e) => [e.name, e.value]))
    expect(Number(env.PORT)).toBe(container.ports[0].containerPort)
    expect(egressPorts(policyOf(gatewayLabels), botLabels)).toContain(Number(url.port))
    const botPolicy = policyOf(botLabels)
    expect(botPolicy.spec.ingress).toHaveLength(1)
    expect(admitsPods(botPolicy.spec.ingress[0].from, gatewayLabels)).toBe(true)
    // The bot reads the upstream secret botgate sends, from its own Secret, and nothing else of botgate's.
    const secretFile = env.BOTGATE_UPSTREAM_SECRET_FILE as string
    const mount = container.volumeMounts.find((m: K8sObject) => secretFile.startsWith(`${m.mountPath}/`))
    const volume = bot.spec.template.spec.volumes.find((v: K8sObject) => v.name === mount.name)
    expect(path.basename(secretFile)).toBe(path.basename(config.bots[0].upstream.secret_token_file))
    expect(kustomization.secrets.get(volume.secret.secretName)).toContain(path.basename(secretFile))
    expect(kustomization.secrets.get(volume.secret.secretName)).not.toContain('shop_secret')
  })
})

describe.each([
  { layout: 'sidecar', gatewayDeployment: 'shop-bot' },
  { layout: 'shared', gatewayDeployment: 'botgate' },
])(
  "deploy/kubernetes/$layout: the bot calls the Bot API through botgate's egress",
  ({ layout, gatewayDeployment }) => {
    const kustomization = readKustomization(path.join(DEPLOY, 'kubernetes', layout))
    const { objects } = kustomization
    const gateway = find(objects, 'Deployment', gatewayDeployment)
    const { spec, container, config } = podFacts(kustomization, gateway)
    const botDeployment = find(objects, 'Deployment', 'shop-bot')
    const botSpec = botDeployment.spec.template.spec
    const bot = (botSpec.containers as K8sObject[]).find((c) => c.name === 'bot') as K8sObject
    const env = envOf(bot)
    const egress = config.egress as { listen: string }
    const entry = config.bots[0] as { token_file: string; egress: { credential_file: string } }
    const credentialKey = path.basename(entry.egress.credential_file)
    const tokenKey = path.basename(entry.token_file)
    const botLabels = botDeployment.spec.template.metadata.labels as Record<string, string>
    const gatewayLabels = gateway.spec.template.metadata.labels as Record<string, string>
    const policyOf = (labels: Record<string, string>) =>
      find(
        objects.filter((o) => o.kind === 'NetworkPolicy' && isSubset(o.spec.podSelector.matchLabels, labels)),
        'NetworkPolicy',
      )

    it('gives the bot container its credential and never the token; botgate reads both', () => {
      const botReads = readableSecrets(kustomization, botSpec, bot)
      expect(botReads.get(credentialKey)).toBe(env.BOT_CREDENTIAL_FILE)
      expect([...botReads.keys()]).not.toContain(tokenKey)
      // Nothing in the bot's environment is or names a token.
      for (const variable of (bot.env ?? []) as K8sObject[]) expect(variable.name).not.toMatch(/TOKEN/)
      expect(JSON.stringify(bot)).not.toContain(tokenKey)
      const gatewayReads = readableSecrets(kustomization, spec, container)
      expect(gatewayReads.get(credentialKey)).toBe(entry.egress.credential_file)
      expect(gatewayReads.get(tokenKey)).toBe(entry.token_file)
      // One file feeds the credential to both, when they read it from different Secrets.
      const sources = ((kustomization.raw.secretGenerator ?? []) as K8sObject[]).flatMap((generator) =>
        (generator.files as string[]).filter((file) => path.basename(file) === credentialKey),
      )
      expect(new Set(sources).size).toBe(1)
    })

    it("points the bot's API base at botgate's egress listener", () => {
      const root = new URL(env.BOT_API_ROOT as string)
      expect(root.protocol).toBe('http:')
      expect(root.pathname).toBe('/') // frameworks add /bot<credential>/<method>
      if (layout === 'sidecar') {
        // The same pod: the egress on the loopback, on a port of its own.
        expect(egress.listen).toBe(`127.0.0.1:${root.port}`)
        expect(root.hostname).toBe('127.0.0.1')
        const taken = [portOf(config.listen), portOf(config.admin.listen), Number(env.PORT)]
        expect(taken).not.toContain(portOf(egress.listen))
      } else {
        // Through a Service of its own, to the container port named egress.
        expect(egress.listen).toMatch(/^0\.0\.0\.0:/)
        const service = find(objects, 'Service', root.hostname)
        const servicePort = (service.spec.ports as K8sObject[]).find((p) => p.port === Number(root.port))
        expect(servicePort?.targetPort).toBe('egress')
        expect(isSubset(service.spec.selector, gatewayLabels)).toBe(true)
        const containerPort = (container.ports as K8sObject[]).find((p) => p.name === 'egress')
        expect(containerPort?.containerPort).toBe(portOf(egress.listen))
        // Never on the ingress path.
        const ingress = find(objects, 'Ingress')
        expect(ingress.spec.rules[0].http.paths[0].backend.service.name).not.toBe(service.metadata.name)
      }
    })

    it('keeps the bot off the token by process isolation too', () => {
      expect(botSpec.shareProcessNamespace ?? false).toBe(false)
      expect(spec.shareProcessNamespace ?? false).toBe(false)
    })

    it.skipIf(layout !== 'shared')(
      "lets only the bot's pods reach the egress, and only botgate's pods reach Telegram",
      () => {
        const gatewayPolicy = policyOf(gatewayLabels)
        const egressRule = (gatewayPolicy.spec.ingress as K8sObject[]).find(
          (rule) => rule.ports[0].port === portOf(egress.listen),
        ) as K8sObject
        expect(egressRule.from.length).toBeGreaterThan(0)
        for (const peer of egressRule.from) expect(Object.keys(peer)).toEqual(['podSelector'])
        expect(admitsPods(egressRule.from, botLabels)).toBe(true)
        const telegram = (rules: K8sObject[]) =>
          rules.filter((rule) =>
            (rule.to as K8sObject[]).some((peer) => peer.ipBlock?.cidr === '149.154.160.0/20'),
          )
        expect(telegram(gatewayPolicy.spec.egress).map((rule) => rule.ports[0].port)).toEqual([443])
        // The bot's pods: DNS and botgate's egress port, nothing else; no address block at all.
        const botPolicy = policyOf(botLabels)
        expect(botPolicy.spec.policyTypes).toContain('Egress')
        for (const rule of botPolicy.spec.egress as K8sObject[]) {
          for (const peer of rule.to) expect(peer.ipBlock).toBeUndefined()
          const ports = (rule.ports as K8sObject[]).map((p) => p.port)
          if (admitsPods(rule.to, gatewayLabels)) expect(ports).toEqual([portOf(egress.listen)])
          else {
            expect(rule.to).toEqual([
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
              },
            ])
            expect(ports).toEqual([53, 53])
          }
        }
        expect(telegram(botPolicy.spec.egress)).toEqual([])
      },
    )
  },
)
