import { describe, expect, it } from 'vitest'
import { Exchange } from '../../pipeline/exchange.js'
import { readEnvelope, type Update } from '../../telegram/update.js'
import { type CommandsPolicy, commandProblems, createCommandsCheck } from './index.js'

const policy = (overrides: Partial<CommandsPolicy> = {}): CommandsPolicy => ({
  allow: ['start', 'help', 'Ban'],
  roles: { ban: ['admins'] },
  other_bots: 'drop',
  ...overrides,
})
const roles = { admins: [1] }

function update(text: string, from = 7, type = 'message', extra: Record<string, unknown> = {}): Update {
  const entities = [...text.matchAll(/\/\S+/g)].map((m) => ({
    type: 'bot_command',
    offset: m.index,
    length: m[0].length,
  }))
  const result = readEnvelope({
    update_id: 1,
    [type]: {
      message_id: 1,
      date: 1,
      chat: { id: 99, type: 'group' },
      from: { id: from },
      text,
      entities,
      ...extra,
    },
  })
  if (typeof result === 'string') throw new Error(result)
  return result
}

function verdict(check: ReturnType<typeof createCommandsCheck>, u: Update) {
  return check?.run(new Exchange({} as never, 'id', 0), u)
}

describe('the commands check', () => {
  const check = createCommandsCheck(policy(), roles, false, 'Shop_Bot')

  it.each([
    ['no command', 'hello there', undefined],
    ['an allowed command', '/start', undefined],
    ['an allowed command in another case', '/HELP me', undefined],
    ['an allowed command for us, any case', '/start@shop_BOT', undefined],
    ['a command not on the list', '/admin', 'command_not_allowed'],
    ['an allowed command then one not allowed', '/start and /admin', 'command_not_allowed'],
    ['a command for another bot', '/start@OtherBot', 'command_for_other_bot'],
    ['a restricted command from a non-member', '/ban 42', 'command_forbidden'],
  ])('%s: %s', (_name, text, reason) => {
    const result = verdict(check, update(text))
    expect(result === undefined ? undefined : (result as { reason: string }).reason).toBe(reason)
  })

  it('lets a role member use a restricted command', () => {
    expect(verdict(check, update('/ban 42', 1))).toBeUndefined()
    expect(verdict(check, update('/BAN@shop_bot 42', 1))).toBeUndefined()
  })

  it('forbids a restricted command when the sender is unknown (a channel post)', () => {
    const post = readEnvelope({
      update_id: 1,
      channel_post: {
        chat: { id: -5 },
        text: '/ban',
        entities: [{ type: 'bot_command', offset: 0, length: 4 }],
      },
    })
    expect(verdict(check, post as Update)).toMatchObject({ reason: 'command_forbidden' })
  })

  it('lets other bots\u2019 commands through with other_bots: forward, still checking the others', () => {
    const lenient = createCommandsCheck(policy({ other_bots: 'forward' }), roles, false, 'shop_bot')
    expect(verdict(lenient, update('/anything@OtherBot'))).toBeUndefined()
    expect(verdict(lenient, update('/x@OtherBot /admin'))).toMatchObject({ reason: 'command_not_allowed' })
  })

  it('treats every @mention as another bot when the username is not configured', () => {
    const anonymous = createCommandsCheck(policy(), roles, false, undefined)
    expect(verdict(anonymous, update('/start@shop_bot'))).toMatchObject({ reason: 'command_for_other_bot' })
  })

  it('replies with sendMessage to the chat when a reply is configured, not for other bots', () => {
    const replying = createCommandsCheck(
      policy({ reply: 'Unknown command. Try /help.' }),
      roles,
      false,
      'shop_bot',
    )
    expect(verdict(replying, update('/admin'))).toEqual({
      kind: 'drop',
      reason: 'command_not_allowed',
      reply: { method: 'sendMessage', chat_id: 99, text: 'Unknown command. Try /help.' },
    })
    expect(verdict(replying, update('/ban'))).toMatchObject({
      reason: 'command_forbidden',
      reply: { chat_id: 99 },
    })
    expect(verdict(replying, update('/start@OtherBot'))).toEqual({
      kind: 'drop',
      reason: 'command_for_other_bot',
    })
  })

  it('answers a business message through its business connection', () => {
    const replying = createCommandsCheck(policy({ reply: 'No.' }), roles, false, 'shop_bot')
    const business = update('/admin', 7, 'business_message', { business_connection_id: 'bc1' })
    expect(verdict(replying, business)).toMatchObject({
      reply: { method: 'sendMessage', business_connection_id: 'bc1', chat_id: 99, text: 'No.' },
    })
  })

  it('checks every message-bearing update type, and no other', () => {
    for (const type of [
      'message',
      'edited_message',
      'channel_post',
      'edited_channel_post',
      'business_message',
      'edited_business_message',
      'guest_message',
    ]) {
      expect(verdict(check, update('/admin', 7, type)), type).toMatchObject({ reason: 'command_not_allowed' })
    }
    const query = readEnvelope({ update_id: 1, inline_query: { id: 'q', from: { id: 7 }, query: '/admin' } })
    expect(verdict(check, query as Update)).toBeUndefined()
  })

  it('lets nothing with a command through an empty whitelist', () => {
    const none = createCommandsCheck(policy({ allow: [], roles: {} }), roles, false, 'shop_bot')
    expect(verdict(none, update('/start'))).toMatchObject({ reason: 'command_not_allowed' })
    expect(verdict(none, update('hi'))).toBeUndefined()
  })

  it('is absent without a commands section: commands are not filtered', () => {
    expect(createCommandsCheck(undefined, roles, false, 'shop_bot')).toBeUndefined()
  })
})

describe('commandProblems', () => {
  it('finds the likely mistakes', () => {
    expect(
      commandProblems(
        {
          allow: ['/start', 'help me', 'ban', 'x'.repeat(33)],
          roles: { kick: ['admins'], ban: ['mods'] },
          other_bots: 'drop',
        },
        roles,
      ),
    ).toEqual([
      { path: ['commands', 'allow', 0], message: 'write "start", without the slash' },
      {
        path: ['commands', 'allow', 1],
        message: '"help me" is not a command name (1-32 letters, digits and _)',
      },
      {
        path: ['commands', 'allow', 3],
        message: `"${'x'.repeat(33)}" is not a command name (1-32 letters, digits and _)`,
      },
      {
        path: ['commands', 'roles', 'kick'],
        message: '"kick" is not in commands.allow, so no one can use it; add it there',
      },
      {
        path: ['commands', 'roles', 'ban', 0],
        message: 'role "mods" is not defined in roles (known: admins)',
      },
    ])
  })
})
