/**
 * @module
 * The `store` section: memory, or Redis in one of its three topologies (a URL, a cluster's
 * nodes, Sentinel), with credentials from the URL or from their own keys (or `_file`s) but not
 * both, and the fail-open/closed choice, whose risky settings are warned about.
 */

import type { Endpoint, RedisTopology, StoreConfig } from '../store/config.js'
import { parseHostPort } from './address.js'
import type { RawConfig } from './schema.js'
import type { SecretReader } from './secrets.js'
import type { Segment } from './source.js'
import { parseDuration } from './units.js'

const REDIS_URL = 'must be a redis:// or rediss:// URL'

interface RedisUrl {
  readonly endpoint: Endpoint
  readonly tls: boolean
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number | undefined
}

/**
 * `redis[s]://[user[:password]@]host[:port][/db]`, the form redis-cli and most clients take.
 * Messages never repeat the URL: it may hold a password.
 */
function parseRedisUrl(text: string): RedisUrl | string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return REDIS_URL
  }
  const scheme = url.protocol.toLowerCase()
  if ((scheme !== 'redis:' && scheme !== 'rediss:') || url.hostname === '') return REDIS_URL
  if (url.search !== '' || url.hash !== '')
    return 'must not carry query parameters: use the store keys (db, tls, username, password)'
  const path = url.pathname
  if (path !== '' && path !== '/' && !/^\/[0-9]{1,5}$/.test(path))
    return 'must end in the database number, like redis://host:6379/0, or in nothing'
  const decode = (part: string) => (part === '' ? undefined : decodeURIComponent(part))
  return {
    endpoint: {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 6379 : Number(url.port),
    },
    tls: scheme === 'rediss:',
    username: decode(url.username),
    password: decode(url.password),
    db: path.length > 1 ? Number(path.slice(1)) : undefined,
  }
}

/** Store keys that only mean something with `type: redis`. */
const REDIS_ONLY_KEYS = [
  'url',
  'cluster',
  'sentinel',
  'username',
  'password',
  'password_file',
  'db',
  'tls',
] as const

/** The `store` section: which Redis, with which credentials, and what to do when it fails. */
export function resolveStore(
  reader: SecretReader,
  raw: RawConfig['store'],
  warnings: string[],
): StoreConfig | undefined {
  const at: Segment[] = ['store']
  if (raw.type === 'memory') {
    for (const key of REDIS_ONLY_KEYS) {
      if (raw[key] !== undefined) reader.source.issue([...at, key], 'applies only to type: redis', 'key')
    }
    return { type: 'memory', maxEntries: raw.max_entries }
  }
  const forms = (['url', 'cluster', 'sentinel'] as const).filter((key) => raw[key] !== undefined)
  if (forms.length === 0) {
    reader.source.issue([...at, 'type'], 'redis needs one of url, cluster or sentinel')
    return undefined
  }
  if (forms.length > 1) {
    reader.source.issue(
      [...at, forms[1] as string],
      `give one of url, cluster or sentinel, not ${forms.join(' and ')}`,
      'key',
    )
    return undefined
  }
  const urls: RedisUrl[] = []
  const parse = (text: string, where: readonly Segment[]) => {
    const parsed = parseRedisUrl(text)
    if (typeof parsed === 'string') reader.source.issue(where, parsed)
    else urls.push(parsed)
  }
  let topology: RedisTopology | undefined
  if (raw.url !== undefined) {
    parse(raw.url, [...at, 'url'])
    const first = urls[0]
    if (first !== undefined) topology = { mode: 'standalone', endpoint: first.endpoint }
  } else if (raw.cluster !== undefined) {
    for (const [index, text] of raw.cluster.entries()) parse(text, [...at, 'cluster', index])
    if (urls.length === raw.cluster.length)
      topology = { mode: 'cluster', nodes: urls.map((url) => url.endpoint) }
  } else if (raw.sentinel !== undefined) {
    const sentinel = raw.sentinel
    const sentinels: Endpoint[] = []
    sentinel.nodes.forEach((text, index) => {
      const endpoint = parseHostPort(text)
      if (endpoint === undefined || endpoint.port === 0)
        reader.source.issue([...at, 'sentinel', 'nodes', index], 'must be host:port with a port of 1-65535')
      else sentinels.push(endpoint)
    })
    const sentinelPassword = reader.secret(
      sentinel as Record<string, unknown>,
      [...at, 'sentinel'],
      'password',
      undefined,
    )
    if (sentinels.length === sentinel.nodes.length) {
      topology = {
        mode: 'sentinel',
        master: sentinel.master,
        sentinels,
        sentinelPassword,
        sentinelTls: sentinel.tls,
      }
    }
  }
  const fromUrl = <K extends 'username' | 'password' | 'db'>(key: K) =>
    urls.find((url) => url[key] !== undefined)?.[key]
  const urlKey = forms[0] === 'url' ? 'url' : 'cluster'
  const password = reader.secret(raw as Record<string, unknown>, at, 'password', undefined)
  const urlPassword = fromUrl('password')
  if (password !== undefined && urlPassword !== undefined)
    reader.source.issue(
      [...at, raw.password_file === undefined ? 'password' : 'password_file'],
      `give the password in ${urlKey} or here, not both`,
    )
  const urlUsername = fromUrl('username')
  if (raw.username !== undefined && urlUsername !== undefined)
    reader.source.issue([...at, 'username'], `give the username in ${urlKey} or here, not both`)
  const urlDb = fromUrl('db')
  if (raw.db !== undefined && urlDb !== undefined)
    reader.source.issue([...at, 'db'], `give the database in ${urlKey} or here, not both`)
  const db = raw.db ?? urlDb ?? 0
  if (topology?.mode === 'cluster' && db !== 0)
    reader.source.issue([...at, raw.db === undefined ? 'cluster' : 'db'], 'Redis Cluster has only database 0')
  const timeoutMs = parseDuration(raw.timeout)
  if (timeoutMs === 0) reader.source.issue([...at, 'timeout'], 'must be more than 0')
  const connectTimeoutMs = parseDuration(raw.connect_timeout)
  if (connectTimeoutMs === 0) reader.source.issue([...at, 'connect_timeout'], 'must be more than 0')
  if (raw.on_error === 'local') {
    warnings.push(
      'store.on_error is local: while Redis is unavailable each replica applies rate limits and dedupe on its own (n replicas allow up to n times each limit, and a duplicate may reach the bot once per replica)',
    )
  } else if (raw.on_error === 'open') {
    warnings.push(
      'store.on_error is open: while Redis is unavailable rate limits and dedupe are off and every update is forwarded',
    )
  }
  if (topology === undefined) return undefined
  return {
    type: 'redis',
    topology,
    username: raw.username ?? urlUsername,
    password: password ?? urlPassword,
    db,
    tls: raw.tls ?? urls.some((url) => url.tls),
    prefix: raw.prefix,
    timeoutMs,
    connectTimeoutMs,
    onError: raw.on_error,
    maxEntries: raw.max_entries,
  }
}
