import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['electron/**/*.test.ts'],
    // compiles dist/ when a source is newer (worker and CLI tests run the built JS)
    globalSetup: ['electron/testing/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native engine tests are CPU-heavy; running files in parallel on a
    // 2-core machine only makes each slower.
    fileParallelism: false,
  },
});
