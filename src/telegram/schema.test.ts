import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isKnownUpdateType, type SchemaMode, type SchemaProblem, validateUpdate } from './schema.js'
import { MAX_DEPTH } from './schema-runtime.js'

type Json = Record<string, unknown>

/** The benchmark's typical update: a private text message with a command entity. */
const TYPICAL = readFileSync(new URL('../../bench/update.json', import.meta.url), 'utf8')

/** A fresh copy of the typical message payload, changed by `edit`. */
function message(edit: (message: Json) => void = () => {}): Json {
  const update = JSON.parse(TYPICAL) as Json
  edit(update.message as Json)
  return update
}

/** An update of `type` from JSON text, parsed the way the gateway parses bodies. */
function parse(text: string): Json {
  return JSON.parse(text) as Json
}

function check(update: Json, mode: SchemaMode = 'standard'): SchemaProblem | undefined {
  const type = Object.keys(update).find((key) => key !== 'update_id') as string
  return validateUpdate(update, type, mode)
}

/** `n` levels of `{"a": ...}` around `inner`, built without recursion. */
function nested(n: number, inner: unknown = 1): unknown {
  let value = inner
  for (let i = 0; i < n; i++) value = { a: value }
  return value
}

const user = { id: 7, is_bot: false, first_name: 'Alice' }
const chat = { id: 7, type: 'private' }

/** A small valid message, for the places that embed one. */
function msg(): Json {
  return { message_id: 1, date: 1, chat, from: user, text: 'hi' }
}

describe('validateUpdate: well-formed updates', () => {
  it('accepts a typical message in every mode', () => {
    for (const mode of ['standard', 'strict', 'off'] as const) expect(check(message(), mode)).toBeUndefined()
  })

  it('accepts fields this Bot API version does not know, at any depth below the bound', () => {
    const update = message((m) => {
      m.community_chat_added = { chat: { id: -100, title: 'x' }, tags: ['a', { b: [1, null] }] }
      ;(m.from as Json).future_flag = true
      ;(m.entities as Json[])[0]!.future = { nested: null }
    })
    expect(check(update)).toBeUndefined()
    expect(check(update, 'strict')).toBeUndefined()
  })

  it('accepts a callback query, an inline query and a chat member update', () => {
    expect(
      check({
        update_id: 1,
        callback_query: { id: 'q', from: user, chat_instance: 'c', data: 'buy:1', message: { ...msg() } },
      }),
    ).toBeUndefined()
    expect(
      check({ update_id: 1, inline_query: { id: 'q', from: user, query: 'coffee', offset: '' } }, 'strict'),
    ).toBeUndefined()
    const member = { status: 'member', user }
    expect(
      check(
        {
          update_id: 1,
          chat_member: { chat, from: user, date: 1, old_chat_member: member, new_chat_member: member },
        },
        'strict',
      ),
    ).toBeUndefined()
  })

  it('tells an inaccessible message (date 0) from a message', () => {
    const inaccessible = { chat, message_id: 5, date: 0 }
    const query = (m: unknown) => ({ update_id: 1, callback_query: { id: 'q', from: user, message: m } })
    expect(check(query(inaccessible))).toBeUndefined()
    expect(check(query({ message_id: 5, date: 0 }))).toEqual({
      path: 'callback_query.message.chat',
      problem: 'missing',
    })
    expect(check(query({ message_id: 5, chat }))).toEqual({
      path: 'callback_query.message.date',
      problem: 'missing',
    })
    expect(check(query({ message_id: 5, date: 'x', chat }))).toEqual({
      path: 'callback_query.message.date',
      problem: 'expected Integer, got string',
    })
  })

  it('accepts rich text in all its forms: a string, an array, nested formatting', () => {
    const text = ['plain ', { type: 'bold', text: [{ type: 'italic', text: 'x' }, 'y'] }, [['deep']]]
    const update = message((m) => {
      m.rich_message = { blocks: [{ type: 'paragraph', text }] }
    })
    expect(check(update, 'strict')).toBeUndefined()
    const wrong = message((m) => {
      m.rich_message = { blocks: [{ type: 'paragraph', text: ['ok', 5] }] }
    })
    expect(check(wrong)).toEqual({
      path: 'message.rich_message.blocks[0].text[1]',
      problem: 'expected RichText, got integer',
    })
  })

  it('checks arrays of arrays (a table of cells)', () => {
    const table = (cells: unknown) =>
      message((m) => {
        m.rich_message = { blocks: [{ type: 'table', cells }] }
      })
    const cell = { text: 'a', align: 'left', valign: 'top' }
    expect(check(table([[cell, cell], [cell]]), 'strict')).toBeUndefined()
    expect(check(table([cell]))).toEqual({
      path: 'message.rich_message.blocks[0].cells[0]',
      problem: 'expected Array of RichBlockTableCell, got object',
    })
  })
})

