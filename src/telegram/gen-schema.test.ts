import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the generator is a plain JavaScript script
import { generate, SPEC_FILE } from '../../scripts/gen-schema.mjs'

interface Field {
  name: string
  types: string[]
  required: boolean
  description: string
}
interface Spec {
  version: string
  types: Record<string, { name: string; fields?: Field[]; subtypes?: string[] }>
}

/** The vendored spec, changed by `edit`: how a later Bot API version could differ. */
function spec(edit: (spec: Spec) => void = () => {}): Spec {
  const copy = JSON.parse(readFileSync(SPEC_FILE as string, 'utf8')) as Spec
  edit(copy)
  return copy
}

function field(spec: Spec, type: string, name: string): Field {
  const found = spec.types[type]?.fields?.find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`${type}.${name} is not in the spec`)
  return found
}

function validators(input: Spec): string {
  return (generate(input) as Map<string, string>).get('validators.ts') as string
}

describe('scripts/gen-schema.mjs: reading the spec', () => {
  const current = validators(spec())

  it('reads discriminators in straight and typographic quotes alike', () => {
    const curly = spec((s) => {
      field(s, 'ChatMemberOwner', 'status').description = "The member's status in the chat, always “creator”"
    })
    expect(validators(curly)).toBe(current)
    expect(current).toContain("case 'creator':\n      return vChatMemberOwner(value, depth, strict)")
  })

  it('reads a numeric discriminator and the one member without a constant (MaybeInaccessibleMessage)', () => {
    expect(current).toContain('    case 0:\n      return vInaccessibleMessage(value, depth, strict)')
    expect(current).toContain('    default:\n      return vMessage(value, depth, strict)')
  })

  it('handles pseudo-members of a union (RichText: String, Array of RichText)', () => {
    expect(current).toContain("  if (typeof value === 'string') return undefined\n")
    expect(current).toContain(
      "  if (Array.isArray(value)) return arrayOf(value, depth, strict, vRichText, 'Array of RichText')",
    )
  })

  it('enforces closed lists of values and only writes down the ones Telegram extends', () => {
    expect(current).toContain(
      "const CHAT_TYPE: ReadonlySet<string> = new Set(['private', 'group', 'supergroup', 'channel'])",
    )
    expect(current).toContain('// Telegram extends this list, so any String passes; today: mention, hashtag,')
    const extended = spec((s) => {
      field(s, 'Chat', 'type').description =
        'Type of the chat, currently can be "private", "group", "supergroup", "channel" or "community"'
    })
    expect(validators(extended)).not.toContain('const CHAT_TYPE')
  })

  it('picks up a new update type and a new field with one regeneration', () => {
    const newer = spec((s) => {
      s.types.Update?.fields?.push({
        name: 'subscription',
        types: ['User'],
        required: false,
        description: 'Optional. A subscription changed',
      })
      s.types.Message?.fields?.push({
        name: 'community_chat_added',
        types: ['Chat'],
        required: false,
        description: 'Optional. A community chat was added',
      })
    })
    const output = validators(newer)
    expect(output).toContain("  ['subscription', vUser],")
    expect(output).toContain("      case 'community_chat_added':\n        p = vChat(x, depth + 1, strict)")
  })

  it.each([
    [
      'a union whose members cannot be told apart',
      (s: Spec) => {
        field(s, 'ChatMemberLeft', 'status').description = 'The member has left'
        field(s, 'ChatMemberBanned', 'status').description = 'The member was banned'
      },
      'ChatMember: ChatMemberLeft, ChatMemberBanned have no constant status',
    ],
    [
      'two members with one discriminator value',
      (s: Spec) => {
        field(s, 'ReactionTypePaid', 'type').description = 'Type of the reaction, always "emoji"'
      },
      'ReactionType: ReactionTypeEmoji and ReactionTypePaid share type emoji',
    ],
    [
      'entities without a text field',
      (s: Spec) => {
        field(s, 'TextQuote', 'text').name = 'quote_text'
      },
      'TextQuote.entities: no String field holds the text of these entities',
    ],
    [
      'a field the gateway relies on that became optional',
      (s: Spec) => {
        field(s, 'Chat', 'type').required = false
      },
      'RELIED_ON: Chat.type is not a required field of the spec',
    ],
    [
      'a limited field that was removed',
      (s: Spec) => {
        field(s, 'InlineQuery', 'query').name = 'text'
      },
      'LIMITS: InlineQuery.query is not a field of an update type',
    ],
    [
      'a field named like a prototype key',
      (s: Spec) => {
        field(s, 'Chat', 'title').name = 'constructor'
      },
      'Chat.constructor: a field name that clashes with Object.prototype',
    ],
    [
      'an unreadable type',
      (s: Spec) => {
        field(s, 'Chat', 'title').types = ['Map of String']
      },
      'unreadable type "Map of String"',
    ],
  ])('stops on %s', (_name, edit, message) => {
    expect(() => validators(spec(edit))).toThrow(message)
  })
})
