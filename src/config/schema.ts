/**
 * @module
 * The gateway config schema: the single source for the loader's validation, its defaults, and the
 * JSON Schema that `botgate schema` prints for editors. Rules a schema cannot express (unique
 * names, secret strength, files to read) live in the loader's section files (bots.ts, secrets.ts,
 * store.ts, tls.ts, alerts.ts, keys.ts), orchestrated by load.ts.
 *
 * `errorMessage` on a schema is the message users read when that schema fails; it is either one
 * string or one per JSON Schema keyword.
 */

import { type Static, type TOptional, type TString, Type } from '@sinclair/typebox'
import { pacingSchema } from '../egress/pacing/schema.js'
import { policySchema } from '../policy/schema.js'
import { deliverySchema, queueSchema } from '../queue/schema.js'
import { DEFAULT_API_BASE } from '../telegram/bot-api.js'
import { DURATION_PATTERN, SIZE_PATTERN } from './units.js'

/** `egress.max_upload` when not given: Telegram's upload limit, 50 MB (Bot API, sendDocument). */
export const EGRESS_MAX_UPLOAD = '50MiB'
/** `egress.timeout` when not given. */
export const EGRESS_TIMEOUT = '60s'

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

const httpUrl = (description: string, fallback?: string) =>
  Type.String({
    pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
    ...(fallback === undefined ? {} : { default: fallback }),
    description,
    errorMessage: 'must be an http(s) URL',
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

/** JWS algorithms botgate signs and verifies with (RFC 7518 section 3.1; RFC 8037 for EdDSA). */
const jwsAlg = (description: string) =>
  Type.Union([Type.Literal('HS256'), Type.Literal('EdDSA'), Type.Literal('ES256')], {
    description,
    errorMessage: 'must be HS256, EdDSA or ES256',
  })

/** A JWS `kid` (RFC 7515 section 4.1.4): kept to URL- and header-safe characters. */
const kid = Type.String({
  pattern: '^[A-Za-z0-9._-]{1,64}$',
  description: 'Key id, sent as the token header kid and published in the JWKS: 1-64 of A-Z a-z 0-9 . _ -.',
  errorMessage: 'must be 1-64 characters of A-Z, a-z, 0-9, ., _ and -',
})

const signKeySchema = Type.Object(
  {
    kid,
    ...secretPair('key', 'HS256: the shared key, at least 32 bytes (its UTF-8 bytes are the HMAC key).'),
    ...secretPair(
      'private_key',
      'EdDSA / ES256: a PKCS#8 PEM private key (Ed25519 / P-256), e.g. from openssl genpkey.',
    ),
    ...secretPair(
      'public_key',
      'EdDSA / ES256: an SPKI PEM public key, for an older key that is still published but no longer signs.',
    ),
  },
  { additionalProperties: false },
)

const signSchema = Type.Object(
  {
    alg: jwsAlg(
      'HS256: a key shared with the upstream. EdDSA (Ed25519) or ES256 (P-256): a private key here, the public keys served at the admin listener /.well-known/jwks.json.',
    ),
    keys: Type.Array(signKeySchema, {
      minItems: 1,
      maxItems: 8,
      description:
        'The first key signs; the others are still published for verification (key rotation). HS256: one key.',
      errorMessage: { minItems: 'must list the signing key', maxItems: 'must list at most 8 keys' },
    }),
    header: Type.String({
      pattern: '^[A-Za-z0-9-]{1,64}$',
      default: 'authorization',
      description:
        'The request header carrying the token: authorization sends "Bearer <token>", any other header the bare token. Default: authorization.',
      errorMessage: 'must be an HTTP header name (letters, digits and -)',
    }),
    ttl: duration('60s', 'Token lifetime: exp is iat plus this (at most 1h).'),
    issuer: Type.String({
      minLength: 1,
      maxLength: 256,
      default: 'botgate',
      description: 'The iss claim. Default: botgate.',
    }),
    audience: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: "The aud claim. Default: the bot's name." }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Optional: sign every forward with a short-lived JWT (claims iss, aud, iat, exp, jti, update_id, body_sha256).',
  },
)

const adminKeySchema = Type.Object(
  {
    kid,
    alg: jwsAlg('The algorithm tokens signed with this key use.'),
    ...secretPair('key', 'HS256: the shared key, at least 32 bytes.'),
    ...secretPair('public_key', 'EdDSA / ES256: the SPKI PEM public key of the token issuer.'),
  },
  { additionalProperties: false },
)

const adminApiSchema = Type.Object(
  {
    keys: Type.Array(adminKeySchema, {
      minItems: 1,
      description: 'Keys that admin tokens may be signed with; a token names its key with kid.',
      errorMessage: { minItems: 'must list at least one key' },
    }),
    audience: Type.String({
      minLength: 1,
      maxLength: 256,
      default: 'botgate-admin',
      description: 'The aud claim admin tokens must carry. Default: botgate-admin.',
    }),
    issuer: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'Optional: the iss claim tokens must carry.',
      }),
    ),
    max_token_age: duration(
      '15m',
      'Tokens issued (iat) longer ago than this are refused, whatever their exp.',
    ),
  },
  {
    additionalProperties: false,
    description: 'Optional: the admin API (blocks), authenticated with JWTs. Absent: its routes answer 404.',
  },
)