describe('validateUpdate: types', () => {
  it.each([
    [
      'message_id as a string',
      (m: Json) => (m.message_id = '5123'),
      'message.message_id',
      'expected Integer, got string',
    ],
    ['date with a fraction', (m: Json) => (m.date = 1.5), 'message.date', 'expected Integer, got number'],
    [
      'an id beyond safe integers',
      (m: Json) => ((m.chat as Json).id = 2 ** 53),
      'message.chat.id',
      'more than 52 bits',
    ],
    [
      'an integer beyond 2^53',
      (m: Json) => (m.message_id = 2 ** 60),
      'message.message_id',
      'expected Integer, got integer beyond 2^53',
    ],
    [
      'an id over 52 bits',
      (m: Json) => ((m.from as Json).id = 2 ** 52),
      'message.from.id',
      'more than 52 bits',
    ],
    [
      'is_bot as a string',
      (m: Json) => ((m.from as Json).is_bot = 'false'),
      'message.from.is_bot',
      'expected Boolean, got string',
    ],
    ['text as a number', (m: Json) => (m.text = 5), 'message.text', 'expected String, got integer'],
    [
      'entities as an object',
      (m: Json) => (m.entities = {}),
      'message.entities',
      'expected Array of MessageEntity, got object',
    ],
    ['chat as an array', (m: Json) => (m.chat = []), 'message.chat', 'expected Chat, got array'],
    [
      'a chat type the spec does not list',
      (m: Json) => ((m.chat as Json).type = 'secret'),
      'message.chat.type',
      'not a value the spec lists',
    ],
    [
      'a Float as a string',
      (m: Json) => (m.location = { latitude: '1', longitude: 2 }),
      'message.location.latitude',
      'expected Float, got string',
    ],
    [
      'an Array of String with a number',
      (m: Json) => (m.poll = { country_codes: ['DE', 1] }),
      'message.poll.country_codes[1]',
      'expected String, got integer',
    ],
  ])('refuses %s', (_name, edit, path, problem) => {
    expect(check(message(edit))).toEqual({ path, problem })
    expect(check(message(edit), 'strict')).toEqual({ path, problem })
    expect(check(message(edit), 'off')).toBeUndefined()
  })

  it('accepts an integer where the spec says Float, and a negative 52-bit chat id', () => {
    expect(check(message((m) => (m.location = { latitude: 1, longitude: -2.5 })))).toBeUndefined()
    expect(check(message((m) => ((m.chat as Json).id = -(2 ** 52 - 1))))).toBeUndefined()
  })

  it.each([
    ['from', 'message.from', 'expected User, got null'],
    ['text', 'message.text', 'expected String, got null'],
    ['reply_to_message', 'message.reply_to_message', 'expected Message, got null'],
    ['forward_origin', 'message.forward_origin', 'expected MessageOrigin, got null'],
  ])('refuses null as %s', (field, path, problem) => {
    expect(check(message((m) => (m[field] = null)))).toEqual({ path, problem })
  })

  it('refuses null inside an array of a known type', () => {
    expect(check(message((m) => (m.entities = [null])))).toEqual({
      path: 'message.entities[0]',
      problem: 'expected MessageEntity, got null',
    })
  })

  it('allows null in a field it does not know (Telegram may add nullable ones)', () => {
    expect(check(message((m) => (m.future = null)))).toBeUndefined()
  })
})

