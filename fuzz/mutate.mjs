// The fuzzer's mutators: each case is one HTTP request built from a real Telegram update sample
// (test/fixtures/updates/) and one to three mutations of its JSON tree, its bytes or its request
// line and headers. A case depends only on (seed, index), never on the order in which concurrent
// cases run, so a violation reproduces from those two numbers alone (run.mjs --seed S --only I).
//
// Nothing here imports botgate's src/: the mutators know Telegram's shapes (Bot API, "Update",
// "Message", "MessageEntity") and HTTP, not the gateway's code.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

/** A deterministic generator of numbers in [0, 1) for case `index` of run `seed` (sfc32). */
export function caseRandom(seed, index) {
  // splitmix32 of seed and index gives sfc32's four words, so neighbouring cases are unrelated.
  let state = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0
  const mix = () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = mix()
  let b = mix()
  let c = mix()
  let d = mix() ^ index
  return () => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
}

/** The samples: every *.json of `dir`, as text (some are deliberately not valid updates). */
export function loadSamples(dir) {
  const names = readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
  return names.map((name) => ({ name, text: readFileSync(path.join(dir, name), 'utf8').trim() }))
}

// Update types of Bot API 10.1 that carry a Message (SPEC section 5), and some that do not.
export const MESSAGE_TYPES = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_message',
  'edited_business_message',
]
const OTHER_TYPES = ['callback_query', 'inline_query', 'my_chat_member', 'poll', 'chosen_inline_result']
const UNKNOWN_TYPES = ['subscription', 'x_fuzz_type', 'Message', 'message ']
export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype']

const pick = (random, list) => list[Math.floor(random() * list.length)]
const int = (random, low, high) => low + Math.floor(random() * (high - low + 1))

// A raw JSON token the serializer writes as is (numbers JSON.stringify cannot write, deep nesting).
const RAW = '\u0000raw:'
const raw = (token) => RAW + token
const RAW_STRING = /"\\u0000raw:((?:[^"\\]|\\.)*)"/g
function serialize(tree) {
  const text = JSON.stringify(tree)
  if (!text.includes('\\u0000raw:')) return text
  return text.replace(RAW_STRING, (_match, token) => JSON.parse(`"${token}"`))
}

/** Every (holder, key) of the tree, walked with an explicit stack (trees may be deep). */
function slots(tree) {
  const found = []
  const stack = [tree]
  while (stack.length > 0 && found.length < 10_000) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object') continue
    for (const key of Object.keys(node)) {
      found.push([node, key])
      stack.push(node[key])
    }
  }
  return found
}

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Sets an own property, `__proto__` included (plain assignment would change the prototype). */
function define(holder, key, value) {
  Object.defineProperty(holder, key, { value, enumerable: true, writable: true, configurable: true })
}

/** The update-type key of an envelope (the first key that is not update_id), if any. */
function typeKey(tree) {
  return Object.keys(tree).find((key) => key !== 'update_id')
}

/** The Message of an update to put text in: the payload of a message type, a callback's message. */
function messageOf(tree) {
  const type = typeKey(tree)
  if (type === undefined || !isObject(tree[type])) return undefined
  const payload = tree[type]
  if (isObject(payload.message)) return payload.message
  return payload
}

// --- values -------------------------------------------------------------------------------

const ODD_VALUES = [null, true, false, 0, -1, 1.5, '', 'x', '1', [], {}, [1, 'a'], { a: 1 }, [null]]
const ODD_NUMBERS = [
  '9007199254740993',
  '9007199254740992',
  '-9007199254740993',
  '18446744073709551616',
  '123456789012345678901234567890',
  '1e400',
  '-1e400',
  '1.5',
  '-0',
  '-1',
  '0.0000001',
  '1E2',
  '4503599627370496',
  '4503599627370495.5',
  '2147483648',
  '1e-400',
]
const ZERO_WIDTH = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u180e']
const SLASHES = ['/', '/', '/', '/', '\uff0f', '\u2044', '\u2215', '\u29f8']
const COMMAND_NAMES = [
  'start',
  'help',
  'settings',
  'ban',
  'report',
  'admin',
  'START',
  'Ban',
  'sTaRt',
  'start_x',
  'ban_all',
  'a'.repeat(33),
  'b'.repeat(32),
  'h\u0435lp', // Cyrillic e
  'st\u0430rt', // Cyrillic a
  '',
]
const MENTIONS = [
  '',
  '',
  '@fuzz_bot',
  '@FUZZ_BOT',
  '@Fuzz_Bot',
  '@otherbot',
  '@fuzz_bot_x',
  '@',
  '@fuzz_bot@otherbot',
  '@fuzz\u200b_bot',
  '@\uff46uzz_bot',
]

