/**
 * Property: no message carrying a command that is not allowed passes the commands check, however
 * the text, the entities and the update type are arranged. Messages are generated the way a
 * forger would try: commands at any offset, after astral characters (so UTF-16 offsets differ
 * from code points), with and without entities, with wrong-case names, mentions of this bot and
 * others, in text or caption, in every message-bearing update type.
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { MESSAGE_UPDATE_TYPES } from '../../telegram/generated/update-types.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import { createCommandsCheck } from './index.js'

const ALLOWED = ['start', 'help', 'settings']
const FORBIDDEN = ['admin', 'ban', 'start_admin', 'helpme']
const USERNAME = 'shop_bot'
const check = createCommandsCheck({ allow: ALLOWED, other_bots: 'drop' }, undefined, false, USERNAME)

const filler = fc.constantFrom(
  'hello',
  ' ',
  'ok?',
  '\u{1F600}',
  '\u{1F468}\u200D\u{1F469}',
  'é',
  '\n',
  'a/b',
  '//',
  '/ ',
  'x',
)
const name = fc.constantFrom(...ALLOWED, ...FORBIDDEN)
const casing = (text: string) =>
  fc.constantFrom(text, text.toUpperCase(), text[0]?.toUpperCase() + text.slice(1))
const mention = fc.constantFrom('', `@${USERNAME}`, '@SHOP_BOT', '@other_bot')

interface Piece {
  readonly text: string
  readonly command: { name: string; mention: string } | undefined
  readonly entity: boolean
}

const piece: fc.Arbitrary<Piece> = fc.oneof(
  filler.map((text) => ({ text, command: undefined, entity: false })),
  fc.tuple(name.chain(casing), mention, fc.boolean()).map(([n, m, entity]) => ({
    text: `/${n}${m}`,
    command: { name: n.toLowerCase(), mention: m.slice(1).toLowerCase() },
    entity,
  })),
)

function build(pieces: Piece[]) {
  let text = ''
  const entities: { type: string; offset: number; length: number }[] = []
  const recognised: { name: string; mention: string; offset: number }[] = []
  for (const [index, p] of pieces.entries()) {
    if (index > 0) text += ' '
    if (p.command !== undefined && (p.entity || text.length === 0)) {
      // Telegram recognises a command that has an entity; the gateway also catches a leading one without.
      if (p.entity) entities.push({ type: 'bot_command', offset: text.length, length: p.text.length })
      recognised.push({ ...p.command, offset: text.length })
    }
    text += p.text
  }
  return { text, entities, recognised }
}

describe('property: a message with a command that is not allowed is never let through', () => {
  it('holds for random messages', () => {
    fc.assert(
      fc.property(
        fc.array(piece, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(...MESSAGE_UPDATE_TYPES),
        fc.boolean(),
        fc.boolean(),
        (pieces, type, inCaption, dropEntities) => {
          const { text, entities, recognised } = build(pieces)
          const message = inCaption
            ? {
                chat: { id: 1 },
                from: { id: 2 },
                caption: text,
                ...(dropEntities ? {} : { caption_entities: entities }),
              }
            : { chat: { id: 1 }, from: { id: 2 }, text, ...(dropEntities ? {} : { entities }) }
          const update = readEnvelope({ update_id: 1, [type]: message }) as Update
          const verdict = check?.run(new Exchange({} as never, 'id', 0), update)
          // Without entities, only a command at the very start of the text is recognisable.
          const considered = dropEntities ? recognised.filter((c) => c.offset === 0) : recognised
          const bad = considered.some(
            (c) => (c.mention !== '' && c.mention !== USERNAME) || !ALLOWED.includes(c.name),
          )
          if (bad) expect(verdict).toBeDefined()
          // And nothing is dropped that carries only allowed commands for us.
          const extracted = update.commands
          const allGood = extracted.every(
            (c) => ALLOWED.includes(c.name) && (c.mention === undefined || c.mention === USERNAME),
          )
          if (allGood) expect(verdict).toBeUndefined()
        },
      ),
      { numRuns: 3000 },
    )
  })
})
