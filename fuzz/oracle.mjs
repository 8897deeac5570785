// The fuzzer's oracle: what botgate must answer to a request, and what a forwarded update must be,
// derived from SPEC.md and Telegram's rules alone. It is written independently of botgate's code
// (nothing from src/ is imported or copied), so a bug shared by the gateway and its own unit tests
// does not hide here too. Where SPEC leaves a choice open, the oracle accepts every answer SPEC
// allows; where it cannot tell (schema details), it checks only what holds for every answer.

import { MESSAGE_TYPES as MESSAGE_UPDATE_TYPES } from './mutate.mjs'

const SECRET_HEADER = 'x-telegram-bot-api-secret-token'
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
// SPEC section 5: the message-bearing update types of Bot API 10.1 (the fuzzer's own list).
const MESSAGE_TYPES = new Set(MESSAGE_UPDATE_TYPES)
/** The reason code of each error status of SPEC section 3 that a request can cause here. */
const REASONS = {
  400: 'malformed_json',
  401: 'bad_secret',
  404: 'unknown_route',
  405: 'method_not_allowed',
  413: 'body_too_large',
  415: 'unsupported_media_type',
}
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** HTTP's optional whitespace around a field value (RFC 9110 section 5.5): space and tab only. */
const trimOws = (value) => value.replace(/^[ \t]+|[ \t]+$/g, '')

function values(request, name) {
  return request.headers.filter(([key]) => key.toLowerCase() === name).map(([, value]) => trimOws(value))
}

/**
 * The statuses SPEC section 3 allows for `request`, in check order: 404/405 (route), 401 (secret),
 * 415 (media type), 413 (size), 400 (one JSON object in UTF-8), else 200 (forwarded or dropped:
 * every later check drops with 200). `context`: `{ path, secret, maxBody }`.
 */
export function expectedStatuses(request, context) {
  const query = request.path.indexOf('?')
  const path = query < 0 ? request.path : request.path.slice(0, query)
  if (path !== context.path) return [404]
  if (request.method !== 'POST') return [405]
  const secrets = values(request, SECRET_HEADER)
  if (secrets.length !== 1 || secrets[0] !== context.secret) return [401]
  const types = values(request, 'content-type')
  if (types.length !== 1) return [415]
  const essence = trimOws((types[0] ?? '').split(';')[0] ?? '').toLowerCase()
  if (essence !== 'application/json') return [415]
  const encodings = values(request, 'content-encoding')
  if (encodings.length > 0) {
    const tokens = encodings
      .join(',')
      .split(',')
      .map((token) => trimOws(token).toLowerCase())
    if (tokens.some((token) => token !== 'identity')) return [415]
    // "identity, identity" is still no encoding; SPEC does not say whether a list is refused.
    if (tokens.length > 1) return [415, ...afterMediaType(request, context)]
  }
  return afterMediaType(request, context)
}

function afterMediaType(request, context) {
  if (request.body.length > context.maxBody) return [413]
  return parseObject(request.body) === undefined ? [400] : [200]
}

/** The body as one JSON object, or undefined (RFC 8259: UTF-8, no byte order mark). */
export function parseObject(body) {
  if (body.length === 0) return undefined
  let value
  try {
    value = JSON.parse(utf8.decode(body))
  } catch {
    return undefined
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined
}

/**
 * A command at `at` of `text` by Telegram's grammar (Bot API "BotCommand", SPEC section 1): `/`,
 * a name of Latin letters, digits and `_`, optionally `@username`. Lower-cased; undefined if none.
 */
function commandAt(text, at) {
  if (text[at] !== '/') return undefined
  const match = /^\/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?/.exec(text.slice(at, at + 100))
  if (match === null) return undefined
  return { name: (match[1] ?? '').toLowerCase(), mention: match[2]?.toLowerCase() }
}

/** Every command of one text: each bot_command entity's, and the leading word, always. */
function commandsOf(text, entities, problems, field) {
  if (typeof text !== 'string') return []
  const found = []
  const leading = commandAt(text, 0)
  if (leading !== undefined) found.push(leading)
  if (!Array.isArray(entities)) return found
  for (const entity of entities) {
    if (entity === null || typeof entity !== 'object') continue
    const { offset, length, type } = entity
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > text.length
    )
      problems.push(
        `an entity of ${field} outside its text (offset ${offset}, length ${length}, text ${text.length})`,
      )
    else if (type === 'bot_command') {
      const command = commandAt(text.slice(offset, offset + length), 0)
      if (command !== undefined) found.push(command)
    }
  }
  return found
}

/**
 * What is wrong with a forwarded update under the fuzz policy (`context.policy`: `{ types,
 * commands, admins, username }`): SPEC sections 1, 4 and 5. Empty when nothing is.
 */
