/**
 * @module
 * `mode: enforce | shadow`, accepted on a whole policy and on each of its sections. A section
 * without a mode inherits the policy's, so a policy in shadow can keep one section enforcing, and
 * an enforcing policy can roll one new section out in shadow first.
 */

import { Type } from '@sinclair/typebox'

export const SectionMode = Type.Union([Type.Literal('enforce'), Type.Literal('shadow')], {
  description:
    'enforce: verdicts apply. shadow: verdicts are logged and counted as "would", and the update is forwarded anyway.',
  errorMessage: 'must be enforce or shadow',
})

export type Mode = 'enforce' | 'shadow'

/** Whether a section runs in shadow mode. */
export function isShadow(policyMode: Mode | undefined, sectionMode: Mode | undefined): boolean {
  return (sectionMode ?? policyMode ?? 'enforce') === 'shadow'
}

/** A section's `drop | forward` choice for one kind of update (other bots, forwards, anonymous senders). */
export const dropOrForward = (description: string) =>
  Type.Union([Type.Literal('drop'), Type.Literal('forward')], {
    description,
    errorMessage: 'must be drop or forward',
  })
