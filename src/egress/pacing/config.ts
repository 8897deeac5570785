/**
 * @module
 * Pacing as the pacer runs it, compiled from the `egress.pacing` section ({@link ./schema.ts}).
 */

export interface PacingConfig {
  readonly enabled: boolean
  /** @default 30 per 1 s, burst 1, per bot */
  readonly global: Rate
  /** @default 1 per 1 s, burst 3 */
  readonly privateChat: Rate
  /** @default 20 per 60 s, burst 1 (groups, supergroups, channels) */
  readonly groupChat: Rate
  /** Calls of one bot waiting for their turn. @default 1000 */
  readonly maxQueue: number
  /** The longest a call may wait for its turn before it is answered 429. @default 30_000 */
  readonly maxWaitMs: number
  /** Transparent retries after Telegram's 429. @default 3 */
  readonly maxRetries: number
}

export interface Rate {
  readonly count: number
  readonly periodMs: number
  readonly burst: number
}
