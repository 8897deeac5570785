/**
 * @module
 * Policy section `commands` (check 11, SPEC section 5): every command in a message must be on the
 * whitelist, a command restricted by `roles` needs a sender in one of those roles, and a command
 * addressed to another bot (`/cmd@OtherBot`) is dropped or let through as `other_bots` says.
 *
 * Sets are built once; per request this is a lookup per command (usually zero or one). Names
 * compare case-insensitively, as Telegram clients treat them; `@username` matches the bot's
 * configured `username` in any case. Without `commands`, commands are not filtered.
 */

import { type Static, Type } from '@sinclair/typebox'
import type { UpdateCheck } from '../../pipeline/check.js'
import { type Drop, drop } from '../../pipeline/verdict.js'
import { replyTo } from '../../telegram/reply.js'
import type { Update } from '../../telegram/update.js'
import { SectionMode } from '../mode.js'
import { type RolesPolicy, roleMembers } from '../roles/index.js'

/** Telegram's rule for command names: 1-32 Latin letters, digits and underscores (Bot API, "BotCommand"). */
export const COMMAND_NAME = /^[A-Za-z0-9_]{1,32}$/

const commandName = Type.String({
  description: 'A command name without the slash, e.g. start.',
  minLength: 1,
})

export const commandsSchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    allow: Type.Array(commandName, {
      uniqueItems: true,
      description:
        'The whitelist: every command in a message must be on it (else 200, dropped). Empty: no command passes.',
    }),
    roles: Type.Optional(
      Type.Record(Type.String(), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), {
        description:
          'Commands only these roles may use, e.g. { ban: [admins] } (roles are defined in the roles section).',
      }),
    ),
    other_bots: Type.Union([Type.Literal('drop'), Type.Literal('forward')], {
      default: 'drop',
      description:
        "Commands addressed to another bot (/cmd@OtherBot): drop or forward. Default: drop. Set the bot's username.",
      errorMessage: 'must be drop or forward',
    }),
    reply: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'Optional answer sent to the chat when a command is dropped (not for other bots\u2019 commands).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Check 11: the command whitelist, per-role restrictions and other bots\u2019 commands.',
  },
)

export type CommandsPolicy = Static<typeof commandsSchema>

/** Rules the schema cannot state, with the key path (under the policy) and message of each problem. */
export function commandProblems(
  policy: CommandsPolicy,
  roles: RolesPolicy | undefined,
): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = []
  const allowed = new Set(policy.allow.map((name) => name.toLowerCase()))
  policy.allow.forEach((name, index) => {
    if (name.startsWith('/'))
      problems.push({
        path: ['commands', 'allow', index],
        message: `write "${name.slice(1)}", without the slash`,
      })
    else if (!COMMAND_NAME.test(name)) {
      problems.push({
        path: ['commands', 'allow', index],
        message: `"${name}" is not a command name (1-32 letters, digits and _)`,
      })
    }
  })
  for (const [name, needed] of Object.entries(policy.roles ?? {})) {
    if (!allowed.has(name.toLowerCase().replace(/^\//, ''))) {
      problems.push({
        path: ['commands', 'roles', name],
        message: `"${name}" is not in commands.allow, so no one can use it; add it there`,
      })
    }
    needed.forEach((role, index) => {
      if (roles?.[role] === undefined) {
        const known = Object.keys(roles ?? {})
        problems.push({
          path: ['commands', 'roles', name, index],
          message: `role "${role}" is not defined in roles${known.length === 0 ? '' : ` (known: ${known.join(', ')})`}`,
        })
      }
    })
  }
  return problems
}

export function createCommandsCheck(
  policy: CommandsPolicy | undefined,
  roles: RolesPolicy | undefined,
  shadow: boolean,
  username: string | undefined,
): UpdateCheck | undefined {
  if (policy === undefined) return undefined
  const allowed = new Set(policy.allow.map((name) => name.toLowerCase()))
  const members = roleMembers(roles)
  const restricted = new Map<string, ReadonlySet<number>[]>()
  for (const [name, needed] of Object.entries(policy.roles ?? {})) {
    restricted.set(
      name.toLowerCase(),
      needed.map((role) => members.get(role) ?? new Set<number>()),
    )
  }
  const ours = username?.toLowerCase()
  const forwardOtherBots = policy.other_bots === 'forward'
  const text = policy.reply

  const refuse = (reason: 'command_not_allowed' | 'command_forbidden', update: Update): Drop => {
    if (text === undefined) return drop(reason)
    return drop(reason, replyTo(update, text))
  }
  const OTHER_BOT = drop('command_for_other_bot')
  const NOT_ALLOWED = drop('command_not_allowed')
  const FORBIDDEN = drop('command_forbidden')

  return {
    name: 'commands',
    shadow,
    // Synchronous, and changes nothing: it may run while the dedupe claim is on its way, so the
    // limits after it join the same chain (src/pipeline/run.ts).
    effects: 'none',
    run(_exchange, update) {
      const commands = update.commands
      if (commands.length === 0) return undefined
      for (const command of commands) {
        if (command.mention !== undefined && command.mention !== ours) {
          if (forwardOtherBots) continue
          return OTHER_BOT
        }
        if (!allowed.has(command.name))
          return text === undefined ? NOT_ALLOWED : refuse('command_not_allowed', update)
        const needed = restricted.get(command.name)
        if (needed !== undefined) {
          const user = update.userId
          if (user === undefined || !needed.some((role) => role.has(user))) {
            return text === undefined ? FORBIDDEN : refuse('command_forbidden', update)
          }
        }
      }
      return undefined
    },
  }
}