/** A text that holds a command, plainly or hidden, and where in it the command starts. */
function commandText(random) {
  let name = pick(random, COMMAND_NAMES)
  if (random() < 0.15) {
    const at = int(random, 0, name.length)
    name = name.slice(0, at) + pick(random, ZERO_WIDTH) + name.slice(at)
  }
  const command = pick(random, SLASHES) + name + pick(random, MENTIONS)
  const before = pick(random, [
    '',
    '',
    '',
    '',
    'hi ',
    ' ',
    '\n',
    'x',
    pick(random, ZERO_WIDTH),
    '\ud83d\ude00 ',
  ])
  const after = pick(random, ['', '', ' now', ' /ban', '\n/start', '/ban', ' @otherbot', 'x'])
  return { text: before + command + after, offset: before.length, length: command.length }
}

/** Entities for a command text: right, none, or wrong in one of the ways a forger could try. */
function commandEntities(random, at, text) {
  const right = { type: 'bot_command', offset: at.offset, length: at.length }
  switch (int(random, 0, 11)) {
    case 0:
    case 1:
    case 2:
      return [right]
    case 3:
      return undefined
    case 4:
      return [{ ...right, length: Math.max(1, at.length - int(random, 1, 4)) }] // shorter
    case 5:
      return [{ ...right, length: at.length + int(random, 1, 50) }] // past the end
    case 6:
      return [{ ...right, offset: pick(random, [-1, text.length, text.length + 5, 1e9]) }]
    case 7:
      return [{ ...right, offset: at.offset + 0.5 }, right]
    case 8:
      return [right, { type: 'bold', offset: 0, length: text.length }, { ...right, offset: 0 }] // overlapping
    case 9:
      return [{ ...right, type: pick(random, ['Bot_Command', 'bot_commands', 'hashtag', 'mention']) }]
    case 10:
      return [{ type: 'bot_command', offset: 0, length: 1 }]
    default:
      return [{ type: 'bot_command', offset: String(at.offset), length: at.length }]
  }
}

// --- tree mutators: (random, tree, context) => tree (mutated in place or replaced) --------------

