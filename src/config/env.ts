/**
 * @module
 * Environment references in config and policy values (SPEC section 2): `${NAME}` is replaced by
 * the variable NAME, `${NAME:-default}` falls back to the default when NAME is unset or empty, and
 * `$${...}` is a literal `${...}`. An unset variable without a default is an error naming it, so a
 * missing secret can never turn into an empty one.
 */

/**
 * An environment reference, `${NAME}` or `${NAME:-default}`, as regular expression source: the
 * loader's, and the published JSON Schema's (`botgate schema`).
 */
export const REFERENCE_PATTERN = String.raw`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`

/** A reference after an optional second `$` (captured): `$${...}` is a literal `${...}`. */
const REFERENCE = new RegExp(String.raw`(\$?)${REFERENCE_PATTERN}`, 'g')

/** A value with its references replaced, and the names that were unset and had no default. */
export interface Expanded {
  readonly value: string
  readonly missing: readonly string[]
}

/** Replaces every reference in `text`; an unset name without default becomes `''` and is reported in `missing`. */
export function expandReferences(text: string, env: NodeJS.ProcessEnv): Expanded {
  if (!text.includes('${')) return { value: text, missing: [] }
  const missing: string[] = []
  const value = text.replace(
    REFERENCE,
    (whole, escaped: string, name: string, fallback: string | undefined) => {
      if (escaped) return whole.slice(1)
      const found = env[name]
      if (fallback !== undefined) return found === undefined || found === '' ? fallback : found
      if (found === undefined) missing.push(name)
      return found ?? ''
    },
  )
  return { value, missing }
}

/** The message for an unset variable, suggesting the default syntax. */
export function missingVariable(name: string): string {
  return `environment variable ${name} is not set (write \${${name}:-default} for a default)`
}
