/**
 * @module
 * The chats a bot has heard from, for `outbound.chats` lists with `heard_from`: a chat from which
 * botgate forwarded an update to the bot. Each is a mark in the store, `{bot}:heard:<chat id>`
 * (a numbered key: with `store: memory` a bot's marks live in a space of their own, bounded by
 * `store.max_entries` with the least recently written going first; with `store: redis` every
 * replica reads the marks every replica wrote), living `heard_from_ttl` after the chat's last
 * update.
 *
 * An update without a chat (an inline query, a payment's query, a poll answer) is heard from its
 * sender's private chat (a user's id is the id of their private chat with the bot).
 *
 * Recording must not cost a store round trip per update: a chat recorded by this process within
 * the last {@link REFRESH_FRACTION} of the TTL is not written again (a bounded map remembers
 * when), so a busy chat costs one write per few hours, and a mark lives at least that much less
 * than the TTL after the chat's last update.
 */

import type { Logger } from '../../observe/logger.js'
import type { Maybe, NumberedKey, Store } from '../../store/index.js'
import type { UpdateFacts } from '../../telegram/update.js'

/** A mark is written again once this much of its TTL has passed since this process wrote it. */
const REFRESH_FRACTION = 1 / 100

/** Chats whose last write this process remembers, per bot; the oldest are forgotten first. */
const REMEMBERED = 10_000

/** The mark of one chat the bot heard from. */
export function heardKey(bot: string, chatId: number): NumberedKey {
  return { space: `{${bot}}:heard:`, id: chatId }
}

/** Whether the bot heard from `chatId` within the TTL. */
export function heardFrom(store: Store, bot: string, chatId: number): Maybe<boolean> {
  const value = store.read(heardKey(bot, chatId))
  return value instanceof Promise ? value.then((found) => found !== undefined) : value !== undefined
}

/** The chat an update is heard from: its chat, else its sender's private chat; undefined: none. */
export function heardChat(update: UpdateFacts | undefined): number | undefined {
  return update === undefined ? undefined : (update.chatId ?? update.userId)
}

/** Records the chat of an update about to be forwarded (undefined: no update was read). */
export type HeardRecorder = (update: UpdateFacts | undefined) => void

export interface HeardDeps {
  readonly store: Store
  readonly bot: string
  readonly logger: Logger
  /** Milliseconds since the epoch. */
  readonly clock?: () => number
}

export function createHeardRecorder(ttlMs: number, deps: HeardDeps): HeardRecorder {
  const { store, bot, logger } = deps
  const clock = deps.clock ?? Date.now
  const refreshMs = Math.max(1000, Math.floor(ttlMs * REFRESH_FRACTION))
  const written = new Map<number, number>()
  let failing = false
  return (update) => {
    const chat = heardChat(update)
    if (chat === undefined) return
    const now = clock()
    const last = written.get(chat)
    if (last !== undefined && now - last < refreshMs) return
    written.delete(chat)
    written.set(chat, now)
    if (written.size > REMEMBERED) written.delete(written.keys().next().value as number)
    const done = () => {
      failing = false
    }
    const failed = (error: unknown) => {
      written.delete(chat)
      // One line per outage, not one per update.
      if (!failing) logger.warn({ bot, err: error }, 'outbound: a chat heard from was not recorded')
      failing = true
    }
    try {
      const put = store.put(heardKey(bot, chat), '1', ttlMs)
      if (put instanceof Promise) put.then(done, failed)
      else done()
    } catch (error) {
      failed(error)
    }
  }
}
