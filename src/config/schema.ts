/**
 * @module
 * The gateway config schema: the single source for the loader's validation, its defaults, and the
 * JSON Schema that `botgate schema` prints for editors. Rules a schema cannot express (unique
 * names, secret strength, files to read) live in {@link ../config/load.ts}, next to the loader.
 *
 * `errorMessage` on a schema is the message users read when that schema fails; it is either one
 * string or one per JSON Schema keyword.
 */

import { type Static, type TOptional, type TString, Type } from '@sinclair/typebox'
import { policySchema } from '../policy/schema.js'
import { DURATION_PATTERN } from './units.js'

const duration = (fallback: string, description: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    default: fallback,
    description: `${description} A duration like 500ms, 25s, 5m, 24h or 7d. Default: ${fallback}.`,
    errorMessage: 'must be a duration like 500ms, 25s, 5m, 24h or 7d',
  })

const hostPort = (fallback: string, description: string) =>
  Type.String({
    pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
    default: fallback,
    description: `${description} host:port. Default: ${fallback}.`,
    errorMessage: 'must be host:port, e.g. 0.0.0.0:8080 or [::]:8080',
  })

/** A value given directly (usually `${ENV}`) or read from `<key>_file` (Docker and Kubernetes secrets). */
function secretPair<K extends string>(key: K, description: string) {
  return {
    [key]: Type.Optional(Type.String({ description: `${description} Or give ${key}_file.` })),
    [`${key}_file`]: Type.Optional(
      Type.String({
        minLength: 1,
        description: `File holding ${key} (one trailing newline is trimmed), relative to this config file.`,
      }),
    ),
  } as Record<K | `${K}_file`, TOptional<TString>>
}

const upstreamSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      description:
        "The bot's own webhook endpoint, http(s)://host:port/path, usually on localhost or in the pod.",
      errorMessage: 'must be an http(s) URL',
    }),
    timeout: duration(
      '25s',
      "Longest wait for the upstream's answer before answering 504; keep it well under Telegram's 60 s.",
    ),
    ...secretPair(
      'secret_token',
      'Optional: sent to the upstream as X-Telegram-Bot-Api-Secret-Token so the bot can verify the gateway.',
    ),
  },
  { additionalProperties: false, description: 'Where clean updates go.' },
)

const redisUrl = (description: string) =>
  Type.String({
    pattern: '^[Rr][Ee][Dd][Ii][Ss][Ss]?://',
    description,
    errorMessage: 'must be a redis:// or rediss:// URL',
  })

const storeSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
      default: 'memory',
      description:
        'Where shared state lives (dedupe marks, rate limits, blocks). memory: this process only (one instance). redis: shared by every replica.',
      errorMessage: 'must be memory or redis',
    }),
    max_entries: Type.Integer({
      minimum: 1000,
      default: 100000,
      description:
        'memory (and redis with on_error local, while Redis is down): most marks kept, and separately most rate-limit states; past it the least recently used go first. Default: 100000.',
    }),
    url: Type.Optional(
      redisUrl(
        'redis: one server, redis://[user:password@]host[:port][/db], or rediss:// for TLS. Give one of url, cluster or sentinel.',
      ),
    ),
    cluster: Type.Optional(
      Type.Array(redisUrl('A Redis Cluster node, redis:// or rediss://.'), {
        minItems: 1,
        description: 'redis: Redis Cluster, some of its nodes (the others are discovered).',
      }),
    ),
    sentinel: Type.Optional(
      Type.Object(
        {
          master: Type.String({
            minLength: 1,
            description: 'The master name the Sentinels monitor (sentinel monitor <name> ...).',
          }),
          nodes: Type.Array(
            Type.String({
              pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
              errorMessage: 'must be host:port, e.g. sentinel-1:26379',
            }),
            { minItems: 1, description: 'The Sentinels, host:port.' },
          ),
          ...secretPair('password', "Optional: the Sentinels' own password (their requirepass)."),
          tls: Type.Boolean({
            default: false,
            description: 'Connect to the Sentinels with TLS. Default: false.',
          }),
        },
        { additionalProperties: false, description: 'redis: a master found through Redis Sentinel.' },
      ),
    ),
    username: Type.Optional(
      Type.String({ minLength: 1, description: 'redis: the ACL user (Redis 6+). Or give it in the URL.' }),
    ),
    ...secretPair('password', 'redis: the password (AUTH). Or give it in the URL.'),
    db: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'redis: the database number. Or give it in the URL. Default: 0.',
      }),
    ),
    tls: Type.Optional(
      Type.Boolean({ description: 'redis: connect with TLS (implied by rediss:// URLs). Default: false.' }),
    ),
    prefix: Type.String({
      pattern: '^[^{}\\s]{0,64}$',
      default: 'botgate:',
      description:
        'redis: put before every key, so several gateways (or other apps) can share one Redis. Default: botgate:.',
      errorMessage: 'must be at most 64 characters without spaces, { or } (botgate puts a hash tag after it)',
    }),
    timeout: duration('50ms', 'redis: longest wait for an answer before on_error applies.'),
    connect_timeout: duration('5s', 'redis: longest wait for a connection, also at startup.'),
    on_error: Type.Union([Type.Literal('local'), Type.Literal('open'), Type.Literal('closed')], {
      default: 'local',
      description:
        'redis: when Redis fails or is slower than timeout. local: per-process limits and dedupe; open: no limits or dedupe, forward; closed: 503 with Retry-After. Default: local.',
      errorMessage: 'must be local, open or closed',
    }),
  },
  { additionalProperties: false, default: {} },
)

