import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // fs-ext is a native addon that is not worker-thread safe: run test files in child processes.
    pool: 'forks',
    testTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.d.ts', 'src/cli/bin.ts'],
      reporter: ['text-summary', 'text'],
      thresholds: { statements: 95, lines: 95, functions: 95, branches: 90 },
    },
  },
});
