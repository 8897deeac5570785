import { readFileSync } from 'node:fs'
import { RE2JS } from 're2js'
import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import { type ContentPolicy, contentProblems, createContentCheck, fullMatchBody } from './index.js'

/** A real update shape from test/fixtures/updates (provenance in its MANIFEST.md), edited by `edit`. */
function sample(file: string, edit: (message: Record<string, unknown>) => void = () => {}): Update {
  const raw = JSON.parse(
    readFileSync(new URL(`../../../test/fixtures/updates/${file}`, import.meta.url), 'utf8'),
  )
  const type = Object.keys(raw).find((key) => key !== 'update_id') as string
  edit(raw[type])
  const update = readEnvelope(raw)
  if (typeof update === 'string') throw new Error(`${file}: ${update}`)
  return update
}

const text = (value: string, entities: unknown[] = []) =>
  sample('nutgram-045.json', (m) => {
    delete m.game
    delete m.via_bot
    delete m.reply_markup
    m.text = value
    m.entities = entities
  })
const command = (value: string) =>
  text(value, [{ type: 'bot_command', offset: 0, length: value.split(' ')[0]?.length ?? 0 }])

const PHOTO = sample('teloxide-016.json') // a photo, largest size 162061 bytes, caption "www.example.com" (a url)
const PDF = sample('nutgram-035.json') // a document: application/pdf, document.pdf, 123456 bytes
const GIF = sample('nutgram-002.json') // an animation, with its document twin
const FORWARDED = sample('nutgram-063.json') // forward_origin
const VIA_BOT = sample('nutgram-045.json') // a game sent via an inline bot
const CALLBACK = sample('nutgram-006.json') // a callback query

function verdict(policy: ContentPolicy, update: Update) {
  const check = createContentCheck(policy, false)
  if (check === undefined) throw new Error('no check')
  const exchange = new Exchange({} as never, 'r', 0)
  const outcome = check.run(exchange, update)
  return outcome === undefined ? 'pass' : exchange.detail
}