describe('validateUpdate: required fields', () => {
  it.each([
    ['chat.id', (m: Json) => delete (m.chat as Json).id, 'message.chat.id'],
    ['chat.type', (m: Json) => delete (m.chat as Json).type, 'message.chat.type'],
    ['from.id', (m: Json) => delete (m.from as Json).id, 'message.from.id'],
    ['message_id', (m: Json) => delete m.message_id, 'message.message_id'],
    ['date', (m: Json) => delete m.date, 'message.date'],
    ['chat', (m: Json) => delete m.chat, 'message.chat'],
    ['an entity type', (m: Json) => delete (m.entities as Json[])[0]!.type, 'message.entities[0].type'],
    ['an entity offset', (m: Json) => delete (m.entities as Json[])[0]!.offset, 'message.entities[0].offset'],
    ['an entity length', (m: Json) => delete (m.entities as Json[])[0]!.length, 'message.entities[0].length'],
    [
      'the chat of a replied-to message',
      (m: Json) => (m.reply_to_message = { message_id: 1, date: 1 }),
      'message.reply_to_message.chat',
    ],
  ])('requires %s in standard and strict mode', (_name, edit, path) => {
    expect(check(message(edit))).toEqual({ path, problem: 'missing' })
    expect(check(message(edit), 'strict')).toEqual({ path, problem: 'missing' })
  })

  it('requires callback_query.id and its from', () => {
    expect(check({ update_id: 1, callback_query: { from: user } })).toEqual({
      path: 'callback_query.id',
      problem: 'missing',
    })
    expect(check({ update_id: 1, callback_query: { id: 'q' } })).toEqual({
      path: 'callback_query.from',
      problem: 'missing',
    })
  })

  it('requires the other fields the spec marks required only in strict mode', () => {
    const update = message((m) => delete (m.from as Json).first_name)
    expect(check(update)).toBeUndefined()
    expect(check(update, 'strict')).toEqual({ path: 'message.from.first_name', problem: 'missing' })
    const query = { update_id: 1, callback_query: { id: 'q', from: user } }
    expect(check(query)).toBeUndefined()
    expect(check(query, 'strict')).toEqual({ path: 'callback_query.chat_instance', problem: 'missing' })
  })
})

describe('validateUpdate: limits of SPEC section 1', () => {
  it('holds text to 4096 characters, counting an emoji as one', () => {
    expect(check(message((m) => (m.text = 'a'.repeat(4096))))).toBeUndefined()
    expect(check(message((m) => (m.text = '😀'.repeat(4096))))).toBeUndefined()
    expect(check(message((m) => (m.text = 'a'.repeat(4097))))).toEqual({
      path: 'message.text',
      problem: 'longer than 4096 characters',
    })
    expect(check(message((m) => (m.text = `${'😀'.repeat(4096)}a`)))).toEqual({
      path: 'message.text',
      problem: 'longer than 4096 characters',
    })
  })

  it("accepts a Premium sender's caption of 4096 characters and holds captions to that", () => {
    const photo = (caption: string) =>
      message((m) => {
        delete m.text
        delete m.entities
        m.caption = caption
      })
    // Telegram's limit is 1024 for most senders and 4096 for Premium ones (SPEC section 1).
    expect(check(photo('c'.repeat(1025)))).toBeUndefined()
    expect(check(photo('c'.repeat(4096)))).toBeUndefined()
    expect(check(photo('c'.repeat(4097)))).toEqual({
      path: 'message.caption',
      problem: 'longer than 4096 characters',
    })
  })

  it('holds inline queries to 256 characters', () => {
    const query = (text: string) => ({
      update_id: 1,
      inline_query: { id: 'q', from: user, query: text, offset: '' },
    })
    expect(check(query('q'.repeat(256)))).toBeUndefined()
    expect(check(query('q'.repeat(257)))).toEqual({
      path: 'inline_query.query',
      problem: 'longer than 256 characters',
    })
  })

  it('holds callback_data to 1-64 bytes, not characters', () => {
    const query = (data: string) => ({ update_id: 1, callback_query: { id: 'q', from: user, data } })
    expect(check(query('d'.repeat(64)))).toBeUndefined()
    expect(check(query('😀'.repeat(16)))).toBeUndefined() // 16 x 4 bytes
    for (const data of ['d'.repeat(65), '€'.repeat(22), '😀'.repeat(17), '']) {
      expect(check(query(data))).toEqual({ path: 'callback_query.data', problem: 'not 1-64 bytes' })
    }
  })

  it('holds the callback_data of a received keyboard to 1-64 bytes too', () => {
    const keyboard = (callback_data: string) =>
      message((m) => {
        m.reply_markup = { inline_keyboard: [[{ text: 'Buy', callback_data }]] }
      })
    expect(check(keyboard('buy'))).toBeUndefined()
    expect(check(keyboard('€'.repeat(22)))).toEqual({
      path: 'message.reply_markup.inline_keyboard[0][0].callback_data',
      problem: 'not 1-64 bytes',
    })
  })
})

