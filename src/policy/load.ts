/**
 * @module
 * Loading a policy: from its own YAML file (relative to the config file) or inline in the config,
 * validated against the policy schema, then against the rules a schema cannot state.
 */

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chatProblems } from '../checks/chats/index.js'
import { commandProblems } from '../checks/commands/index.js'
import { contentProblems } from '../checks/content/index.js'
import { checkLimits } from '../checks/limits/index.js'
import { outboundChatProblems } from '../checks/outbound/chats.js'
import { parseSources } from '../checks/sources/index.js'
import { unknownUpdateTypes } from '../checks/updates/index.js'
import { userProblems } from '../checks/users/index.js'
import { type Segment, YamlSource } from '../config/source.js'
import { validate } from '../config/validate.js'
import { type Policy, policySchema } from './schema.js'

/** The policy a bot gets when its config names none: the shipped, commented default. */
export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))

/** Where a policy came from, for summaries and the file watcher. */
export interface PolicyOrigin {
  /** The policy file, or undefined for an inline policy. */
  readonly file: string | undefined
  /** `policies/default.yaml`, or `inline`. */
  readonly label: string
}

/** Rules beyond the schema, reported at `base` inside `source`. */
export function checkPolicy(policy: Policy, source: YamlSource, base: readonly Segment[]): void {
  if (policy.sources) {
    for (const { index, message } of parseSources(policy.sources.allow).problems) {
      source.issue([...base, 'sources', 'allow', index], message)
    }
  }
  for (const { index, message } of unknownUpdateTypes(policy.updates?.allow ?? [])) {
    source.issue([...base, 'updates', 'allow', index], message)
  }
  if (policy.commands) {
    for (const { path, message } of commandProblems(policy.commands, policy.roles))
      source.issue([...base, ...path], message)
  }
  const problems = [
    ...(policy.chats ? chatProblems(policy.chats) : []),
    ...(policy.users ? userProblems(policy.users, policy.roles) : []),
    ...(policy.content ? contentProblems(policy.content) : []),
    ...(policy.outbound?.chats ? outboundChatProblems(policy.outbound.chats) : []),
  ]
  for (const { path, message } of problems) source.issue([...base, ...path], message)
  if (policy.limits)
    checkLimits(policy.limits, (at, message) => source.issue([...base, 'limits', ...at], message))
}

/** Reads, substitutes, validates and checks a policy file; problems are recorded on the returned source. */
export function loadPolicyFile(
  file: string,
  env: NodeJS.ProcessEnv,
): { policy: Policy | undefined; source: YamlSource; origin: PolicyOrigin } {
  const source = YamlSource.read(file)
  const origin = { file, label: source.name }
  if (source.issues.length > 0) return { policy: undefined, source, origin }
  source.substitute(env)
  const policy = validate(policySchema, source.value() ?? {}, source)
  if (policy) checkPolicy(policy, source, [])
  return { policy: source.issues.length > 0 ? undefined : policy, source, origin }
}

/** Resolves a bot's `policy` value: a path relative to the config file's folder. */
export function policyPath(configFile: string, reference: string): string {
  return path.resolve(path.dirname(configFile), reference)
}
