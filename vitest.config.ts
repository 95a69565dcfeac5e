import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['electron/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native engine tests are CPU-heavy; running files in parallel on a
    // 2-core machine only makes each slower.
    fileParallelism: false,
  },
});
