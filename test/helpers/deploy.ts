/**
 * Reading the deployment files in deploy/ the way their tools do, so tests can check that they
 * agree with each other and with botgate's config: a Dockerfile parser (stages, instructions,
 * exec-form arguments), .dockerignore matching, Kubernetes manifests and kustomizations, and a
 * "container filesystem" that maps mount paths to temporary folders so `botgate check` can load
 * a config exactly as the container would see it.
 */

import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseAllDocuments, parseDocument } from 'yaml'
import { ROOT, tempDir } from './gateway.js'

export interface Instruction {
  readonly keyword: string
  /** The text after the keyword, continuation lines joined. */
  readonly text: string
}

export interface Stage {
  readonly from: string
  readonly name: string | undefined
  readonly instructions: readonly Instruction[]
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = []
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (current === '' && (line === '' || line.startsWith('#'))) continue
    if (line.startsWith('#')) continue // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `
      continue
    }
    logical.push(current + line)
    current = ''
  }
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = []
  for (const line of logical) {
    const space = line.search(/\s/)
    const keyword = line.slice(0, space).toUpperCase()
    const rest = line.slice(space + 1).trim()
    if (keyword === 'FROM') {
      const [image = '', as, name] = rest.split(/\s+/)
      stages.push({ from: image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (keyword !== 'ARG' || stages.length > 0) {
      stages.at(-1)?.instructions.push({ keyword, text: rest })
    }
  }
  return stages
}

/** The instructions of a stage with this keyword. */
export function instructions(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword)
}

/** An exec-form argument list (`["node", "x"]`), after optional `--flag=value` options. */
export function execForm(text: string): string[] {
  const json = text.slice(text.indexOf('['))
  return JSON.parse(json) as string[]
}

/** The flags (`--from=deps`) and the plain arguments of a COPY or HEALTHCHECK line. */
export function flagsAndArgs(text: string): { flags: Record<string, string>; args: string[] } {
  const flags: Record<string, string> = {}
  const args: string[] = []
  for (const word of text.split(/\s+/)) {
    const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(word)
    if (flag) flags[flag[1] as string] = flag[2] ?? ''
    else args.push(word)
  }
  return { flags, args }
}

/**
 * Whether `file` (relative to the build context) is sent to the builder under these
 * .dockerignore rules: the last matching rule wins, `!` re-includes (Docker's semantics, with
 * `*`, `**` and a folder matching everything under it).
 */
export function inContext(rules: readonly string[], file: string): boolean {
  let included = true
  for (const rule of rules) {
    const negated = rule.startsWith('!')
    const pattern = (negated ? rule.slice(1) : rule).replace(/^\/+|\/+$/g, '')
    const regex = new RegExp(
      `^${pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?')}(?:/.*)?$`,
    )
    if (regex.test(file)) included = negated
  }
  return included
}

/** The rules of a .dockerignore file. */
export function dockerignore(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are checked field by field in the tests
export type K8sObject = Record<string, any>

/** Every YAML document of the files, in order. */
export function readManifests(files: readonly string[]): K8sObject[] {
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8')).map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`)
      return document.toJS() as K8sObject
    }),
  )
}

export interface Kustomization {
  readonly dir: string
  readonly raw: K8sObject
  readonly objects: K8sObject[]
  /** ConfigMap name -> key -> file path. */
  readonly configMaps: Map<string, Map<string, string>>
  /** Secret name -> keys. */
  readonly secrets: Map<string, string[]>
}

