/**
 * @module
 * The policy: one optional section per check, each with its own schema in its check's folder, so
 * the YAML key, the schema and the code that enforces it share one name.
 */

import { type Static, Type } from '@sinclair/typebox'
import { bansSchema } from '../checks/bans/index.js'
import { chatsSchema } from '../checks/chats/index.js'
import { commandsSchema } from '../checks/commands/index.js'
import { contentSchema } from '../checks/content/index.js'
import { dedupeSchema } from '../checks/dedupe/index.js'
import { limitsSchema } from '../checks/limits/index.js'
import { SectionMode } from '../checks/mode.js'
import { outboundSchema } from '../checks/outbound/index.js'
import { repliesSchema } from '../checks/replies/index.js'
import { rolesSchema } from '../checks/roles/index.js'
import { sourcesSchema } from '../checks/sources/index.js'
import { updatesSchema } from '../checks/updates/index.js'
import { usersSchema } from '../checks/users/index.js'

export const policySchema = Type.Object(
  {
    mode: Type.Optional(SectionMode),
    sources: Type.Optional(sourcesSchema),
    updates: Type.Optional(updatesSchema),
    dedupe: Type.Optional(dedupeSchema),
    chats: Type.Optional(chatsSchema),
    users: Type.Optional(usersSchema),
    commands: Type.Optional(commandsSchema),
    content: Type.Optional(contentSchema),
    roles: Type.Optional(rolesSchema),
    replies: Type.Optional(repliesSchema),
    outbound: Type.Optional(outboundSchema),
    limits: Type.Optional(limitsSchema),
    bans: Type.Optional(bansSchema),
  },
  {
    additionalProperties: false,
    title: 'botgate policy',
    description: 'What one bot accepts. Every section is optional; a missing section takes its defaults.',
  },
)

export type Policy = Static<typeof policySchema>

/** The section names, for messages that list them. */
export const SECTION_NAMES = Object.keys(policySchema.properties).filter((key) => key !== 'mode')
