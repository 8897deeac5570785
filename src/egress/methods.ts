/**
 * @module
 * The egress method filter: which Bot API methods a bot may call through the egress. Methods that
 * hand the bot's webhook or session to someone else (`setWebhook`, `deleteWebhook`, `logOut`,
 * `close`, `getUpdates`) are refused unless listed by name, even under `any`. Bot API method names
 * are case-insensitive, so the filter compares lower-cased names.
 */

/** Refused unless listed by name: each can take the bot's updates or session away from botgate. */
export const GUARDED_METHODS: readonly string[] = [
  'setWebhook',
  'deleteWebhook',
  'logOut',
  'close',
  'getUpdates',
]

const GUARDED = new Set(GUARDED_METHODS.map((method) => method.toLowerCase()))

/** Whether `method` may be called. */
export type MethodFilter = (method: string) => boolean

/** The filter of an `allow_methods` list: method names and `any` (every method but the guarded ones). */
export function compileMethodFilter(allow: readonly string[]): MethodFilter {
  const named = new Set(allow.map((method) => method.toLowerCase()))
  const any = named.has('any')
  return (method) => {
    const name = method.toLowerCase()
    if (named.has(name)) return true
    return any && !GUARDED.has(name)
  }
}