export const botSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9_-]{1,64}$',
      description: 'Unique name; appears in logs and metrics. Lower-case letters, digits, _ and -.',
      errorMessage: 'must be 1-64 characters of a-z, 0-9, _ and -',
    }),
    username: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_]{1,32}$',
        description: "The bot's @username without the @, to recognise /command@username.",
        errorMessage: 'must be the bot username without @ (letters, digits and _)',
      }),
    ),
    path: Type.String({
      pattern: '^/[A-Za-z0-9._~/-]*$',
      description:
        'The exact webhook path Telegram posts to. Put a long random segment in it (see `botgate secret`).',
      errorMessage: 'must be a URL path starting with / made of letters, digits and . _ ~ / -',
    }),
    ...secretPair(
      'secret_token',
      'Required: the secret_token given to setWebhook; 32-256 characters of A-Z a-z 0-9 _ -.',
    ),
    max_inflight: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 100,
      description:
        'Requests of this bot processed at once; past it the answer is 503 with Retry-After. Default: 100.',
    }),
    upstream: upstreamSchema,
    policy: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), policySchema], {
        description:
          'A policy file (relative to this config file) or an inline policy. Default: the shipped policies/default.yaml.',
        errorMessage: 'must be a path to a policy file or an inline policy mapping',
      }),
    ),
  },
  { additionalProperties: false },
)

export const configSchema = Type.Object(
  {
    listen: hostPort('0.0.0.0:8080', 'The webhook listener.'),
    trusted_proxies: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Peers (CIDRs or addresses) whose X-Forwarded-For is believed: your ingress or reverse proxy. Default: none.',
    }),
    timeouts: Type.Object(
      {
        header: duration('10s', 'A client must send its request headers within this.'),
        body: duration('30s', 'A client must send its whole request, headers and body, within this.'),
        keep_alive: duration('30s', 'An idle keep-alive connection is closed after this.'),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Cut off slow or stuck clients on the webhook listener.',
      },
    ),
    shutdown_grace: duration('20s', 'On SIGTERM, in-flight requests get this long to finish.'),
    admin: Type.Object(
      {
        listen: hostPort(
          '127.0.0.1:9090',
          'The admin listener: /healthz, /readyz and /metrics, never on the webhook port.',
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    store: storeSchema,
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
          { default: 'info', errorMessage: 'must be one of fatal, error, warn, info, debug, trace, silent' },
        ),
        message_text: Type.Boolean({
          default: false,
          description: 'Log message text and captions. Off by default: user content stays out of logs.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    bots: Type.Array(botSchema, { minItems: 1, errorMessage: { minItems: 'must list at least one bot' } }),
  },
  {
    additionalProperties: false,
    title: 'botgate config',
    description: 'botgate: a security gateway in front of Telegram bot webhooks.',
  },
)

export type RawConfig = Static<typeof configSchema>
export type RawBot = Static<typeof botSchema>
