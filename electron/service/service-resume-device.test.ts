// resumeRun with a device and a precision, on the real bundled demo model:
// a run recorded on a GPU in bf16 (as a GPU machine writes run.json) moves
// to this machine's CPU in fp32. The service resolves them as
// `train --resume --device --precision` does, and run.json and the trained
// steps come out exactly as the CLI's do for a twin of the same folder.
// Bad values are refused naming the field; a device or precision this
// machine cannot give is refused before anything launches, in the app's
// words (the CLI's own message for the twin, reworded).
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, ApiMethod, DemoPaths, RunEvent, StartedRun } from '../api/contract.js';
import { loadAddon } from '../engine/load.js';
import { whyUnusable } from '../engine/device.js';
import { cli, readJsonLines, tempDir } from '../testing/e2e-fixtures.js';
import { callOk, callRefused, runEnd, runEventsOf } from '../testing/service-calls.js';
import { inAppWords } from './app-wording.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('service-resume-device-home');

// the run is cancelled on its first step's event, and the cancel must land before its last step: 12 steps of
// ~5-10 ms left the test process some 60 ms for it; 40 leave several times that, for a second more of resuming
const STEPS = 40;
const noGpu = loadAddon().devices().every((d) => whyUnusable(d) !== null);

let service: StudioService;
let demo: DemoPaths;
const events: ApiEvent[] = [];

const ok = <T>(method: ApiMethod, request: unknown) => callOk<T>(service, method, request);
const refused = (method: ApiMethod, request: unknown) => callRefused(service, method, request);
/** The run's events, up to its end event. */
const runEvents = (runId: string) => runEventsOf(events, runId);
const ended = (runId: string) => runEnd(service, events, runId);

const readRecord = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));

/** run.json as a GPU machine writes it for a bf16 run on cuda:0, and stopped there. */
function asGpuRun(dir: string): void {
  const record = readRecord(dir);
  record.config.device = 'cuda:0';
  record.config.precision = 'bf16';
  writeFileSync(join(dir, 'run.json'), JSON.stringify(record, null, 2));
}

/** The CLI's one error line about `flag` in `stderr` (its failed run's message). */
function cliMessage(stderr: string, start: string): string {
  const line = stderr.split('\n').find((l) => l.includes(start));
  if (!line) throw new Error(`no line with '${start}' in: ${stderr}`);
  return line.slice(line.indexOf(start)).trim();
}

let runDir: string;
let twin: string;
let stoppedAt: number;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  service.onEvent((e) => events.push(e));
  demo = await ok<DemoPaths>('demoPaths', {});
  // a run cancelled after its first steps: the cancel saves a checkpoint where it stops
  runDir = join(tempDir('resume-device'), 'run');
  const started = await ok<StartedRun>('startRun', {
    model: demo.model, data: demo.datasets.find((d) => d.name === 'task-train')!.path, method: 'lora', out: runDir,
    hyper: { steps: STEPS, threads: 2, batchSize: 2, evalSplit: 0.1, evalEvery: 4 },
  });
  const off = service.onEvent((e) => {
    if (e.type === 'run' && e.runId === started.runId && e.event.type === 'step' && e.event.step === 1) {
      off();
      void service.call('cancelRun', { runId: started.runId });
    }
  });
  const end = await ended(started.runId);
  expect(end.type, JSON.stringify(end)).toBe('cancelled');
  stoppedAt = (end as Extract<RunEvent, { type: 'cancelled' }>).step;
  expect(stoppedAt).toBeLessThan(STEPS);
  // The end event comes before the worker has let go of the folder: wait for its lock to go
  // (copying meanwhile can list run.lock and then miss it).
  for (const start = Date.now(); existsSync(join(runDir, 'run.lock')) && Date.now() - start < 20_000;) await sleep(20);
  asGpuRun(runDir);
  // the same run, for the CLI to resume
  twin = join(tempDir('resume-device-cli'), 'run');
  cpSync(runDir, twin, { recursive: true });
}, 120_000);
afterAll(() => service.close());

