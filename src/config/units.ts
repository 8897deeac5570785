/**
 * @module
 * Human-friendly units in the config: durations (`25s`, `500ms`, `24h`) and sizes (`256KiB`).
 * The config schema checks the shape with the patterns below; these functions turn a checked
 * string into a number once, at load time, so the request path only sees milliseconds and bytes.
 */

/** A duration: an integer and one unit. Kept to one unit so `1m` can never be misread as `1 month`. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$'
const DURATION = new RegExp(DURATION_PATTERN)
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A size: an integer and an optional unit; KB/MB are powers of 1000, KiB/MiB of 1024 (IEC 80000-13). */
export const SIZE_PATTERN = '^[0-9]+(B|KB|KiB|MB|MiB)?$'
const SIZE = new RegExp(SIZE_PATTERN)
const SIZE_BYTES: Record<string, number> = { B: 1, KB: 1000, KiB: 1024, MB: 1_000_000, MiB: 1_048_576 }

/** Milliseconds of a duration string that matched {@link DURATION_PATTERN}. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text)
  if (!match) throw new RangeError(`not a duration: ${text}`)
  return Number.parseInt(text, 10) * (DURATION_MS[match[1] as string] as number)
}

/** Bytes of a size string that matched {@link SIZE_PATTERN}. */
export function parseSize(text: string): number {
  const match = SIZE.exec(text)
  if (!match) throw new RangeError(`not a size: ${text}`)
  return Number.parseInt(text, 10) * (SIZE_BYTES[match[1] ?? 'B'] as number)
}

/** `25000` -> `25s`: for summaries and messages. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_MS[unit] as number
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/** `262144` -> `256KiB`: for summaries and messages. */
export function formatSize(bytes: number): string {
  if (bytes >= 1_048_576 && bytes % 1_048_576 === 0) return `${bytes / 1_048_576}MiB`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`
  return `${bytes}B`
}
