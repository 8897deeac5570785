/**
 * @module
 * Config errors are a user interface: each names the file, line and column, the key path and what
 * is wrong, as `gateway.yaml:14:7 bots[0].upstream.url: must be an http(s) URL`.
 */

/** One problem in a config or policy file. */
export interface ConfigIssue {
  /** The file as the user would name it (relative to the working directory when inside it). */
  readonly file: string
  readonly line: number
  readonly col: number
  /** `bots[0].upstream.url`; empty for problems of the whole file. */
  readonly path: string
  readonly message: string
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.col}`
  return issue.path === '' ? `${where} ${issue.message}` : `${where} ${issue.path}: ${issue.message}`
}

/** `['bots', 0, 'upstream', 'url']` -> `bots[0].upstream.url` */
export function formatPath(segments: readonly (string | number)[]): string {
  let text = ''
  for (const segment of segments) {
    if (typeof segment === 'number') text += `[${segment}]`
    else text += text === '' ? segment : `.${segment}`
  }
  return text
}

/** Thrown by the loader with every problem it found, in file order. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[]) {
    const files = [...new Set(issues.map((issue) => issue.file))]
    const sorted = [...issues].sort(
      (a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line || a.col - b.col,
    )
    super(sorted.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = sorted
  }
}

/**
 * What a failed read is reported as: the file system's code (`ENOENT`, `EACCES`), else the
 * error's message. Never the file's content, which may be a secret.
 */
export function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message
}