describe('resumeRun: device and precision are checked like the form\'s, naming the field', () => {
  it('a value that is no device or precision, or not a string, or another setting, is invalid and changes nothing', async () => {
    expect(await refused('resumeRun', { runDir, device: 'tpu' })).toEqual({
      code: 'invalid', field: 'device', message: expect.stringMatching(/^device: unknown device 'tpu'; use auto \(/),
    });
    expect(await refused('resumeRun', { runDir, device: 'cuda:x' })).toMatchObject({ code: 'invalid', field: 'device' });
    expect(await refused('resumeRun', { runDir, precision: 'fp16' })).toEqual({
      code: 'invalid', field: 'precision', message: expect.stringMatching(/^precision: unknown precision 'fp16'; use auto \(/),
    });
    expect(await refused('resumeRun', { runDir, device: 0 })).toEqual({ code: 'invalid', field: 'device', message: 'device must be a string, got number' });
    expect(await refused('resumeRun', { runDir, precision: true })).toEqual({ code: 'invalid', field: 'precision', message: 'precision must be a string, got boolean' });
    expect(await refused('resumeRun', { runDir, lr: 0.1 })).toMatchObject({ code: 'invalid', field: 'lr', message: expect.stringContaining('lr is not a resume setting') });
    expect(await refused('resumeRun', { runDir, ignoreMemoryCheck: 'yes' })).toEqual({ code: 'invalid', field: 'ignoreMemoryCheck', message: 'ignoreMemoryCheck must be true or false, got "yes"' });
    expect(await refused('resumeRun', { runDir, gradientCheckpointing: 1 })).toMatchObject({ code: 'invalid', field: 'gradientCheckpointing' });
    expect(await refused('resumeRun', { device: 'cpu' })).toEqual({ code: 'invalid', field: 'runDir', message: 'runDir is required' });
    const record = readRecord(runDir);
    expect(record.status).toBe('cancelled');
    expect(record.config).toMatchObject({ device: 'cuda:0', precision: 'bf16' });
    expect(record.resumes).toEqual([]);
  });

  it('a precision run.json cannot have written is an error on precision, naming the file', async () => {
    const damaged = join(tempDir('resume-device-damaged'), 'run');
    cpSync(runDir, damaged, { recursive: true });
    const record = readRecord(damaged);
    record.config.precision = 'fp16';
    writeFileSync(join(damaged, 'run.json'), JSON.stringify(record));
    expect(await refused('resumeRun', { runDir: damaged, device: 'cpu' })).toEqual({
      code: 'invalid', field: 'precision', message: expect.stringContaining(`${damaged}/run.json: config.precision 'fp16' is not a precision`),
    });
  });
});

describe.skipIf(!noGpu)('resumeRun where the recorded GPU is not there (a machine without one)', () => {
  it('as recorded (cuda:0, bf16): refused on device before launch, the CLI\'s message in the app\'s words', async () => {
    const e = await refused('resumeRun', { runDir });
    expect(e.code).toBe('invalid');
    expect(e.field).toBe('device');
    expect(e.message).toMatch(/^device cuda:0: no NVIDIA GPU can be used: /);
    expect(e.message).toContain('This run computed in bf16 (its run.json says so); to continue it on the CPU, choose cpu as the device in the Resume options (it computes in fp32)');
    expect(e.message).not.toMatch(/--device|--precision/);
    // the CLI refuses the twin with its own words; in the app's words they are the service's
    const r = await cli(['train', '--resume', twin]);
    expect(r.code).not.toBe(0);
    expect(e.message).toBe(inAppWords(cliMessage(r.stderr, '--device cuda:0: '), 'resume'));
    expect(events.some((ev) => ev.type === 'run' && ev.runDir === runDir && ev.event.type === 'started' && ev.event.resumedFrom !== null)).toBe(false);
  }, 60_000);

  it('device cpu alone: refused on precision (bf16 on the CPU), saying to choose fp32 or auto there', async () => {
    const e = await refused('resumeRun', { runDir, device: 'cpu' });
    expect(e).toMatchObject({ code: 'invalid', field: 'precision' });
    expect(e.message).toMatch(/^precision bf16: the CPU computes in fp32 only; .* Choose fp32 or auto as the precision in the Resume options, or a GPU that has them\. /);
    expect(e.message).not.toMatch(/--device|--precision/);
    const r = await cli(['train', '--resume', twin, '--device', 'cpu']);
    expect(r.code).not.toBe(0);
    expect(e.message).toBe(inAppWords(cliMessage(r.stderr, '--precision bf16: '), 'resume'));
    expect(readRecord(runDir).status).toBe('cancelled');
  }, 60_000);
});

describe('resumeRun on the CPU in fp32: what the CLI does for the same run', () => {
  it('finishes from the checkpoint; run.json records cpu / fp32 with the reasons, as `train --resume --device cpu --precision fp32` does', async () => {
    // with gradient checkpointing and the memory check waived, as the Resume options can ask (the CLI's flags on the twin)
    const resumed = await ok<StartedRun>('resumeRun', { runDir, device: 'cpu', precision: 'fp32', gradientCheckpointing: true, ignoreMemoryCheck: true });
    expect(resumed.runDir).toBe(runDir);
    const end = await ended(resumed.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    expect(runEvents(resumed.runId)[0]).toMatchObject({ type: 'started', startStep: stoppedAt, resumedFrom: stoppedAt });

    const record = readRecord(runDir);
    expect(record.status).toBe('finished');
    expect(record.steps_done).toBe(STEPS);
    expect(record.config).toMatchObject({ device: 'cpu', precision: 'fp32', gradientCheckpointing: true, ignoreMemoryCheck: true });
    expect(record.resolved).toMatchObject({ device: 'CPU: device cpu was asked for', precision: 'fp32: asked for (exact)', gpu: null });
    expect(record.resumes).toEqual([{ at: expect.any(String), from_step: stoppedAt }]);

    // the CLI on the twin
    const r = await cli(['train', '--resume', twin, '--device', 'cpu', '--precision', 'fp32', '--gradient-checkpointing', '--ignore-memory-check']);
    expect(r.code, r.stderr).toBe(0);
    const cliRecord = readRecord(twin);
    expect({ ...record.config, out: null }).toEqual({ ...cliRecord.config, out: null });
    const { memory_estimate_bytes: _a, ...resolved } = record.resolved;
    const { memory_estimate_bytes: _b, ...cliResolved } = cliRecord.resolved;
    expect(resolved).toEqual(cliResolved);
    expect(record.resumes.map((x: { from_step: number }) => x.from_step)).toEqual(cliRecord.resumes.map((x: { from_step: number }) => x.from_step));
    expect([record.status, record.steps_done, record.total_steps]).toEqual([cliRecord.status, cliRecord.steps_done, cliRecord.total_steps]);
    // the same checkpoint, the same threads: the same steps, bit for bit (checkpointing recomputes the same values)
    const losses = (dir: string) => readJsonLines(join(dir, 'metrics.jsonl')).filter((row) => 'loss' in row).map((row) => [row.step, row.loss, row.grad_norm]);
    expect(losses(runDir).map(([step]) => step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(losses(runDir)).toEqual(losses(twin));
    expect(readFileSync(join(runDir, 'adapter_model.safetensors')).equals(readFileSync(join(twin, 'adapter_model.safetensors')))).toBe(true);
  }, 120_000);
});
