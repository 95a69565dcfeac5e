// Runs through the service on the real bundled demo model and task data:
// startRun (events forwarded, the adapter written), runHistory against
// metrics.jsonl, listRuns, pause / continue / cancel by run id, resumeRun to
// the end, the memory refusal, exportAdapter (PEFT files, log events) and
// generate (base vs adapter; the same seed gives the same text; greedy
// equals the engine's own generate on the same session).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, ApiMethod, DemoPaths, ExportResult, GenerateResponse, RunCheck, RunEvent, RunHistory, RunIndexEntry, StartedRun } from '../api/contract.js';
import { generate } from '../inference/generate.js';
import { openSession, stopTokenIds } from '../session.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { manyRowsFile } from '../testing/many-rows.js';
import { callOk, runEnd, runEventsOf } from '../testing/service-calls.js';
import { createStudioService, type StudioService } from './service.js';

const home = tempDir('service-runs-home');
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
const events: ApiEvent[] = [];
let finishedRun: string;

const ok = <T>(method: ApiMethod, request: unknown) => callOk<T>(service, method, request);
/** The run's events, up to its end event. */
const runEvents = (runId: string) => runEventsOf(events, runId);
const ended = (runId: string) => runEnd(service, events, runId);

const settings = (hyper: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  model: demo.model,
  data: demo.datasets.find((d) => d.name === 'task-train')!.path,
  method: 'lora',
  hyper: { threads: 2, batchSize: 2, ...hyper },
  ...extra,
});

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  service.onEvent((e) => events.push(e));
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

