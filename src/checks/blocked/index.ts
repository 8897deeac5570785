/**
 * @module
 * The blocked check: an update whose chat or sender an operator has blocked through the admin API
 * (src/blocks) is dropped with 200 and reason `blocked`. A 200, not an error: the update is genuine,
 * and Telegram would resend any other answer and hold back the chat's later updates (SPEC section 1).
 *
 * It is the first update check. A block is an operator's explicit decision about a sender, so it
 * takes precedence over every policy verdict: a blocked update takes no dedupe mark, consumes no
 * rate-limit budget, and never earns a gateway reply ("Unknown command", "too fast"), which would
 * tell the blocked sender something and could be flooded. (With the memory store it costs no
 * schema walk either; with Redis the pure checks run while the blocks read is on its way, and
 * their verdicts are set aside.) It reads only
 * `chatId` and `userId`, which the envelope has already read as safe integers.
 *
 * Blocks are not policy: the check has no section and no shadow mode, and applies in a policy that
 * is in shadow mode too.
 */

import type { BlockKind, BotBlocks } from '../../blocks/index.js'
import { Deferred, type UpdateCheck } from '../../pipeline/check.js'
import type { Exchange } from '../../pipeline/exchange.js'
import { isPromise } from '../../pipeline/run.js'
import { type Drop, drop } from '../../pipeline/verdict.js'

const BLOCKED = drop('blocked')

function verdict(exchange: Exchange, kind: BlockKind | undefined): Drop | undefined {
  if (kind === undefined) return undefined
  exchange.detail = `${kind} blocked`
  return BLOCKED
}

export function createBlockedCheck(blocks: BotBlocks): UpdateCheck {
  return {
    name: 'blocked',
    shadow: false,
    effects: 'chained',
    run(exchange, update) {
      if (update.chatId === undefined && update.userId === undefined) return undefined
      const chain = exchange.chainOn(blocks.store)
      if (chain !== undefined)
        return Deferred.of(blocks.matchOn(chain, update.chatId, update.userId), (found) =>
          verdict(exchange, found),
        )
      const kind = blocks.match(update.chatId, update.userId)
      return isPromise(kind) ? kind.then((found) => verdict(exchange, found)) : verdict(exchange, kind)
    },
  }
}