const TREE_MUTATORS = {
  wrong_type(random, tree) {
    const all = slots(tree)
    if (all.length > 0) {
      const [holder, key] = pick(random, all)
      holder[key] = structuredClone(pick(random, ODD_VALUES))
    }
    return tree
  },
  odd_number(random, tree) {
    const numeric = slots(tree).filter(
      ([holder, key]) => typeof holder[key] === 'number' || /id$|offset|length|date/.test(key),
    )
    const [holder, key] = numeric.length > 0 ? pick(random, numeric) : [tree, 'update_id']
    holder[key] = raw(pick(random, ODD_NUMBERS))
    return tree
  },
  delete_key(random, tree) {
    const all = slots(tree)
    if (all.length > 0) {
      const [holder, key] = pick(random, all)
      if (Array.isArray(holder)) holder.splice(Number(key), 1)
      else delete holder[key]
    }
    return tree
  },
  unknown_key(random, tree) {
    const objects = slots(tree)
      .map(([holder, key]) => holder[key])
      .filter(isObject)
    define(
      pick(random, [tree, ...objects]),
      `x_fuzz_${int(random, 0, 9)}`,
      structuredClone(pick(random, ODD_VALUES)),
    )
    return tree
  },
  prototype_key(random, tree) {
    const objects = slots(tree)
      .map(([holder, key]) => holder[key])
      .filter(isObject)
    const value = pick(random, [{}, { admin: true }, 'x', null, 1, { toString: 1 }, []])
    define(pick(random, [tree, ...objects]), pick(random, PROTOTYPE_KEYS), structuredClone(value))
    return tree
  },
  envelope(random, tree) {
    const type = typeKey(tree)
    const payload = type === undefined ? {} : tree[type]
    switch (int(random, 0, 6)) {
      case 0: // no update type
        if (type !== undefined) delete tree[type]
        return tree
      case 1: // two update types
        define(tree, pick(random, [...MESSAGE_TYPES, ...OTHER_TYPES]), structuredClone(payload))
        return tree
      case 2: // another message-bearing type, same message
      case 3: {
        const next = { update_id: tree.update_id }
        define(next, pick(random, random() < 0.7 ? MESSAGE_TYPES : OTHER_TYPES), payload)
        return next
      }
      case 4: {
        const next = { update_id: tree.update_id }
        define(next, pick(random, UNKNOWN_TYPES), payload)
        return next
      }
      case 5: // the update id
        tree.update_id = pick(random, [-1, '1', 1.5, null, raw('9007199254740993'), raw('1e400'), 0, []])
        return tree
      default: {
        // update_id last, or missing
        const next = {}
        if (type !== undefined) define(next, type, payload)
        if (random() < 0.5) next.update_id = tree.update_id
        return next
      }
    }
  },
  deep_nesting(random, tree) {
    const depth = pick(random, [20, 64, 65, 100, 257, 1000, 5000])
    const [open, close] = random() < 0.5 ? ['[', ']'] : ['{"a":', '}']
    const token = open.repeat(depth) + (open === '[' ? '' : '1') + close.repeat(depth)
    const all = slots(tree)
    const [holder, key] = all.length > 0 && random() < 0.8 ? pick(random, all) : [tree, 'x_deep']
    holder[key] = raw(token)
    return tree
  },
  lone_surrogate(random, tree) {
    const strings = slots(tree).filter(([holder, key]) => typeof holder[key] === 'string')
    const [holder, key] = strings.length > 0 ? pick(random, strings) : [tree, 'x_text']
    const text = String(holder[key] ?? '')
    const at = int(random, 0, text.length)
    holder[key] =
      text.slice(0, at) +
      pick(random, ['\ud800', '\udfff', '\udc00\ud800', '\u0000', '\uffff']) +
      text.slice(at)
    return tree
  },
  command(random, tree) {
    let message = messageOf(tree)
    if (message === undefined) {
      message = {
        message_id: 1,
        date: 1,
        chat: { id: 5, type: 'private' },
        from: { id: 5, is_bot: false, first_name: 'f' },
      }
      tree = { update_id: typeof tree.update_id === 'number' ? tree.update_id : 1, message }
    }
    const at = commandText(random)
    const entities = commandEntities(random, at, at.text)
    for (const key of ['text', 'entities', 'caption', 'caption_entities']) delete message[key]
    if (random() < 0.7) {
      message.text = at.text
      if (entities !== undefined) message[random() < 0.9 ? 'entities' : 'caption_entities'] = entities
    } else {
      message.caption = at.text
      message.photo = [{ file_id: 'AgAD', file_unique_id: 'AQAD', width: 90, height: 90 }]
      if (entities !== undefined) message[random() < 0.9 ? 'caption_entities' : 'entities'] = entities
    }
    if (random() < 0.3) message.from = { id: pick(random, [111, 222, 111.0]), is_bot: false, first_name: 'a' }
    return tree
  },
  long_text(random, tree) {
    const message = messageOf(tree)
    if (message === undefined) return tree
    const length = pick(random, [1024, 1025, 4095, 4096, 4097, 8192])
    const start = random() < 0.3 ? '/ban ' : ''
    const unit = pick(random, ['a', '\u00e9', '\ud83d\ude00', ' '])
    const text = (start + unit.repeat(length)).slice(0, length)
    if (random() < 0.5) message.text = text
    else message.caption = text
    return tree
  },
}

