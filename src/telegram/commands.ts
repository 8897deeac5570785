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
}

/** `/name` or `/name@username` at the start of a string; the name runs to whitespace or `@`. */
const COMMAND = /^\/([^\s@/]+)(?:@([^\s/]+))?/

function parse(text: string): Command | undefined {
  const match = COMMAND.exec(text)
  if (match === null) return undefined
  return { name: (match[1] as string).toLowerCase(), mention: match[2]?.toLowerCase() }
}

function commandsOf(text: unknown, entities: unknown, into: Command[]): void {
  if (typeof text !== 'string' || text.length === 0) return
  /** The commands of entities at offset 0. */
  const atStart: Command[] = []
  if (Array.isArray(entities)) {
    for (const entity of entities as unknown[]) {
      if (entity === null || typeof entity !== 'object') continue
      const { type, offset, length } = entity as { type?: unknown; offset?: unknown; length?: unknown }
      if (type !== 'bot_command' || typeof offset !== 'number' || typeof length !== 'number') continue
      if (offset < 0 || length <= 0 || offset >= text.length) continue
      const command = parse(text.slice(offset, offset + length))
      if (command === undefined) continue
      if (offset === 0) atStart.push(command)
      into.push(command)
    }
  }
  // The leading word counts even when an entity starts there: a forged entity shorter than the
  // word ("/start" of "/start_admin") would otherwise show the filter a command the bot never
  // sees. Only an entity that gave this very command makes it a duplicate.
  if (text.charCodeAt(0) === 47 /* / */) {
    const command = parse(text)
    if (
      command !== undefined &&
      !atStart.some((c) => c.name === command.name && c.mention === command.mention)
    )
      into.push(command)
  }
}

/** The commands of a message object (empty when it has none). */
export function extractCommands(message: Record<string, unknown>): Command[] {
  const commands: Command[] = []
  commandsOf(message.text, message.entities, commands)
  commandsOf(message.caption, message.caption_entities, commands)
  return commands
}
