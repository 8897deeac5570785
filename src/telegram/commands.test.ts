import { describe, expect, it } from 'vitest'
import { extractCommands } from './commands.js'

type Entity = { type: string; offset: number; length: number }
const cmd = (offset: number, length: number): Entity => ({ type: 'bot_command', offset, length })
const names = (message: Record<string, unknown>) =>
  extractCommands(message).map((c) => (c.mention === undefined ? c.name : `${c.name}@${c.mention}`))

describe('extractCommands', () => {
  it.each<[string, Record<string, unknown>, string[]]>([
    ['a plain command', { text: '/start', entities: [cmd(0, 6)] }, ['start']],
    ['a command with arguments', { text: '/ban 123', entities: [cmd(0, 4)] }, ['ban']],
    ['upper case', { text: '/START', entities: [cmd(0, 6)] }, ['start']],
    ['addressed to a bot', { text: '/start@Shop_Bot', entities: [cmd(0, 15)] }, ['start@shop_bot']],
    ['mid-text', { text: 'please /help me', entities: [cmd(7, 5)] }, ['help']],
    ['several', { text: '/a and /b then /c', entities: [cmd(0, 2), cmd(7, 2), cmd(15, 2)] }, ['a', 'b', 'c']],
    ['in a caption', { caption: 'look /admin', caption_entities: [cmd(5, 6)] }, ['admin']],
    [
      'text and caption both',
      { text: '/a', entities: [cmd(0, 2)], caption: '/b', caption_entities: [cmd(0, 2)] },
      ['a', 'b'],
    ],
    // An emoji is two UTF-16 units: offsets count units, not code points.
    ['after an emoji', { text: '\u{1F600} /kick', entities: [cmd(3, 5)] }, ['kick']],
    [
      'after several astral characters',
      { text: '\u{1F468}\u{200D}\u{1F469} /x', entities: [cmd(6, 2)] },
      ['x'],
    ],
    // A forged update without entities must not slip a command through.
    ['a leading command without entities', { text: '/admin do it' }, ['admin']],
    ['a leading command in a caption without entities', { caption: '/admin' }, ['admin']],
    [
      'a leading command with only non-command entities',
      { text: '/admin', entities: [{ type: 'bold', offset: 0, length: 6 }] },
      ['admin'],
    ],
    [
      'a leading command plus a mid-text entity',
      { text: '/admin hi /help', entities: [cmd(10, 5)] },
      ['help', 'admin'],
    ],
    ['a leading command with a mention and no entity', { text: '/kick@OtherBot x' }, ['kick@otherbot']],
    // Found by the fuzzer (fuzz/, seed 2 case 3840): an entity shorter than the leading word hid it.
    [
      'a leading command behind a shorter forged entity',
      { text: '/start_x\n/start', entities: [cmd(0, 6)] },
      ['start', 'start_x'],
    ],
    [
      'a leading mention behind a shorter forged entity',
      { text: '/start@OtherBot', entities: [cmd(0, 6)] },
      ['start', 'start@otherbot'],
    ],
    [
      'an entity that covers the leading word is not counted twice',
      { text: '/start x', entities: [cmd(0, 6)] },
      ['start'],
    ],
    ['no command', { text: 'hello /' }, []],
    ['a lone slash', { text: '/ hello' }, []],
    ['an empty text', { text: '' }, []],
    [
      'an entity out of range is ignored, the leading word still counts',
      { text: '/a', entities: [cmd(50, 3)] },
      ['a'],
    ],
    ['a negative offset is ignored', { text: 'x /b', entities: [cmd(-1, 3)] }, []],
    ['an entity that is not a command is ignored', { text: 'x hello', entities: [cmd(2, 5)] }, []],
    ['overlapping entities each count', { text: '/ab', entities: [cmd(0, 3), cmd(0, 2)] }, ['ab', 'a']],
    ['an entity running past the end is cut at the end', { text: 'x /ok', entities: [cmd(2, 40)] }, ['ok']],
    [
      'malformed entities are skipped',
      { text: 'x /ok', entities: [null, 'x', { type: 'bot_command' }, cmd(2, 3)] },
      ['ok'],
    ],
    ['entities that are not a list', { text: 'hi', entities: 'nope' }, []],
    ['a text that is not a string', { text: 5, entities: [cmd(0, 1)] }, []],
  ])('%s', (_name, message, expected) => {
    expect(names(message)).toEqual(expected)
  })
})
