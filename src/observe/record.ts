/**
 * @module
 * The end of every request: one log line with the fields of SPEC section 7, and the metrics.
 * The line is built from an explicit list of fields: no header, token or message text can reach it.
 */

import type { Answer } from '../pipeline/answer.js'
import type { Exchange } from '../pipeline/exchange.js'
import type { Logger } from './logger.js'
import type { BotMetrics } from './metrics.js'

export function recordRequest(
  logger: Logger,
  bot: string,
  metrics: BotMetrics,
  exchange: Exchange,
  answer: Answer,
): void {
  const ms = performance.now() - exchange.startedAt
  metrics.request(answer.reason, answer.outcome)
  // One field increment for the alert monitor, which reads the counts on its own timer.
  metrics.alerts.count(answer.reason)
  metrics.duration.observe(ms / 1000)
  const would = exchange.would
  if (would !== undefined) for (const reason of would) metrics.shadow(reason)
  const update = exchange.update
  const line = {
    bot,
    reason: answer.reason,
    status: answer.status,
    ms: Math.round(ms * 1000) / 1000,
    update_id: update?.id,
    update_type: update?.type,
    chat_id: update?.chatId,
    user_id: update?.userId,
    command: update?.commands[0]?.name,
    ip: exchange.client?.text,
    request_id: exchange.requestId,
    would,
    detail: exchange.detail,
    upstream_status: exchange.upstreamStatus,
    upstream_ms:
      exchange.upstreamMs === undefined ? undefined : Math.round(exchange.upstreamMs * 1000) / 1000,
  }
  if (answer.status >= 500) logger.warn(line, 'request')
  else logger.info(line, 'request')
}