// --- byte mutators: (random, bytes) => bytes -------------------------------------------------

const INVALID_UTF8 = [
  [0xff],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0x80],
  [0xf4, 0x90, 0x80, 0x80],
]

const BYTE_MUTATORS = {
  truncate(random, bytes) {
    return bytes.subarray(0, int(random, 0, Math.max(0, bytes.length - 1)))
  },
  flip_byte(random, bytes) {
    const copy = Buffer.from(bytes)
    if (copy.length > 0) copy[int(random, 0, copy.length - 1)] = int(random, 0, 255)
    return copy
  },
  invalid_utf8(random, bytes) {
    // Inside a string literal where there is one, so only the encoding is wrong.
    const quote = bytes.indexOf(0x22, int(random, 0, Math.max(0, bytes.length - 1)))
    const at = quote < 0 ? int(random, 0, bytes.length) : quote + 1
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(pick(random, INVALID_UTF8)), bytes.subarray(at)])
  },
  control_char(random, bytes) {
    const quote = bytes.indexOf(0x22, int(random, 0, Math.max(0, bytes.length - 1)))
    const at = quote < 0 ? 0 : quote + 1
    return Buffer.concat([
      bytes.subarray(0, at),
      Buffer.from([pick(random, [0, 1, 9, 10, 13, 0x1f])]),
      bytes.subarray(at),
    ])
  },
  framing(random, bytes) {
    const head = pick(random, ['\ufeff', ' \r\n\t', '', '[', ''])
    const tail = pick(random, ['', ' \n', '\u0000', '}', ',{}', '{"update_id":2}', 'x', '\ufeff'])
    return Buffer.concat([Buffer.from(head), bytes, Buffer.from(tail)])
  },
  not_an_object(random) {
    return Buffer.from(
      pick(random, [
        '',
        ' ',
        'null',
        '[]',
        '"update"',
        '1',
        'true',
        'update_id=1&message=x',
        '{',
        '}',
        '[{"update_id":1}]',
        '\u00ff',
        'NaN',
        '{"update_id":1,}',
      ]),
      'latin1',
    )
  },
}

// --- request mutators: (random, request, context) => void ----------------------------------------

function setHeader(request, name, value) {
  request.headers = request.headers.filter(([key]) => key.toLowerCase() !== name.toLowerCase())
  if (value !== undefined) request.headers.push([name, value])
}

function headerValue(request, name) {
  return request.headers.find(([key]) => key.toLowerCase() === name)?.[1]
}