/** A kustomization's resources (recursively for folders) and its generators. */
export function readKustomization(dir: string): Kustomization {
  const raw = readManifests([path.join(dir, 'kustomization.yaml')])[0] as K8sObject
  const objects: K8sObject[] = []
  const configMaps = new Map<string, Map<string, string>>()
  const secrets = new Map<string, string[]>()
  for (const resource of (raw.resources ?? []) as string[]) {
    const target = path.join(dir, resource)
    if (resource.endsWith('.yaml')) objects.push(...readManifests([target]))
    else {
      const nested = readKustomization(target)
      objects.push(...nested.objects)
      for (const [name, files] of nested.configMaps) configMaps.set(name, files)
      for (const [name, keys] of nested.secrets) secrets.set(name, keys)
    }
  }
  const keyOf = (entry: string) =>
    entry.includes('=') ? (entry.split('=')[0] as string) : path.basename(entry)
  const fileOf = (entry: string) =>
    path.join(dir, entry.includes('=') ? (entry.split('=')[1] as string) : entry)
  for (const generator of (raw.configMapGenerator ?? []) as K8sObject[])
    configMaps.set(
      generator.name,
      new Map(((generator.files ?? []) as string[]).map((entry) => [keyOf(entry), fileOf(entry)])),
    )
  for (const generator of (raw.secretGenerator ?? []) as K8sObject[])
    secrets.set(generator.name, ((generator.files ?? []) as string[]).map(keyOf))
  return { dir, raw, objects, configMaps, secrets }
}

/** The one object of this kind (and name, if given). */
export function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name))
  if (matches.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${matches.length}`)
  return matches[0] as K8sObject
}

/** `host:port` -> port, after `${VAR:-default}` took its default. */
export function portOf(listen: string): number {
  const resolved = listen.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}/g, '$1')
  return Number(resolved.slice(resolved.lastIndexOf(':') + 1))
}

/**
 * A container's filesystem, as far as botgate reads it: each mount path maps to a folder under
 * `root`. `path()` translates a path as the container sees it; paths under no mount are returned
 * unchanged.
 */
export class ContainerFs {
  readonly root: string
  readonly #mounts: [string, string][] = []

  constructor(root: string) {
    this.root = root
  }

  /** Mounts a folder holding `files` (name -> content) at `mountPath`. */
  mount(mountPath: string, files: Readonly<Record<string, string>>): void {
    const target = path.join(this.root, mountPath)
    mkdirSync(target, { recursive: true })
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(target, name), content)
    this.#mounts.push([mountPath.replace(/\/$/, ''), target])
  }

  /** Mounts a copy of a folder of the repository at `mountPath`. */
  mountCopy(mountPath: string, folder: string): void {
    const target = path.join(this.root, mountPath)
    cpSync(folder, target, { recursive: true })
    this.#mounts.push([mountPath.replace(/\/$/, ''), target])
  }

  path(containerPath: string): string {
    for (const [mountPath, target] of this.#mounts)
      if (containerPath === mountPath || containerPath.startsWith(`${mountPath}/`))
        return target + containerPath.slice(mountPath.length)
    return containerPath
  }

  /** `text` with every mount path replaced by its folder (for configs naming absolute paths). */
  translate(text: string): string {
    let result = text
    for (const [mountPath, target] of this.#mounts) result = result.split(`${mountPath}/`).join(`${target}/`)
    return result
  }
}

/** The repository path of a file in deploy/. */
export const DEPLOY = path.join(ROOT, 'deploy')

/**
 * A shipped config as a test runs it: `overrides` (key path -> value) set with the YAML kept
 * intact otherwise (listeners on loopback port 0, Redis and upstream at the test's addresses),
 * and the container's mount paths translated to `fs`.
 */
export function deployConfig(
  file: string,
  fs: ContainerFs,
  overrides: readonly [readonly (string | number)[], unknown][],
): string {
  const document = parseDocument(readFileSync(file, 'utf8'))
  for (const [keyPath, value] of overrides) document.setIn(keyPath, value)
  return fs.translate(document.toString())
}

/**
 * Placeholder secrets written by deploy/make-secrets.sh, as the docs tell users to make them:
 * random secrets, token-shaped egress credentials (`*_credential`). Bot tokens (`*_token`) come
 * from @BotFather, not from the script: a token-shaped placeholder.
 */
export function placeholderSecrets(names: readonly string[]): Record<string, string> {
  const dir = path.join(tempDir(), 'secrets')
  const random = names.filter((name) => !name.endsWith('_token'))
  execFileSync('sh', [path.join(DEPLOY, 'make-secrets.sh'), dir, ...random], { stdio: 'pipe' })
  const files: Record<string, string> = {}
  for (const name of random) files[name] = readFileSync(path.join(dir, name), 'utf8')
  for (const name of names.filter((name) => name.endsWith('_token'))) files[name] = '123456:placeholder-token'
  return files
}