describe('validateUpdate: entity ranges in UTF-16 code units', () => {
  const withEntity = (text: string, offset: number, length: number, key = 'entities') =>
    message((m) => {
      m.text = text
      m[key] = [{ type: 'bot_command', offset, length }]
    })

  it('accepts an entity after emoji by its UTF-16 offset, which code points would put out of range', () => {
    // '😀😀/go': 7 UTF-16 units, 5 code points; the command starts at unit 4.
    expect(check(withEntity('😀😀/go', 4, 3))).toBeUndefined()
  })

  it.each([
    ['past the end in UTF-16 units (inside in code points)', '😀😀/go', 2, 6],
    ['one unit past the end', '/start', 0, 7],
    ['at a negative offset', '/start', -1, 3],
    ['of length 0', '/start', 0, 0],
  ])('refuses an entity %s', (_name, text, offset, length) => {
    expect(check(withEntity(text, offset, length))).toEqual({
      path: 'message.entities[0]',
      problem: 'outside its text',
    })
  })

  it('pairs caption_entities with the caption, not the text', () => {
    const update = withEntity('/start with a long text', 10, 5, 'caption_entities')
    ;(update.message as Json).caption = 'short'
    expect(check(update)).toEqual({ path: 'message.caption_entities[0]', problem: 'outside its text' })
    ;(update.message as Json).caption = 'a longer caption'
    expect(check(update)).toBeUndefined()
  })

  it('refuses entities without their text', () => {
    const update = message((m) => delete m.text)
    expect(check(update)).toEqual({ path: 'message.entities[0]', problem: 'outside its text' })
  })

  it('checks the other *_entities pairs of the spec (poll questions)', () => {
    const poll = (question: string) => ({
      update_id: 1,
      poll: { id: 'p', question, question_entities: [{ type: 'bold', offset: 0, length: 4 }] },
    })
    expect(check(poll('Tea?'))).toBeUndefined()
    expect(check(poll('T?'))).toEqual({ path: 'poll.question_entities[0]', problem: 'outside its text' })
  })

  it('refuses an entity whose offset is not an integer', () => {
    expect(check(withEntity('/start', 0.5, 3))).toEqual({
      path: 'message.entities[0].offset',
      problem: 'expected Integer, got number',
    })
  })
})

describe('validateUpdate: forbidden keys', () => {
  it.each([
    [
      'in a known object',
      '{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private","__proto__":{"x":1}}}}',
      'message.chat.__proto__',
    ],
    [
      'deep inside an unknown field',
      '{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"extra":{"a":[{"b":{"constructor":{}}}]}}}',
      'message.extra.a[0].b.constructor',
    ],
    [
      'in an array item',
      '{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"hi","entities":[{"type":"bold","offset":0,"length":1,"prototype":1}]}}',
      'message.entities[0].prototype',
    ],
    [
      'in a newer union member',
      '{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"forward_origin":{"type":"future","x":{"__proto__":null}}}}',
      'message.forward_origin.x.__proto__',
    ],
    [
      'in the payload of an unknown update type',
      '{"update_id":1,"subscription":{"user":{"id":1,"__proto__":{}}}}',
      'subscription.user.__proto__',
    ],
    ['as the update type itself', '{"update_id":1,"__proto__":{"id":1}}', '__proto__'],
  ])('refuses a forbidden key %s', (_name, body, path) => {
    const update = parse(body)
    expect(check(update)).toEqual({ path, problem: 'forbidden key' })
    expect(check(update, 'strict')).toEqual({ path, problem: 'forbidden key' })
    expect(check(update, 'off')).toBeUndefined()
  })

  it('accepts the words as values', () => {
    expect(check(message((m) => (m.text = '__proto__ constructor prototype')))).toBeUndefined()
  })
})