const REQUEST_MUTATORS = {
  secret(random, request, context) {
    const header = 'x-telegram-bot-api-secret-token'
    const good = context.secret
    const wrong = good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A')
    switch (int(random, 0, 9)) {
      case 0:
        return setHeader(request, header, undefined)
      case 1:
        return setHeader(request, header, wrong)
      case 2:
        request.headers.push([header, good]) // the same header twice
        return
      case 3:
        request.headers.push([header, wrong])
        return
      case 4:
        return setHeader(request, 'X-TELEGRAM-BOT-API-SECRET-TOKEN', good)
      case 5:
        return setHeader(request, header, ` ${good}\t`)
      case 6:
        return setHeader(request, header, '')
      case 7:
        return setHeader(request, header, `${good}x`)
      case 8:
        return setHeader(
          request,
          header,
          good.toUpperCase() === good ? good.toLowerCase() : good.toUpperCase(),
        )
      default:
        return setHeader(request, header, `${good},${good}`)
    }
  },
  content_type(random, request) {
    const value = pick(random, [
      undefined,
      'text/plain',
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/json ',
      'application/jsonp',
      'application/json, text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
      'application/json;charset=latin1',
      'application/problem+json',
      ' application/json',
      'application/json\t;x=y',
    ])
    setHeader(request, 'content-type', value)
  },
  content_encoding(random, request) {
    const value = pick(random, [
      'gzip',
      'deflate',
      'br',
      'identity',
      'IDENTITY',
      ' identity ',
      'identity, gzip',
      '',
      'x-fuzz',
      'zstd',
    ])
    if (random() < 0.15) {
      request.headers.push(['content-encoding', 'identity'], ['content-encoding', value])
    } else setHeader(request, 'content-encoding', value)
  },
  chunked(random, request) {
    request.chunked = true
    request.chunkSize = pick(random, [1, 7, 100, 1024, 16_384])
  },
  oversized(random, request, context) {
    const size = pick(random, [
      context.maxBody,
      context.maxBody + 1,
      context.maxBody + int(random, 2, 4096),
      context.maxBody * 2,
    ])
    if (request.body.length < size) {
      // Padding after the object keeps it valid JSON: only the size is wrong (or just right).
      request.body = Buffer.concat([request.body, Buffer.alloc(size - request.body.length, 0x20)])
    }
    if (random() < 0.4) request.chunked = true
  },
  route(random, request, context) {
    switch (int(random, 0, 6)) {
      case 0:
        request.path = `${context.path}/`
        return
      case 1:
        request.path = context.path.toUpperCase()
        return
      case 2:
        request.path = `${context.path}?x=1`
        return
      case 3:
        request.path = `/${context.path}`
        return
      case 4:
        request.path = context.path.slice(0, -1)
        return
      case 5:
        request.path = `${context.path}%2F`
        return
      default:
        request.path = '/'
    }
  },
  method(random, request) {
    request.method = pick(random, ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])
    if (request.method === 'GET' || request.method === 'HEAD') request.body = Buffer.alloc(0)
  },
  extra_headers(random, request) {
    request.headers.push(['x-fuzz-marker', 'must-not-be-forwarded'])
    if (random() < 0.5)
      request.headers.push([
        'x-forwarded-for',
        pick(random, ['149.154.167.1', '1.2.3.4, 149.154.160.1', 'garbage']),
      ])
    if (random() < 0.3) request.headers.push(['authorization', 'Bearer fuzz'])
  },
}

const TREE = Object.keys(TREE_MUTATORS)
const BYTES = Object.keys(BYTE_MUTATORS)
const REQUEST = Object.keys(REQUEST_MUTATORS)
/** Every mutator's name, for the docs and the counts. */
export const MUTATORS = { tree: TREE, bytes: BYTES, request: REQUEST }

/**
 * Case `index` of run `seed`: `{ index, method, path, headers: [[name, value]...], body, chunked,
 * chunkSize, tags }`. `context`: `{ samples, path, secret, maxBody }`. Headers may repeat.
 */
export function makeCase(seed, index, context) {
  const random = caseRandom(seed, index)
  const sample = pick(random, context.samples)
  const tags = [sample.name]
  let body
  const mode = random()
  if (mode < 0.06) {
    body = Buffer.from(sample.text) // the sample as it is
  } else {
    let tree
    try {
      tree = JSON.parse(sample.text)
    } catch {
      tree = { update_id: 1 }
    }
    if (!isObject(tree)) tree = { update_id: 1, message: tree }
    // Message-bearing updates get a command most of the time: that is where the policy bites.
    const count = int(random, 1, 3)
    for (let i = 0; i < count; i++) {
      const name = random() < 0.35 ? 'command' : pick(random, TREE)
      tags.push(name)
      tree = TREE_MUTATORS[name](random, tree, context)
    }
    body = Buffer.from(serialize(tree))
    if (random() < 0.12) {
      const name = pick(random, BYTES)
      tags.push(name)
      body = BYTE_MUTATORS[name](random, body)
    }
  }
  const request = {
    index,
    method: 'POST',
    path: context.path,
    headers: [
      ['content-type', 'application/json'],
      ['x-telegram-bot-api-secret-token', context.secret],
    ],
    body,
    chunked: false,
    chunkSize: 0,
    tags,
  }
  if (random() < 0.25) {
    const count = int(random, 1, 2)
    for (let i = 0; i < count; i++) {
      const name = pick(random, REQUEST)
      tags.push(name)
      REQUEST_MUTATORS[name](random, request, context)
    }
  }
  return request
}

export { headerValue }