describe('a run end to end', () => {
  it('startRun: 3 steps into a new folder under the studio home, every event forwarded, the adapter written', async () => {
    const started = await ok<StartedRun>('startRun', settings({ steps: 3, evalSplit: 0.25, evalEvery: 1 }));
    expect(started.runDir).toMatch(new RegExp(`^${join(home, 'runs')}/\\d{8}-\\d{6}-lora(-\\d+)?$`));
    const end = await ended(started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const seen = runEvents(started.runId);
    expect(seen[0].type).toBe('started');
    expect(seen.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step)).toEqual([1, 2, 3]);
    expect(events.filter((e) => e.type === 'run' && e.runId === started.runId).every((e) => (e as { runDir: string }).runDir === started.runDir)).toBe(true);
    expect(existsSync(join(started.runDir, 'adapter_config.json'))).toBe(true);
    expect(existsSync(join(started.runDir, 'adapter_model.safetensors'))).toBe(true);
    finishedRun = started.runDir;
  });

  it('runHistory: the step rows of metrics.jsonl; listRuns lists the run as finished', async () => {
    const h = await ok<RunHistory>('runHistory', { runDir: finishedRun });
    const rows = readFileSync(join(finishedRun, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => 'loss' in r);
    expect(h.steps).toEqual(rows.map((r) => ({ step: r.step, loss: r.loss, lr: r.lr, gradNorm: r.grad_norm, tokensPerSecond: r.tokens_per_s, inputTokensPerSecond: r.input_tokens_per_s, elapsedSeconds: r.elapsed_s })));
    expect(h.steps).toHaveLength(3);
    expect(h.steps.every((s) => s.elapsedSeconds !== null && s.elapsedSeconds > 0)).toBe(true);
    const record = JSON.parse(readFileSync(join(finishedRun, 'run.json'), 'utf8'));
    expect(h.trainableParams).toBe(record.resolved.trainable_parameters);
    expect(h.trainableParams).toBeGreaterThan(0);
    const evalRows = readFileSync(join(finishedRun, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => 'eval_loss' in r);
    expect(evalRows.length).toBeGreaterThanOrEqual(3);
    expect(h.evals).toEqual(evalRows.map((r) => ({ step: r.step, evalLoss: r.eval_loss })));
    expect(h.runId).toBeNull(); // no longer live
    expect(h.entry.status).toBe('finished');
    expect(h.config.lora!.rank).toBe(8);
    const runs = await ok<RunIndexEntry[]>('listRuns', {});
    expect(runs.find((r) => r.dir === finishedRun)?.status).toBe('finished');
  });

  it('time spent paused is not training time: elapsed_s and the summary leave the pause out', async () => {
    const PAUSE_MS = 2500;
    let runId = '';
    let pausedAt = 0;
    let pausedFor = 0;
    const off = service.onEvent((e) => {
      if (e.type !== 'run' || e.runId !== runId) return;
      if (e.event.type === 'paused') {
        pausedAt = performance.now();
        setTimeout(() => void service.call('continueRun', { runId }), PAUSE_MS);
      } else if (e.event.type === 'resumed') {
        pausedFor = (performance.now() - pausedAt) / 1000;
      }
    });
    const started = await ok<StartedRun>('startRun', settings({ steps: 4 }));
    runId = started.runId;
    // asked at once, so the pause surely comes before a step (the worker has the request long before its first
    // step boundary); asked on step 1's event, it raced the 4-step run: the run could end before it arrived
    void service.call('pauseRun', { runId });
    const end = await ended(runId);
    off();
    expect(end.type, JSON.stringify(end)).toBe('finished');
    expect(runEvents(runId).find((e) => e.type === 'paused')).toEqual({ type: 'paused', step: 0 });
    expect(pausedFor).toBeGreaterThanOrEqual(PAUSE_MS / 1000 - 0.05);
    const rows = readFileSync(join(started.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => 'loss' in r);
    // every step's clock and the summary's left the pause out (the trainer takes the wait in beforeStep off its
    // clock the same way before any step: waitStart in training/trainer.ts)
    const wall = (end as Extract<RunEvent, { type: 'finished' }>).summary.elapsed_s;
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    for (const r of rows) expect(r.elapsed_s).toBeLessThan(pausedFor);
    expect(wall).toBeLessThan(pausedFor);
    expect(wall).toBeCloseTo(rows[rows.length - 1].elapsed_s, 1);
  });

  it('pause, continue and cancel by run id; resumeRun continues the cancelled run to its end', async () => {
    const out = join(tempDir('service-run'), 'run');
    const started = await ok<StartedRun>('startRun', settings({ steps: 30 }, { out }));
    expect(started.runDir).toBe(out);
    let paused = false;
    const off = service.onEvent((e) => {
      if (e.type !== 'run' || e.runId !== started.runId) return;
      if (e.event.type === 'step' && e.event.step === 1 && !paused) {
        paused = true;
        void service.call('pauseRun', { runId: started.runId });
      } else if (e.event.type === 'paused') {
        void service.call('continueRun', { runId: started.runId });
      } else if (e.event.type === 'resumed') {
        void service.call('cancelRun', { runId: started.runId });
      }
    });
    const end = await ended(started.runId);
    off();
    expect(end.type, JSON.stringify(end)).toBe('cancelled');
    expect(end).toMatchObject({ reason: 'user', message: expect.stringMatching(/^cancelled after step/) });
    const types = runEvents(started.runId).map((e) => e.type);
    // the speed of the whole pass: prompts are read but not trained (answers only), so more tokens are read than trained
    const stepEvents = runEvents(started.runId).filter((e) => e.type === 'step') as Extract<RunEvent, { type: 'step' }>[];
    expect(stepEvents.length).toBeGreaterThan(0);
    for (const e of stepEvents) {
      expect(e.inputTokens).toBeGreaterThan(e.tokens);
      expect(e.inputTokensPerSecond / e.tokensPerSecond).toBeCloseTo(e.inputTokens / e.tokens, 6);
    }
    expect(types).toContain('paused');
    expect(types).toContain('resumed');
    const stoppedAt = (end as { step: number }).step;
    expect(stoppedAt).toBeLessThan(30);
    expect((await service.call('cancelRun', { runId: started.runId })).ok).toBe(false); // it ended

    const resumed = await ok<StartedRun>('resumeRun', { runDir: out });
    expect(resumed.runDir).toBe(out);
    const end2 = await ended(resumed.runId);
    expect(end2.type, JSON.stringify(end2)).toBe('finished');
    const first = runEvents(resumed.runId)[0] as { type: string; startStep: number };
    expect(first).toMatchObject({ type: 'started', startStep: stoppedAt });
    const h = await ok<RunHistory>('runHistory', { runDir: out });
    expect(h.steps.map((s) => s.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const again = await service.call('resumeRun', { runDir: out });
    expect(again.ok).toBe(false);
    expect(!again.ok && again.error.message).toContain('already finished');
  });

  it('a QLoRA run trains on the 4-bit base, and generate with its adapter rebuilds that base and says so', async () => {
    const started = await ok<StartedRun>('startRun', settings({ steps: 2 }, { method: 'qlora' }));
    const end = await ended(started.runId);
    expect(end.type, JSON.stringify(end)).toBe('finished');
    const run = JSON.parse(readFileSync(join(started.runDir, 'run.json'), 'utf8')) as { config: { method: string; quantization: unknown } };
    expect(run.config).toMatchObject({ method: 'qlora', quantization: { type: 'nf4', blocksize: 64, doubleQuant: true } });
    const g = await ok<GenerateResponse>('generate', { model: demo.model, adapter: started.runDir, prompt: 'Question: Where does the fox live?\nAnswer:', maxNewTokens: 4, temperature: 0, seed: 1 });
    expect(g.notices.join(' ')).toContain('4-bit NF4 base');
  });

  it('a run that does not fit is refused before anything starts', async () => {
    // 30,000 rows of 256 tokens (a batch holds no more rows than the data has): within one step's limit, far over any RAM
    const huge = { ...settings({ steps: 1, batchSize: 30_000 }), data: await manyRowsFile(799) };
    const check = await ok<RunCheck>('checkRun', huge);
    expect(check.ok).toBe(false);
    expect(check.memory!.fits).toBe(false);
    expect(check.memory!.totalBytes).toBeGreaterThan(check.memory!.availableBytes);
    expect(check.verdict).toMatch(/^Does not fit (in RAM|on .+): needs about [\d.]+ [GT]iB, [\d.]+ GiB available\. These fit: batch size \d+, gradient accumulation \d+ /);
    const r = await service.call('startRun', huge);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatchObject({ code: 'failed' });
  });
});

describe('close', () => {
  it('cancels a live run with a checkpoint and waits for it; the run stays resumable', async () => {
    const other = createStudioService({ mode: 'browser', allowedRoots: null });
    const seen: RunEvent[] = [];
    other.onEvent((e) => e.type === 'run' && seen.push(e.event));
    const out = join(tempDir('service-close'), 'run');
    const started = await other.call('startRun', settings({ steps: 500 }, { out }));
    expect(started.ok).toBe(true);
    await new Promise<void>((resolve) => {
      const off = other.onEvent((e) => {
        if (e.type === 'run' && e.event.type === 'step') {
          off();
          resolve();
        }
      });
    });
    await other.close();
    const end = seen.at(-1)!;
    expect(end.type).toBe('cancelled');
    expect((end as { checkpoint: string | null }).checkpoint).not.toBeNull();
    // the app stopped it, not the user: the event, the record and the index say so
    expect(end).toMatchObject({ reason: 'shutdown', message: expect.stringMatching(/^stopped by a shutdown \(PEFT Studio closing, or SIGTERM\) after step \d+ of 500; continue with peft-studio train --resume /) });
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { status: string; stopped_by: string };
    expect(record.status).toBe('cancelled');
    expect(record.stopped_by).toBe('shutdown');
  });
});

describe('export and try', () => {
  it('exportAdapter peft writes the adapter files and pushes its log lines', async () => {
    const out = join(tempDir('service-export'), 'peft');
    const result = await ok<ExportResult>('exportAdapter', { source: finishedRun, formats: ['peft'], out });
    expect(result.out).toBe(out);
    expect(existsSync(join(out, 'adapter_config.json'))).toBe(true);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).peft_type).toBe('LORA');
    expect(result.check.checks.every((c) => c.passed)).toBe(true);
    const lines = events.filter((e) => e.type === 'exportLog' && e.out === out);
    expect(lines.some((e) => (e as { line: string }).line.startsWith('check peft:'))).toBe(true);
    const again = await service.call('exportAdapter', { source: finishedRun, formats: ['peft'], out });
    expect(!again.ok && again.error.message).toContain('not empty');
  });

  it('generate: base and adapter answer; the same seed gives the same text; greedy is the engine\'s own generate', async () => {
    const prompt = 'Question: What color is the fox?\nAnswer:';
    const req = { model: demo.model, prompt, maxNewTokens: 8, temperature: 0.9, seed: 7 };
    const base1 = await ok<GenerateResponse>('generate', { ...req, adapter: null });
    const base2 = await ok<GenerateResponse>('generate', { ...req, adapter: null });
    const tuned1 = await ok<GenerateResponse>('generate', { ...req, adapter: finishedRun });
    const tuned2 = await ok<GenerateResponse>('generate', { ...req, adapter: finishedRun });
    expect(base1.tokens).toBeGreaterThan(0);
    expect(base1.text).toBe(base2.text);
    expect(tuned1.text).toBe(tuned2.text);
    expect(tuned1.text.length).toBeGreaterThan(0);

    const greedy = await ok<GenerateResponse>('generate', { ...req, temperature: 0, adapter: finishedRun });
    const session = await openSession(demo.model, { threads: 2, adapter: finishedRun });
    try {
      const ids = session.tokenizer.encode(prompt);
      const r = await generate(session.engine, ids, { maxNewTokens: 8, temperature: 0, topP: 1, seed: 1, stopTokenIds: await stopTokenIds(session.folder, session.tokenizer), maxPositions: 256 });
      expect(greedy.text).toBe(session.tokenizer.decode(r.tokens, { skipSpecialTokens: true }));
      expect(greedy.stoppedBy).toBe(r.stoppedBy);
    } finally {
      session.dispose();
    }
  });
});