describe('the content check', () => {
  it('does not exist without a content section', () => {
    expect(createContentCheck(undefined, false)).toBeUndefined()
  })

  it('holds text and captions to max_text in UTF-16 units, as Telegram counts', () => {
    const policy: ContentPolicy = { max_text: 10 }
    expect(verdict(policy, text('a'.repeat(10)))).toBe('pass')
    expect(verdict(policy, text('a'.repeat(11)))).toBe('content.max_text')
    // Five emoji are five code points but ten UTF-16 units; six are twelve.
    expect(verdict(policy, text('\u{1F600}'.repeat(5)))).toBe('pass')
    expect(verdict(policy, text('\u{1F600}'.repeat(6)))).toBe('content.max_text')
    expect(verdict({ max_text: 14 }, PHOTO)).toBe('content.max_text') // "www.example.com": 15
  })

  it("checks each command's arguments against its pattern and length", () => {
    const policy: ContentPolicy = { args: { report: { pattern: '^[0-9]{1,10}$' }, note: { max_length: 5 } } }
    expect(verdict(policy, command('/report 123'))).toBe('pass')
    expect(verdict(policy, command('/REPORT@shop_bot 123'))).toBe('pass')
    expect(verdict(policy, command('/report 1; rm -rf /'))).toBe('content.args.report')
    expect(verdict(policy, command('/report'))).toBe('content.args.report')
    expect(verdict(policy, command('/note short'))).toBe('pass')
    expect(verdict(policy, command('/note longer'))).toBe('content.args.note')
    // A command without rules, and a message without commands, have no arguments to check.
    expect(verdict(policy, command('/start anything at all'))).toBe('pass')
    expect(verdict(policy, text('report 1; rm -rf /'))).toBe('pass')
    // A second command's arguments end the first's: "/report 12 /note toolong" has two commands.
    const two = text('/report 12 /note toolong', [
      { type: 'bot_command', offset: 0, length: 7 },
      { type: 'bot_command', offset: 11, length: 5 },
    ])
    expect(verdict(policy, two)).toBe('content.args.note')
  })

  it('drops text, captions, callback data and inline queries that match a deny pattern, naming the rule', () => {
    const policy: ContentPolicy = { deny: ['(?i)casino', 'example\\.com', '^/'] }
    expect(verdict(policy, text('Free CASINO spins'))).toBe('content.deny[0]')
    expect(verdict(policy, PHOTO)).toBe('content.deny[1]')
    expect(verdict(policy, text('hello'))).toBe('pass')
    const data = (value: string) =>
      sample('nutgram-006.json', (query) => {
        query.data = value
      })
    expect(verdict(policy, data('casino:1'))).toBe('content.deny[0]')
    expect(verdict(policy, CALLBACK)).toBe('pass')
    const inline = readEnvelope({
      update_id: 1,
      inline_query: { id: 'q', from: { id: 5, is_bot: false, first_name: 'A' }, query: 'casino', offset: '' },
    }) as Update
    expect(verdict(policy, inline)).toBe('content.deny[0]')
    // Flags stay inside their pattern when the patterns are joined: only the first ignores case.
    expect(verdict(policy, text('EXAMPLE.COM'))).toBe('pass')
  })

  it('runs a pattern that backtracks catastrophically elsewhere in linear time', () => {
    // (a+)+$ on "aaa...ab" takes exponential time in a backtracking engine: a few dozen
    // characters stall JavaScript's RegExp for seconds, 4096 would run for longer than the universe.
    const evil = `${'a'.repeat(4095)}b`
    const started = performance.now()
    expect(verdict({ deny: ['(a+)+$'], args: { go: { pattern: '^(a|aa)+$' } } }, text(evil))).toBe('pass')
    expect(verdict({ args: { go: { pattern: '^(a|aa)+$' } } }, command(`/go ${evil}`))).toBe(
      'content.args.go',
    )
    // Not a timing assertion of the gateway's speed: a backtracking engine would not return at all.
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  it('refuses patterns RE2 cannot run in linear time when the policy loads', () => {
    expect(contentProblems({ deny: ['ok', '(a)\\1'], args: { go: { pattern: '(?=x)' } } })).toEqual([
      { path: ['content', 'deny', 1], message: expect.stringMatching(/^not an RE2 pattern: /) },
      { path: ['content', 'args', 'go', 'pattern'], message: expect.stringMatching(/^not an RE2 pattern: /) },
    ])
    expect(contentProblems({ deny: ['(?i)casino'] })).toEqual([])
  })

  it('counts links: url, text_link, mention, text_mention and email entities', () => {
    const links = text('a b c', [
      { type: 'url', offset: 0, length: 1 },
      { type: 'mention', offset: 2, length: 1 },
      { type: 'bold', offset: 4, length: 1 },
    ])
    expect(verdict({ links: 2 }, links)).toBe('pass')
    expect(verdict({ links: 1 }, links)).toBe('content.links')
    expect(verdict({ links: 0 }, PHOTO)).toBe('content.links') // a url in caption_entities
  })

  it('allows only the listed media kinds; [] allows text only', () => {
    expect(verdict({ media: { allow: [] } }, PHOTO)).toBe('content.media.photo')
    expect(verdict({ media: { allow: [] } }, text('hi'))).toBe('pass')
    expect(verdict({ media: { allow: ['photo'] } }, PHOTO)).toBe('pass')
    expect(verdict({ media: { allow: ['photo'] } }, PDF)).toBe('content.media.document')
    // An animation carries a document twin for older clients: allowing animations is enough.
    expect(verdict({ media: { allow: ['animation'] } }, GIF)).toBe('pass')
    expect(verdict({ media: { allow: ['document'] } }, GIF)).toBe('content.media.animation')
  })

  it('holds each kind to its largest file_size (a photo by its largest size)', () => {
    expect(verdict({ media: { max_size: { photo: '162061' } } }, PHOTO)).toBe('pass')
    expect(verdict({ media: { max_size: { photo: '150KiB' } } }, PHOTO)).toBe('content.media.max_size.photo')
    expect(verdict({ media: { max_size: { document: '100KiB' } } }, PDF)).toBe(
      'content.media.max_size.document',
    )
  })

  it('allows documents by MIME type and refuses file-name extensions, however disguised', () => {
    expect(verdict({ media: { mime_types: ['application/pdf'] } }, PDF)).toBe('pass')
    expect(verdict({ media: { mime_types: ['application/*'] } }, PDF)).toBe('pass')
    expect(verdict({ media: { mime_types: ['image/png'] } }, PDF)).toBe('content.media.mime_types')
    const named = (file_name: string, mime_type?: string) =>
      sample('nutgram-035.json', (m) => {
        m.document = {
          ...(m.document as object),
          file_name,
          ...(mime_type === undefined ? {} : { mime_type }),
        }
      })
    const policy: ContentPolicy = { media: { deny_extensions: ['.exe', '.apk'] } }
    expect(verdict(policy, PDF)).toBe('pass')
    for (const name of ['setup.exe', 'INVOICE.PDF.EXE', 'report.exe. ', 'app.apk', 'photo\u202Egpj.exe']) {
      expect(verdict(policy, named(name)), name).toBe('content.media.deny_extensions')
    }
    expect(verdict(policy, named('exe'))).toBe('pass')
    // A document without a MIME type cannot be on an allowlist of types.
    const untyped = sample('nutgram-035.json', (m) => {
      delete (m.document as Record<string, unknown>).mime_type
    })
    expect(verdict({ media: { mime_types: ['application/pdf'] } }, untyped)).toBe('content.media.mime_types')
  })

  it('drops forwarded messages and messages via bots when told to', () => {
    expect(verdict({}, FORWARDED)).toBe('pass')
    expect(verdict({ forwarded: 'drop' }, FORWARDED)).toBe('content.forwarded')
    expect(verdict({ via_bot: 'drop' }, VIA_BOT)).toBe('content.via_bot')
    expect(verdict({ via_bot: 'forward', forwarded: 'drop' }, VIA_BOT)).toBe('pass')
  })

  it('does not look into the message a message replies to', () => {
    const reply = text('see above', [])
    ;(reply.message as Record<string, unknown>).reply_to_message = PDF.message
    expect(verdict({ media: { allow: [] } }, reply)).toBe('pass')
  })
})

describe('argument patterns of the shape ^X$ run as a full match of X', () => {
  it('takes only the patterns whose anchors hold the whole pattern', () => {
    expect(fullMatchBody('^[0-9]{1,10}$')).toBe('[0-9]{1,10}')
    expect(fullMatchBody('^(coffee|tea) [0-9]$')).toBe('(coffee|tea) [0-9]')
    expect(fullMatchBody('^[a|b]+$')).toBe('[a|b]+')
    expect(fullMatchBody('^a\\\\$')).toBe('a\\\\') // an escaped backslash, then the anchor
    for (const source of [
      '^a|b$',
      '[0-9]+',
      '^a',
      'a$',
      '^a\\$',
      '(?m)^a$',
      '^\\Q(\\E|x$',
      '^[]|]$|x',
      '^[^]a]|b$',
    ])
      expect(fullMatchBody(source), source).toBeUndefined()
    expect(fullMatchBody('^[]|]$')).toBe('[]|]')
  })

  it('gives the verdict of the search it replaces', () => {
    const patterns = [
      '^[0-9]{1,3}$',
      '^(a|b)*c$',
      '^[a|b]+$',
      '^a\\$$',
      '^[]a]+$',
      '^(?i)ab$',
      '^(?s).$',
      '^\\w+ \\d$',
    ]
    const alphabet = ['a', 'b', 'c', '|', '$', ']', '1', '9', 'A', 'B', ' ', '\n', '\\']
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (const source of patterns) {
      const body = fullMatchBody(source)
      expect(body, source).toBeDefined()
      const search = RE2JS.compile(source)
      const full = RE2JS.compile(`(?:${body})`)
      for (let i = 0; i < 500; i++) {
        const text = Array.from(
          { length: Math.floor(random() * 6) },
          () => alphabet[Math.floor(random() * alphabet.length)],
        ).join('')
        expect(full.matches(text), `${source} on ${JSON.stringify(text)}`).toBe(search.test(text))
      }
    }
  })
})
