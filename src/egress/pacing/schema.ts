/**
 * @module
 * The `egress.pacing` config section and its compilation into a {@link PacingConfig}. Rates use
 * the syntax of policy limits (`30/s`, `20/min`, src/checks/limits), durations that of the rest
 * of the config (src/config/units.ts). Defaults are Telegram's published flood limits.
 */

import { type Static, Type } from '@sinclair/typebox'
import { parseRate, RATE_PATTERN } from '../../checks/limits/index.js'
import { DURATION_PATTERN, parseDuration } from '../../config/units.js'
import { PERIOD_US } from '../../store/gcra.js'
import type { PacingConfig, Rate } from './config.js'

const rate = (fallback: string, description: string) =>
  Type.String({
    pattern: RATE_PATTERN,
    default: fallback,
    description: `${description} N per period: N/s, N/min, N/h or N/day. Default: ${fallback}.`,
    errorMessage: 'must be a rate like 20/min: N/s, N/min, N/h or N/day',
  })

const burst = (fallback: number, description: string) =>
  Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: fallback,
    description: `${description} Default: ${fallback}.`,
  })

const rateWithBurst = (fallbackRate: string, fallbackBurst: number, description: string) =>
  Type.Optional(
    Type.Union(
      [
        rate(fallbackRate, description),
        Type.Object(
          {
            rate: rate(fallbackRate, description),
            burst: Type.Optional(
              burst(fallbackBurst, 'Messages that may go at once; then one per period/N.'),
            ),
          },
          { additionalProperties: false },
        ),
      ],
      { description: `${description} A rate, or { rate, burst }.` },
    ),
  )

export const pacingSchema = Type.Object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        default: true,
        description: "Pace the bot's calls to Telegram's flood limits. Default: true.",
      }),
    ),
    global: rateWithBurst('30/s', 1, 'Messages per bot, over all chats.'),
    private_chat: rateWithBurst('1/s', 3, 'Messages per private chat.'),
    group_chat: rateWithBurst('20/min', 1, 'Messages per group, supergroup or channel.'),
    max_queue: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 1000,
        description: "Calls of one bot that may wait; past it the bot gets Telegram's 429. Default: 1000.",
      }),
    ),
    max_wait: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        default: '30s',
        description:
          "The longest a call may wait for its turn (and for one retry); past it the bot gets Telegram's 429. A duration like 500ms or 30s. Default: 30s.",
        errorMessage: 'must be a duration like 500ms, 25s, 5m, 24h or 7d',
      }),
    ),
    max_retries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        default: 3,
        description: 'Transparent retries of a call Telegram answered 429. Default: 3.',
      }),
    ),
  },
  { additionalProperties: false, description: "Pacing of the bot's calls to Telegram's flood limits." },
)

export type PacingSection = Static<typeof pacingSchema>

type RateValue = string | { readonly rate: string; readonly burst?: number }

function compileRate(value: RateValue | undefined, fallback: string, fallbackBurst: number): Rate {
  const text = value === undefined ? fallback : typeof value === 'string' ? value : value.rate
  const chosen = typeof value === 'object' ? (value.burst ?? fallbackBurst) : fallbackBurst
  const { count, unit } = parseRate(text)
  return { count, periodMs: PERIOD_US[unit] / 1000, burst: chosen }
}

/** The section as the pacer uses it; absent keys take their defaults. */
export function compilePacing(raw: Partial<PacingSection> | undefined): PacingConfig {
  const section = raw ?? {}
  return {
    enabled: section.enabled ?? true,
    global: compileRate(section.global, '30/s', 1),
    privateChat: compileRate(section.private_chat, '1/s', 3),
    groupChat: compileRate(section.group_chat, '20/min', 1),
    maxQueue: section.max_queue ?? 1000,
    maxWaitMs: parseDuration(section.max_wait ?? '30s'),
    maxRetries: section.max_retries ?? 3,
  }
}
