import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Everything a test run writes goes under one temp folder of its own (TMPDIR
// for the tests and every process they start), removed when the run ends
// (testing/run-temp.ts): a run writes some GB of models, runs and exports, and
// left them behind in the system's temp folder run after run.
const runTemp = mkdtempSync(join(tmpdir(), 'peft-studio-tests-'));
process.env.PEFT_STUDIO_TEST_TEMP = runTemp;
// The tests see an empty Hugging Face cache of their own, never the
// developer's (a model cached there would change what a repo id resolves to);
// a test that needs a cache sets HF_HUB_CACHE itself.
const emptyHubCache = mkdtempSync(join(runTemp, 'ps-test-hub-'));
// ... and a studio home of their own (the run index, kept states, the token
// cache), never the developer's ~/.peft-studio; a test about the default
// location unsets it itself.
const studioHome = mkdtempSync(join(runTemp, 'ps-test-home-'));

export default defineConfig({
  test: {
    include: ['electron/**/*.test.ts'],
    // compiles dist/ when a source is newer (worker and CLI tests run the built JS)
    globalSetup: ['electron/testing/global-setup.ts'],
    env: { HF_HUB_CACHE: emptyHubCache, HF_HOME: join(emptyHubCache, 'home'), PEFT_STUDIO_HOME: studioHome, TMPDIR: runTemp },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native engine tests are CPU-heavy; running files in parallel on a
    // 2-core machine only makes each slower.
    fileParallelism: false,
  },
});
