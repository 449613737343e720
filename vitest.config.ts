import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Separate hosts need root and network namespaces: `npm run test:hosts` (vitest.hosts.config.ts).
    exclude: ['**/node_modules/**', 'test/hosts/**'],
    // Builds dist/ (what the member processes run) from the current src/ before any test.
    globalSetup: ['test/global_setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