const upstreamSchema = Type.Object(
  {
    url: httpUrl(
      "The bot's own webhook endpoint, http(s)://host:port/path, usually on localhost or in the pod.",
    ),
    timeout: duration(
      '25s',
      "Longest wait for the upstream's answer before answering 504; keep it well under Telegram's 60 s.",
    ),
    ...secretPair(
      'secret_token',
      'Optional: sent to the upstream as X-Telegram-Bot-Api-Secret-Token so the bot can verify the gateway.',
    ),
    sign: Type.Optional(signSchema),
    delivery: deliverySchema,
    queue: Type.Optional(queueSchema),
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
        "memory (and redis with on_error local, while Redis is down): most dedupe marks kept per bot, and separately most other marks and most rate-limit states; past it the oldest go first (a bot's oldest updates, the least recently used others). Default: 100000.",
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

/** `bots[].egress`: this bot calls the Bot API through botgate's egress listener (docs/egress.md). */
const botEgressSchema = Type.Object(
  {
    ...secretPair(
      'credential',
      'Required: the local key the bot uses in place of its token (same shape, 123:abc..., so frameworks accept it); never the real token.',
    ),
  },
  {
    additionalProperties: false,
    description:
      "Optional: let the bot call the Bot API through egress.listen with a credential; needs the bot's token.",
  },
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
    ...secretPair(
      'token',
      "Optional: the bot's token from @BotFather, read by botgate set-webhook, webhook-info and delete-webhook, and by serve only for the egress (bots[].egress).",
    ),
    egress: Type.Optional(botEgressSchema),
  },
  { additionalProperties: false },
)

export const tlsSchema = Type.Object(
  {
    cert_file: Type.String({
      minLength: 1,
      description:
        'PEM certificate (chain) for the webhook listener, relative to this config file; reloaded with the config.',
    }),
    key_file: Type.String({
      minLength: 1,
      description: 'Its unencrypted PEM private key, relative to this config file; reloaded with the config.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Optional: terminate TLS on the webhook listener (Telegram delivers only over HTTPS). Turning it on or off needs a restart; new files apply on reload.',
  },
)

/** A count per interval that raises an alert, or false to turn that alert off. */
const threshold = (fallback: number, description: string) =>
  Type.Union([Type.Integer({ minimum: 1 }), Type.Literal(false)], {
    default: fallback,
    description: `${description} A count per interval, or false to turn this alert off. Default: ${fallback}.`,
    errorMessage: 'must be a count of at least 1, or false to turn this alert off',
  })

export const alertsSchema = Type.Object(
  {
    ...secretPair('token', 'Required: the token of the bot that sends the alerts (from @BotFather).'),
    chat_id: Type.Union([Type.Integer(), Type.String({ pattern: '^@[A-Za-z][A-Za-z0-9_]{3,31}$' })], {
      description:
        "The chat that receives the alerts: its id (a group's is negative, e.g. -1001234567890) or a channel's @username. The alert bot must be a member.",
      errorMessage: 'must be a chat id (an integer such as -1001234567890) or a channel @username',
    }),
    message_thread_id: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Optional: the forum topic of chat_id to post in.' }),
    ),
    api_base: httpUrl(
      `The Bot API endpoint; change it for a local Bot API server. Default: ${DEFAULT_API_BASE}.`,
      DEFAULT_API_BASE,
    ),
    interval: duration(
      '1m',
      'The alert window: counts are summed over it, and each kind of alert is sent at most once per interval.',
    ),
    bad_secret: threshold(20, 'Requests refused for a wrong or missing secret token (bad_secret).'),
    ip_not_allowed: threshold(100, 'Requests refused for their source address (ip_not_allowed).'),
    upstream_failures: threshold(
      10,
      'Forwards that failed: upstream_unreachable, upstream_timeout, upstream_error and upstream_busy together.',
    ),
    bans: threshold(1, 'Automatic bans raised by the policy section bans (addresses and users together).'),
    egress_token_rejected: threshold(
      1,
      'Egress calls Telegram answered 401: the bot token was revoked (or is wrong).',
    ),
    egress_flood: threshold(10, 'Egress calls Telegram answered 429 (its flood control), retried or not.'),
    dead_letters: threshold(1, 'Queued updates moved to the dead letters (upstream.delivery: queued).'),
    store_outage: Type.Boolean({
      default: true,
      description: 'Alert when the shared store becomes unreachable, and when it is back. Default: true.',
    }),
    reload_refused: Type.Boolean({
      default: true,
      description: 'Alert when a changed config is refused and the running one stays. Default: true.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Optional: operator alerts sent to a Telegram chat, aggregated per interval; they never carry secrets, tokens, paths or message text.',
  },
)

/** `egress`: the Bot API egress listener (docs/egress.md). Absent: no egress. */
const egressSchema = Type.Object(
  {
    listen: hostPort(
      '127.0.0.1:8081',
      'The egress listener bots call the Bot API on; keep it on loopback or a private network.',
    ),
    api_base: httpUrl(
      'Where calls go, with the real token: the Bot API. Default: https://api.telegram.org.',
      'https://api.telegram.org',
    ),
    pacing: Type.Optional(pacingSchema),
    max_upload: Type.String({
      pattern: SIZE_PATTERN,
      default: EGRESS_MAX_UPLOAD,
      description: `Largest body of a call that streams (an upload), multipart framing included; a larger one gets Telegram's 413 and is not sent on. Default: ${EGRESS_MAX_UPLOAD}, Telegram's 50 MB.`,
      errorMessage: 'must be a size like 50MiB or 20MB',
    }),
    timeout: duration(
      EGRESS_TIMEOUT,
      "How long the Bot API may take to start its answer, and to send each next part of its body (a download); past it the bot gets Telegram's 504 shape.",
    ),
  },
  {
    additionalProperties: false,
    description: 'Optional: the Bot API egress, so bots hold a local credential and never their token.',
  },
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
        body: duration(
          '30s',
          'A client must send its whole request, headers and body, within this; at least timeouts.header.',
        ),
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
          'The admin listener: /healthz, /readyz, /metrics, /.well-known/jwks.json and the admin API, never on the webhook port.',
        ),
        api: Type.Optional(adminApiSchema),
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
    tls: Type.Optional(tlsSchema),
    alerts: Type.Optional(alertsSchema),
    egress: Type.Optional(egressSchema),
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
export type RawAlerts = Static<typeof alertsSchema>
export type RawTls = Static<typeof tlsSchema>
export type RawSign = Static<typeof signSchema>
export type RawAdminApi = Static<typeof adminApiSchema>
