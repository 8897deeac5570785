/**
 * @module
 * Policy section `roles`: named sets of Telegram user ids (`admins: [123456789]`). Roles grant
 * nothing by themselves; `commands.roles` restricts commands to them.
 */

import { type Static, Type } from '@sinclair/typebox'

export const rolesSchema = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  Type.Array(
    Type.Integer({
      minimum: -(2 ** 53 - 1),
      maximum: 2 ** 53 - 1,
      description: 'A Telegram user id.',
      errorMessage: 'must be a Telegram user id (an integer)',
    }),
    { uniqueItems: true },
  ),
  {
    description: 'Named sets of Telegram user ids, for commands.roles. Example: { admins: [123456789] }.',
    errorMessage: 'must map role names to lists of user ids',
  },
)

export type RolesPolicy = Static<typeof rolesSchema>

/** Role name -> its members, built once. */
export function roleMembers(roles: RolesPolicy | undefined): Map<string, ReadonlySet<number>> {
  return new Map(Object.entries(roles ?? {}).map(([name, ids]) => [name, new Set(ids)]))
}
