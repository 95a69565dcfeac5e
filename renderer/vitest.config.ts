// Renderer tests: Svelte components and runes compiled as in the app,
// jsdom as the page (files needing Node, like the WebSocket transport test
// against a real `ws` server, say `// @vitest-environment node`).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

// everything the tests write goes under one temp folder of this run (TMPDIR
// for them and the processes they start), removed when the run ends
const runTemp = mkdtempSync(join(tmpdir(), 'peft-studio-renderer-tests-'));
process.env.PEFT_STUDIO_TEST_TEMP = runTemp;

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  plugins: [svelte({ configFile: false })],
  // the browser build of Svelte (mount, effects), not the server renderer
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
  test: {
    include: ['renderer/**/*.test.ts'],
    environment: 'jsdom',
    // many files train on the demo model: on a loaded 2-core CI machine a test takes seconds, not the 5 s default's margin
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // an empty Hugging Face cache and a studio home of their own, never the developer's (the Model page lists what is cached)
    env: { HF_HUB_CACHE: mkdtempSync(join(runTemp, 'ps-test-hub-')), PEFT_STUDIO_HOME: mkdtempSync(join(runTemp, 'ps-test-home-')), TMPDIR: runTemp },
    globalSetup: ['electron/testing/run-temp.ts'],
    setupFiles: ['vitest-canvas-mock', 'renderer/src/testing/no-layout-resize-observer.ts'],
  },
});
