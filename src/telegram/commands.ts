/**
 * @module
 * The commands a message carries (SPEC section 5; Bot API "MessageEntity", type bot_command):
 * every `bot_command` entity of `text`/`entities` and of `caption`/`caption_entities`, at any
 * offset, plus a leading `/word` of the text or caption unless an entity already gave that very
 * command. The entities are the client's, so a forged or stripped update could omit or shorten
 * them; the leading word is caught regardless.
 *
 * Offsets and lengths are UTF-16 code units (Bot API, "MessageEntity": "Offset in UTF-16 code
 * units"), which is exactly how JavaScript indexes strings, so `text.slice(offset, offset + length)`
 * is the entity's text.
 */

/** One command, as the checks compare it. */
export interface Command {
  /** The name without `/` and without `@mention`, lower-cased (commands compare case-insensitively). */
  readonly name: string
  /** The `@username` suffix without `@`, lower-cased, or undefined. */
  readonly mention: string | undefined
  /**
   * What follows the command in its text, up to the next command there or the end, trimmed of
   * whitespace (`/report 123` -> `123`): what a bot reads as the command's arguments.
   */
  readonly args: string
}

interface Found {
  readonly offset: number
  /** Where the command's own text ends (its entity's end, or the matched leading word's). */
  readonly end: number
  readonly name: string
  readonly mention: string | undefined
}

/** `/name` or `/name@username` at the start of a string; the name runs to whitespace or `@`. */
const COMMAND = /^\/([^\s@/]+)(?:@([^\s/]+))?/

function parse(text: string, offset: number, end: number | undefined): Found | undefined {
  const match = COMMAND.exec(text)
  if (match === null) return undefined
  return {
    offset,
    end: end ?? offset + match[0].length,
    name: (match[1] as string).toLowerCase(),
    mention: match[2]?.toLowerCase(),
  }
}

function commandsOf(text: unknown, entities: unknown, into: Command[]): void {
  if (typeof text !== 'string' || text.length === 0) return
  const found: Found[] = []
  if (Array.isArray(entities)) {
    for (const entity of entities as unknown[]) {
      if (entity === null || typeof entity !== 'object') continue
      const { type, offset, length } = entity as { type?: unknown; offset?: unknown; length?: unknown }
      if (type !== 'bot_command' || typeof offset !== 'number' || typeof length !== 'number') continue
      if (offset < 0 || length <= 0 || offset >= text.length) continue
      const command = parse(
        text.slice(offset, offset + length),
        offset,
        Math.min(offset + length, text.length),
      )
      if (command !== undefined) found.push(command)
    }
  }
  // The leading word counts even when an entity starts there: a forged entity shorter than the
  // word ("/start" of "/start_admin") would otherwise show the filter a command the bot never
  // sees. Only an entity that gave this very command makes it a duplicate.
  if (text.charCodeAt(0) === 47 /* / */) {
    const command = parse(text, 0, undefined)
    if (
      command !== undefined &&
      !found.some((c) => c.offset === 0 && c.name === command.name && c.mention === command.mention)
    )
      found.push(command)
  }
  if (found.length === 0) return
  // Arguments run to the next command of the text (entities come in any order; the list keeps
  // theirs, the leading word last).
  const starts = found.length === 1 ? [] : found.map((command) => command.offset).sort((a, b) => a - b)
  for (const { offset, end, name, mention } of found) {
    const next = starts.find((start) => start > offset) ?? text.length
    into.push({ name, mention, args: end < next ? text.slice(end, next).trim() : '' })
  }
}

/** The commands of a message object (empty when it has none). */
export function extractCommands(message: Record<string, unknown>): Command[] {
  const commands: Command[] = []
  commandsOf(message.text, message.entities, commands)
  commandsOf(message.caption, message.caption_entities, commands)
  return commands
}
