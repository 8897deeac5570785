import { describe, expect, it } from 'vitest'
import { expandReferences, missingVariable } from './env.js'

describe('expandReferences', () => {
  const env = { NAME: 'value', EMPTY: '' }

  it('replaces ${NAME} and leaves text without references as it is', () => {
    expect(expandReferences('a ${NAME} b', env)).toEqual({ value: 'a value b', missing: [] })
    expect(expandReferences('plain', env)).toEqual({ value: 'plain', missing: [] })
  })

  it('takes the default when the variable is unset or empty', () => {
    expect(expandReferences('${UNSET:-fallback}', env).value).toBe('fallback')
    expect(expandReferences('${EMPTY:-fallback}', env).value).toBe('fallback')
    expect(expandReferences('${NAME:-fallback}', env).value).toBe('value')
    expect(expandReferences('${UNSET:-}', env)).toEqual({ value: '', missing: [] })
  })

  it('reports every unset name without a default, and an empty set one is no error', () => {
    expect(expandReferences('${A}/${B}/${EMPTY}', env)).toEqual({ value: '//', missing: ['A', 'B'] })
  })

  it('keeps $${...} as a literal ${...}', () => {
    expect(expandReferences('$${NAME} ${NAME}', env)).toEqual({ value: '${NAME} value', missing: [] })
  })

  it('says how to give a default', () => {
    expect(missingVariable('X')).toBe('environment variable X is not set (write ${X:-default} for a default)')
  })
})
