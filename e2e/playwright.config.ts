// The end-to-end suite: the real `peft-studio serve` (browser mode) driven by
// Debian's Chromium, plus the Electron spec, which runs where the Electron
// binary exists and skips elsewhere. It expects a built tree: `npm run build`
// (dist/electron for the server, dist/renderer for the page it serves).
//
// One worker: every spec trains on the CPU, and the CI box has two cores; two
// trainings at once would only make both slower and the timings noisy.
import { defineConfig } from '@playwright/test';

/** Debian's Chromium (CI installs it with apt); never Playwright's download. */
export const CHROMIUM_PATH = process.env.PEFT_STUDIO_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: '.',
  outputDir: 'test-results',
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  // CPU training inside a test: generous per test, but the whole suite stays
  // well under three minutes on a two-core box.
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    viewport: { width: 1280, height: 800 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    actionTimeout: 15_000,
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  projects: [
    {
      name: 'browser-mode',
      testMatch: /.*\.spec\.ts$/,
      testIgnore: /electron\.spec\.ts$/,
      use: { browserName: 'chromium' },
    },
    {
      // Playwright's Electron support launches the app itself (no browser).
      name: 'electron',
      testMatch: /electron\.spec\.ts$/,
    },
  ],
});
