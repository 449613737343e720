import { defineConfig } from 'vitest/config';

/** `npm run test:hosts`: the tests on separate hosts (network namespaces; needs root). */
export default defineConfig({
  test: {
    include: ['test/hosts/**/*.test.ts'],
    globalSetup: ['test/global_setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One file at a time: each lab's members already take the machine's two cores.
    fileParallelism: false,
  },
});
