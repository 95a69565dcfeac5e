// The disk check through the real service on the bundled demo model: a run
// that keeps a checkpoint of each of a billion steps writes petabytes, more
// than the output folder's disk has free on any test machine, so checkRun
// says so (in the form's words) and startRun refuses it with that message
// unless ignoreDiskCheck is sent; the flag is a boolean like the others, and
// resumeRun takes it too. The wording of the run's own refusal on a resume
// (the command line's, from runs/disk-need.ts) as the Resume options say it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoPaths, RunCheck } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callOk, callRefused } from '../testing/service-calls.js';
import { diskShortfall, runDiskNeed, type DiskNeedInput } from '../runs/disk-need.js';
import { inAppWords } from './app-wording.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('service-disk-check-home');

let service: StudioService;
let demo: DemoPaths;
const settings = (hyper: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ model: demo.model, data: demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora', hyper: { threads: 1, device: 'cpu', ...hyper }, ...extra });
const huge = { steps: 1_000_000_000, saveEvery: 1, keepCheckpoints: 0 };

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await callOk<DemoPaths>(service, 'demoPaths', {});
});
afterAll(() => service.close());

describe('the disk check in the service', () => {
  it('checkRun: what the run writes against the free space, and the refusal in the form\'s words', async () => {
    const c = await callOk<RunCheck>(service, 'checkRun', settings(huge));
    expect(c.ok).toBe(false);
    expect(c.errors).toEqual([]);
    expect(c.memory!.fits).toBe(true);
    expect(c.disk).toMatchObject({ fits: false, checkpointsAtOnce: 1_000_000_000 });
    expect(c.disk!.shortfall).toMatch(/^\S+: the run writes about \S+ \S+ there \(1,000,000,000 checkpoints of \S+ \S+ at once, the adapter \S+ \S+, metrics and run files \S+ \S+\) and its disk has \S+ \S+ free\. Free \S+ \S+ there, keep one checkpoint \(Checkpoints kept 1: about \S+ \S+\) or start the app with PEFT_STUDIO_HOME on a disk with room \(where it keeps its runs\); or start anyway\.$/);
    expect(c.verdict).toContain(`Does not fit on the disk: ${c.disk!.shortfall}`);
    // and the same run saving nothing fits
    const small = await callOk<RunCheck>(service, 'checkRun', settings({ steps: 1 }));
    expect(small.ok).toBe(true);
    expect(small.disk).toMatchObject({ fits: true, checkpointsAtOnce: 0, shortfall: null });
  }, 60_000);

  it('startRun refuses it with that message; ignoreDiskCheck must be a boolean', async () => {
    const c = await callOk<RunCheck>(service, 'checkRun', settings(huge));
    const refused = await callRefused(service, 'startRun', settings(huge));
    expect(refused).toEqual({ code: 'failed', message: c.disk!.shortfall });
    expect(await callRefused(service, 'startRun', settings(huge, { ignoreDiskCheck: 'yes' }))).toEqual({
      code: 'invalid', field: 'ignoreDiskCheck', message: 'ignoreDiskCheck must be true or false, got "yes"',
    });
    expect(await callRefused(service, 'resumeRun', { runDir: tempDir('not-a-run'), ignoreDiskCheck: 1 })).toMatchObject({ code: 'invalid', field: 'ignoreDiskCheck' });
  }, 60_000);

  it('a resume refused by the run: the Resume options\' words, without the ways the app cannot take there', () => {
    const input: DiskNeedInput = {
      resultBytes: 2 ** 20, stateBytes: 2 ** 21, totalSteps: 100, saveEvery: 1,
      keepCheckpoints: 5, keepBest: false, evalEvery: 0, resumed: { fromStep: 40, checkpoints: 5 },
    };
    const need = runDiskNeed(input);
    const cli = diskShortfall('/runs/r1', { need, freeBytes: 2 ** 20, fits: false }, input, 'adapter')!;
    // a resumed run's folder stays where it is: no "--out" way out; the command line may keep fewer checkpoints
    expect(cli).toMatch(/\. Free \S+ \S+ there or keep one checkpoint \(--keep-checkpoints 1: about \S+ \S+\); --ignore-disk-check starts it anyway\.$/);
    expect(inAppWords(cli, 'resume')).toMatch(/\. Free \S+ \S+ there; or tick "Resume even if the disk check says it does not fit" in the Resume options\.$/);
  });
});
