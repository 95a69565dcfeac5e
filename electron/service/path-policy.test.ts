// The browser-mode path policy at its edges (review L2, L3, L4): dangling
// symlinks are followed to where they point, a resumed run's stored paths
// are checked like a new run's, and the bundled demo is readable but never a
// place to write.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiMethod, DemoPaths, RunCheck, TrainConfig } from '../api/contract.js';
import { newRunRecord } from '../runs/run-record.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { PathPolicy, realPathOrParent } from './paths.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('policy-home');

const root = tempDir('policy-root');
const outside = tempDir('policy-outside');
let browser: StudioService;
let desktop: StudioService;
let demo: DemoPaths;
const taskTrain = () => demo.datasets.find((d) => d.name === 'task-train')!.path;

async function ok<T>(service: StudioService, method: ApiMethod, request: unknown): Promise<T> {
  const result = await service.call(method, request);
  if (!result.ok) throw new Error(`${method} failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}
async function err(service: StudioService, method: ApiMethod, request: unknown) {
  const result = await service.call(method, request);
  expect(result.ok, `${method} should fail`).toBe(false);
  return (result as { ok: false; error: { code: string; field?: string; message: string } }).error;
}

beforeAll(async () => {
  // root/dangling -> outside/nonexistent; root/chain -> root/dangling (two hops); root/inner -> root/later (dangling, but inside)
  symlinkSync(join(outside, 'nonexistent'), join(root, 'dangling'));
  symlinkSync('dangling', join(root, 'chain'));
  symlinkSync(join(root, 'later'), join(root, 'inner'));
  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('loop-a', join(root, 'loop-b'));
  browser = createStudioService({ mode: 'browser', allowedRoots: [root] });
  desktop = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await ok<DemoPaths>(browser, 'demoPaths', {});
});
afterAll(async () => {
  await browser.close();
  await desktop.close();
});

describe('dangling symlinks (L2)', () => {
  it('realPathOrParent follows a dangling link to its target, relative targets and chains too', () => {
    expect(realPathOrParent(join(root, 'dangling', 'x'))).toBe(join(outside, 'nonexistent', 'x'));
    expect(realPathOrParent(join(root, 'chain', 'x', 'y'))).toBe(join(outside, 'nonexistent', 'x', 'y'));
    expect(realPathOrParent(join(root, 'inner', 'run'))).toBe(join(root, 'later', 'run'));
  });

  it('a dangling link out of the root is forbidden for listDir and as a run folder', async () => {
    expect(await err(browser, 'listDir', { path: join(root, 'dangling', 'x') })).toMatchObject({ code: 'forbidden', field: 'path' });
    expect(await err(browser, 'listDir', { path: join(root, 'dangling') })).toMatchObject({ code: 'forbidden' });
    expect(await err(browser, 'listDir', { path: join(root, 'chain') })).toMatchObject({ code: 'forbidden' });
    const out = join(root, 'dangling', 'x');
    expect(await err(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out, hyper: { steps: 1 } })).toMatchObject({ code: 'forbidden', field: 'out' });
    expect(await err(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: join(root, 'dangling'), hyper: { steps: 1 } })).toMatchObject({ code: 'forbidden', field: 'out' });
  });

  it('a dangling link that stays inside the root is still allowed; a link loop is refused', async () => {
    expect(await err(browser, 'listDir', { path: join(root, 'inner') })).toMatchObject({ code: 'failed' });
    expect(new PathPolicy([root]).permits(join(root, 'inner', 'run'), 'write')).toBe(true);
    expect(new PathPolicy([root]).permits(join(root, 'loop-a', 'x'), 'read')).toBe(false);
  });
});

describe('the bundled demo is read-only (L4)', () => {
  it('its files may be read, but no run or export may be written inside it or beside it', async () => {
    const demoDir = dirname(demo.model);
    const c = await ok<RunCheck>(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: join(root, 'runs', 'a'), hyper: { steps: 1 } });
    expect(c.errors).toEqual([]);
    for (const out of [join(demoDir, 'evil-run'), join(dirname(demoDir), 'evil-run'), demoDir]) {
      expect(await err(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out, hyper: { steps: 1 } }), out).toMatchObject({ code: 'forbidden', field: 'out' });
      expect(await err(browser, 'startRun', { model: demo.model, data: taskTrain(), method: 'lora', out, hyper: { steps: 1 } }), out).toMatchObject({ code: 'forbidden', field: 'out' });
      expect(await err(browser, 'exportAdapter', { source: join(root, 'some-run'), formats: ['peft'], out }), out).toMatchObject({ code: 'forbidden', field: 'out' });
    }
    // the rest of the package's resources folder is not readable either: only the demo is
    expect(await err(browser, 'listDir', { path: dirname(demoDir) })).toMatchObject({ code: 'forbidden' });
    const e = await err(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: join(demoDir, 'evil-run'), hyper: {} });
    expect(e.message).toMatch(/read-only|cannot be written/);
  });

  it('the studio home stays readable and writable; the desktop app may write anywhere', async () => {
    const home = process.env.PEFT_STUDIO_HOME!;
    expect(new PathPolicy([root]).permits(join(home, 'runs', 'x'), 'write')).toBe(true);
    expect(new PathPolicy(null).permits(join(dirname(demo.model), 'x'), 'write')).toBe(true);
  });
});

describe('resumeRun checks the stored paths (L3)', () => {
  /** A cancelled run inside the root whose run.json names `patch`'s paths. */
  async function storedRun(name: string, patch: Partial<TrainConfig>): Promise<string> {
    const runDir = join(root, name);
    mkdirSync(runDir);
    const check = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: runDir, hyper: { steps: 2 } });
    expect(check.errors).toEqual([]);
    const record = { ...newRunRecord({ ...check.config!, ...patch }), status: 'cancelled', pid: null, pid_start: null, steps_done: 1, total_steps: 2 };
    writeFileSync(join(runDir, 'run.json'), JSON.stringify(record, null, 2));
    return runDir;
  }

  it('an initAdapter outside the root is forbidden, naming initAdapter', async () => {
    mkdirSync(join(outside, 'adapter'));
    const runDir = await storedRun('with-init', { initAdapter: join(outside, 'adapter') });
    const e = await err(browser, 'resumeRun', { runDir });
    expect(e).toMatchObject({ code: 'forbidden', field: 'initAdapter' });
    expect(e.message).toContain(join(outside, 'adapter'));
  });

  it('a model or data file outside the root is forbidden too', async () => {
    writeFileSync(join(outside, 'd.jsonl'), '{"text": "x"}\n');
    const runDir = await storedRun('with-data', { data: join(outside, 'd.jsonl') });
    expect(await err(browser, 'resumeRun', { runDir })).toMatchObject({ code: 'forbidden', field: 'data' });
  });
});