describe('validateUpdate: nesting depth', () => {
  it(`accepts nesting down to depth ${MAX_DEPTH} and refuses one level more`, () => {
    // The update is depth 1, the message 2, the unknown field's object 3.
    const fits = message((m) => (m.extra = nested(MAX_DEPTH - 3, {})))
    expect(check(fits)).toBeUndefined()
    const deeper = message((m) => (m.extra = nested(MAX_DEPTH - 2, {})))
    expect(check(deeper)?.problem).toBe(`nested deeper than ${MAX_DEPTH}`)
  })

  it('refuses 100,000 levels in an unknown field without overflowing the stack', () => {
    const update = message((m) => (m.extra = nested(100_000)))
    const problem = check(update)
    expect(problem?.problem).toBe(`nested deeper than ${MAX_DEPTH}`)
    expect(problem?.path).toBe(`message.extra${'.a'.repeat(MAX_DEPTH - 2)}`)
  })

  it('refuses 10,000 levels of JSON arrays in a recursive spec type (RichText)', () => {
    const text = `${'['.repeat(10_000)}"x"${']'.repeat(10_000)}`
    const update = parse(
      `{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"rich_message":{"blocks":[{"type":"paragraph","text":${text}}]}}}`,
    )
    expect(check(update)?.problem).toBe(`nested deeper than ${MAX_DEPTH}`)
  })

  it('refuses deep replies of replies, deep unknown update types and deep newer union members', () => {
    let reply: Json = { message_id: 1, date: 1, chat }
    for (let i = 0; i < 10_000; i++) reply = { message_id: 1, date: 1, chat, reply_to_message: reply }
    expect(check({ update_id: 1, message: reply })?.problem).toBe(`nested deeper than ${MAX_DEPTH}`)
    expect(check({ update_id: 1, subscription: nested(10_000) })?.problem).toBe(
      `nested deeper than ${MAX_DEPTH}`,
    )
    const origin = { type: 'future', deep: nested(10_000) }
    expect(check(message((m) => (m.forward_origin = origin)))?.problem).toBe(
      `nested deeper than ${MAX_DEPTH}`,
    )
  })
})

describe('validateUpdate: what this Bot API version does not know', () => {
  it('passes unknown update types to policy updates.unknown', () => {
    expect(isKnownUpdateType('subscription')).toBe(false)
    expect(isKnownUpdateType('toString')).toBe(false)
    expect(isKnownUpdateType('message')).toBe(true)
    expect(isKnownUpdateType('managed_bot')).toBe(true)
    expect(check({ update_id: 1, subscription: { user: { id: 'not checked' } } }, 'strict')).toBeUndefined()
  })

  it('passes a union member with a newer discriminator value with the generic checks only', () => {
    const update = message((m) => (m.forward_origin = { type: 'community', date: 'whatever', chat: null }))
    expect(check(update, 'strict')).toBeUndefined()
    const member = { update_id: 1, chat_member: { chat, from: user, date: 1 } } as Json
    ;(member.chat_member as Json).new_chat_member = { status: 'guest', user: null }
    expect(check(member)).toBeUndefined()
  })

  it('checks a known union member by its own type', () => {
    const update = message((m) => (m.forward_origin = { type: 'user', date: 1, sender_user: { id: 'x' } }))
    expect(check(update)).toEqual({
      path: 'message.forward_origin.sender_user.id',
      problem: 'expected Integer, got string',
    })
  })

  it('refuses a union member without, or with a non-string, discriminator', () => {
    expect(check(message((m) => (m.forward_origin = { date: 1 })))).toEqual({
      path: 'message.forward_origin.type',
      problem: 'missing',
    })
    expect(check(message((m) => (m.forward_origin = { type: 1, date: 1 })))).toEqual({
      path: 'message.forward_origin.type',
      problem: 'expected String, got integer',
    })
  })

  it('accepts an entity type Telegram added after this version (the list says "Currently")', () => {
    const update = message((m) => ((m.entities as Json[])[0]!.type = 'future_entity'))
    expect(check(update, 'strict')).toBeUndefined()
  })
})

describe('validateUpdate: log reasons', () => {
  const PROBLEM =
    /^(missing|forbidden key|more than 52 bits|outside its text|not 1-64 bytes|not a value the spec lists|longer than \d+ characters|nested deeper than \d+|expected [A-Za-z ]+, got (null|array|object|string|integer|integer beyond 2\^53|number|boolean))$/

  it('name keys but never echo a key that does not look like a field name', () => {
    const update = message((m) => (m['secret text!'] = parse('{"constructor":1}')))
    expect(check(update)).toEqual({ path: 'message.<key>.constructor', problem: 'forbidden key' })
  })

  it('never throws and never carries a value, whatever JSON sits in any field', () => {
    const fields = [
      'message_id',
      'from',
      'chat',
      'date',
      'text',
      'entities',
      'reply_to_message',
      'rich_message',
    ]
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const update = message((m) => (m[field] = value))
        for (const mode of ['standard', 'strict'] as const) {
          const problem = check(update, mode)
          if (problem === undefined) continue
          expect(problem.problem).toMatch(PROBLEM)
          expect(problem.path).toMatch(/^message(\.[A-Za-z0-9_<>]+|\[\d+\])*$/)
        }
      }),
      { numRuns: 500 },
    )
  })
})
