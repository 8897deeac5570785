import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration tests start real gateway processes; give them room on small machines.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: ['test/helpers/temp-root.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
})
