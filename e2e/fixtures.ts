// Test fixtures for the browser-mode specs.
//
// `studio`: a real `peft-studio serve` child process per test, with its own
// studio home (PEFT_STUDIO_HOME: the run index, recent items, the default runs
// folder) and its own work folder (the only folder the page may browse, read
// and write besides the bundled resources). It yields the URL the server
// printed and kills the server after the test.
//
// `page` is Playwright's page, watched for uncaught exceptions and CSP
// violations: either fails the test, since both mean the UI is broken even
// when the step the test checks happened to work.
//
// `shots`: a named screenshot of every step, attached to the report and
// written to e2e/test-results/screenshots/; with PEFT_STUDIO_SCREENSHOTS=DIR
// the steps marked for the README are also written to DIR (docs/screenshots).
import { test as base, expect, type Page, type TestInfo } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export { expect };

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(REPO_ROOT, 'dist', 'electron', 'cli', 'main.js');
export const RENDERER_INDEX = join(REPO_ROOT, 'dist', 'renderer', 'index.html');
export const DEMO_DIR = join(REPO_ROOT, 'resources', 'demo');
export const DEMO_MODEL = join(DEMO_DIR, 'model');
export const SCREENSHOT_DIR = join(REPO_ROOT, 'e2e', 'test-results', 'screenshots');

/** The one line `serve` prints on stdout once it listens. */
const URL_LINE = /^PEFT Studio is serving at (http:\/\/\S+)$/m;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export interface Studio {
  /** the URL exactly as printed, token included */
  url: string;
  token: string;
  /** scheme://host:port */
  origin: string;
  /** PEFT_STUDIO_HOME of this server */
  home: string;
  /** a scratch folder the page may use (datasets, export targets) */
  workDir: string;
  /** everything the server wrote so far (stdout and stderr) */
  log(): string;
}

/** Spawns `serve` and resolves once it prints its URL; rejects with its output if it exits first. */
async function startServer(home: string, workDir: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the e2e suite`);
  if (!existsSync(RENDERER_INDEX)) throw new Error(`${RENDERER_INDEX} is missing: run \`npm run build:renderer\` before the e2e suite`);
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--root', workDir], {
    cwd: workDir,
    // an empty Hugging Face cache: the Model page lists what is cached, and a developer's cache must not show in tests or screenshots
    env: { ...process.env, PEFT_STUDIO_HOME: home, HF_HUB_CACHE: join(home, 'hf-hub-cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const output = () => `--- stdout\n${stdout}--- stderr\n${stderr}`;
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no URL within ${START_TIMEOUT_MS} ms\n${output()}`)), START_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const m = URL_LINE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (code ${code}, signal ${signal}) before printing its URL\n${output()}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return { child, url, output };
}

/** SIGTERM (the service cancels live runs with a checkpoint), then SIGKILL if it hangs. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Saves named step screenshots: attached to the test, and kept in e2e/test-results/screenshots. */
export class Shots {
  private readonly docsDir: string | null;
  constructor(
    private readonly page: Page,
    private readonly testInfo: TestInfo,
    private readonly prefix: string,
  ) {
    const docs = process.env.PEFT_STUDIO_SCREENSHOTS;
    this.docsDir = docs ? resolve(REPO_ROOT, docs) : null;
  }

  /**
   * Screenshot of the viewport as it is now. `readmeName` (e.g.
   * '01-model.png'): also written to $PEFT_STUDIO_SCREENSHOTS when set.
   */
  async take(name: string, readmeName?: string): Promise<void> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const file = join(SCREENSHOT_DIR, `${this.prefix}-${name}.png`);
    const png = await this.page.screenshot({ path: file, animations: 'disabled' });
    await this.testInfo.attach(name, { body: png, contentType: 'image/png' });
    if (readmeName && this.docsDir) {
      mkdirSync(this.docsDir, { recursive: true });
      writeFileSync(join(this.docsDir, readmeName), png);
    }
  }
}

function tempDir(prefix: string): string {
  // realpath: the server compares realpaths, and /tmp may be a symlink
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

export const test = base.extend<{ studio: Studio; shots: Shots }>({
  studio: async ({}, use, testInfo) => {
    const home = tempDir('peft-e2e-home-');
    const workDir = tempDir('peft-e2e-work-');
    const { child, url, output } = await startServer(home, workDir);
    const parsed = new URL(url);
    const token = parsed.searchParams.get('token');
    if (!token) throw new Error(`serve printed a URL without a token: ${url}`);
    try {
      await use({ url, token, origin: parsed.origin, home, workDir, log: output });
    } finally {
      await stopServer(child);
      await testInfo.attach('serve.log', { body: output(), contentType: 'text/plain' });
      // keep the folders of a failed test for a look; the log names them
      if (testInfo.status === testInfo.expectedStatus) {
        rmSync(home, { recursive: true, force: true });
        rmSync(workDir, { recursive: true, force: true });
      } else {
        await testInfo.attach('folders', { body: `home: ${home}\nwork: ${workDir}\n`, contentType: 'text/plain' });
      }
    }
  },

  page: async ({ page }, use, testInfo) => {
    // The API frames (calls, results, and events other than per-step ones),
    // attached when a test fails: what the page asked and what it was told.
    const frames: string[] = [];
    const started = Date.now();
    const note = (dir: string, payload: string | Buffer) => {
      const text = String(payload);
      if (dir === 'in' && text.includes('"type":"step"')) return;
      if (frames.length < 5000) frames.push(`${((Date.now() - started) / 1000).toFixed(3)} ${dir} ${text.length > 600 ? text.slice(0, 600) + '…' : text}`);
    };
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => note('out', f.payload));
      ws.on('framereceived', (f) => note('in', f.payload));
    });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.stack ?? e.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) problems.push(`CSP violation: ${msg.text()}`);
    });
    await use(page);
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('api-frames.log', { body: frames.join('\n'), contentType: 'text/plain' });
    }
    if (problems.length > 0) {
      await testInfo.attach('page-errors', { body: problems.join('\n'), contentType: 'text/plain' });
    }
    expect(problems, 'the page threw or broke its CSP').toEqual([]);
  },

  shots: async ({ page }, use, testInfo) => {
    const prefix = basename(testInfo.file).replace(/\.spec\.ts$/, '');
    await use(new Shots(page, testInfo, prefix));
  },
});