export function policyProblems(update, context) {
  const { policy } = context
  const problems = []
  const id = update.update_id
  if (!Number.isSafeInteger(id) || id < 0)
    problems.push(`update_id ${JSON.stringify(id)} is not an integer >= 0`)
  const types = Object.keys(update).filter((key) => key !== 'update_id')
  if (types.length !== 1) problems.push(`${types.length} update types`)
  const type = types[0]
  if (type !== undefined && !policy.types.includes(type))
    problems.push(`update type ${JSON.stringify(type)} not allowed`)
  // Prototype keys anywhere (SPEC section 4), walked with a stack of bounded size.
  const stack = [update]
  let visited = 0
  while (stack.length > 0 && visited < 1_000_000) {
    const node = stack.pop()
    visited++
    if (node === null || typeof node !== 'object') continue
    for (const key of Object.keys(node)) {
      if (PROTOTYPE_KEYS.has(key)) problems.push(`prototype key ${key}`)
      stack.push(node[key])
    }
  }
  if (stack.length > 0) problems.push('more than a million values')
  const message = type === undefined ? undefined : update[type]
  if (!MESSAGE_TYPES.has(type) || message === null || typeof message !== 'object') return problems
  // SPEC section 1: text and caption up to 4096 characters. Telegram does not say which unit; code
  // points are the larger reading (a UTF-16 pair is one), so that is the most a gateway may allow.
  for (const field of ['text', 'caption']) {
    const text = message[field]
    if (typeof text === 'string' && text.length > 4096) {
      const points = [...text].length
      if (points > 4096) problems.push(`${field} of ${points} code points`)
    }
  }
  const commands = [
    ...commandsOf(message.text, message.entities, problems, 'text'),
    ...commandsOf(message.caption, message.caption_entities, problems, 'caption'),
  ]
  const from = message.from?.id
  for (const { name, mention } of commands) {
    if (mention !== undefined && mention !== policy.username)
      problems.push(`/${name}@${mention}: another bot's command`)
    else if (!policy.commands.includes(name)) problems.push(`/${name}: not on the whitelist`)
    else if (policy.restricted.includes(name) && !policy.admins.includes(from))
      problems.push(`/${name} from ${JSON.stringify(from)}, who is not an admin`)
  }
  return problems
}

function containsSecret(text, context) {
  return context.secrets.find((secret) => text.includes(secret))
}

/**
 * The violations of one exchange: `answer` is `{ status, headers, body }` or `{ error }` (the
 * connection failed); `forwarded` is what the upstream received for it, `{ headers, body }`, or
 * undefined. `context`: `{ path, secret, maxBody, secrets, upstreamSecret, upstreamReply, policy }`.
 */
export function judge(request, answer, forwarded, context) {
  const expected = expectedStatuses(request, context)
  const violations = []
  if (answer.error !== undefined) {
    // A refusal before the body is read may close the connection under a client still sending.
    const refusedEarly = expected.every(
      (status) => status === 413 || status === 401 || status === 415 || status === 404 || status === 405,
    )
    if (!refusedEarly) violations.push(`no answer: ${answer.error}`)
    if (forwarded !== undefined) violations.push('forwarded, but the client got no answer')
    return { expected, violations }
  }
  const { status, headers, body } = answer
  if (status >= 500) violations.push(`status ${status}`)
  if (!expected.includes(status)) violations.push(`status ${status}, expected ${expected.join(' or ')}`)
  if (typeof headers['x-request-id'] !== 'string') violations.push('no X-Request-Id')
  const text = body.toString('utf8')
  const leaked = containsSecret(text, context) ?? containsSecret(JSON.stringify(headers), context)
  if (leaked !== undefined) violations.push('a secret in the answer')
  const reason = REASONS[status]
  if (reason !== undefined && request.method !== 'HEAD' && text !== `{"ok":false,"error":"${reason}"}`)
    violations.push(`error body ${JSON.stringify(text.slice(0, 200))}`)
  if (forwarded === undefined) {
    if (status === 200 && text !== '') {
      const reply = parseObject(body)
      if (reply === undefined || !['sendMessage', 'answerCallbackQuery'].includes(reply.method))
        violations.push(`a dropped update answered ${JSON.stringify(text.slice(0, 200))}`)
    }
    return { expected, violations }
  }
  // Forwarded (SPEC section 3, check 13).
  if (status !== 200) violations.push(`forwarded, answered ${status}`)
  if (!forwarded.body.equals(request.body)) violations.push('forwarded body differs from the one sent')
  if (text !== context.upstreamReply) violations.push("the upstream's reply not passed back")
  const fh = forwarded.headers
  if (fh['x-telegram-bot-api-secret-token'] !== context.upstreamSecret)
    violations.push('forward without the upstream secret (or with another)')
  if (fh['content-type'] !== 'application/json') violations.push(`forward content-type ${fh['content-type']}`)
  if (fh['x-request-id'] !== headers['x-request-id'])
    violations.push('forward X-Request-Id differs from the answer')
  for (const name of ['x-fuzz-marker', 'authorization', 'content-encoding'])
    if (fh[name] !== undefined) violations.push(`incoming header ${name} forwarded`)
  const update = parseObject(forwarded.body)
  if (update === undefined) violations.push('forwarded a body that is not one JSON object')
  else for (const problem of policyProblems(update, context)) violations.push(`forwarded: ${problem}`)
  return { expected, violations }
}
