import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Only to bound a hang: the simulation's own numbers are what the tests assert.
    testTimeout: 180_000,
  },
});
