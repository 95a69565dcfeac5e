// exportAdapter through the real service on runs of the bundled demo model
// trained here (startRun): a full fine-tuning run (and a checkpoint of it)
// exported as one GGUF model in the requested type (f16 refused
// with the reason when it rounds away the run's small updates); a LoRA run's GGUF adapter
// with base.gguf beside it (ggufBase); the fields ggufType and ggufBase
// refused, naming the field, before any work; a full run's other formats
// refused with the reason.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, ApiMethod, DemoPaths, ExportResult, StartedRun } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { callOk, callRefused, runEnd } from '../testing/service-calls.js';
import { createStudioService, type StudioService } from './service.js';

const home = tempDir('service-export-home');
process.env.PEFT_STUDIO_HOME = home;

let service: StudioService;
let demo: DemoPaths;
const events: ApiEvent[] = [];
const ok = <T>(method: ApiMethod, request: unknown) => callOk<T>(service, method, request);

async function train(method: 'lora' | 'full', hyper: Record<string, unknown> = {}): Promise<string> {
  const started = await ok<StartedRun>('startRun', {
    model: demo.model,
    data: demo.datasets.find((d) => d.name === 'task-train')!.path,
    method,
    hyper: { steps: 2, threads: 2, batchSize: 2, ...hyper },
  });
  const end = await runEnd(service, events, started.runId);
  expect(end.type, JSON.stringify(end)).toBe('finished');
  return started.runDir;
}

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  service.onEvent((e) => events.push(e));
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

describe('exportAdapter of a full fine-tuning run', () => {
  let fullRun: string;
  beforeAll(async () => {
    fullRun = await train('full', { saveEvery: 1 });
  }, 180_000);

  it('writes model.gguf in the requested type, read back and checked, with its log lines', async () => {
    const out = join(tempDir('service-export'), 'full-q8');
    const result = await ok<ExportResult>('exportAdapter', { source: fullRun, formats: ['gguf-model'], out, ggufType: 'q8_0' });
    expect(result.source).toMatchObject({ kind: 'full-run', dir: fullRun, modelDir: fullRun, checkpointStep: null });
    expect(result.ggufModel).toMatchObject({ type: 'q8_0', architecture: 'llama' });
    expect(result.check.checks).toEqual([expect.objectContaining({ format: 'gguf-model', passed: true, tolerance: 3e-3 })]);
    expect(result.check.rowsFrom).toBe('run data');
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'model.gguf']);
    // read independently: MOSTLY_Q8_0, and the run's weights, not the demo's (the run trained them)
    const parsed = await hfGguf(join(out, 'model.gguf'), { allowLocalFile: true, typedMetadata: true });
    expect(parsed.typedMetadata['general.file_type'].value).toBe(7);
    expect(parsed.typedMetadata['general.name'].value).toBe(fullRun.split(/[\\/]/).pop());
    const lines = events.filter((e): e is Extract<ApiEvent, { type: 'exportLog' }> => e.type === 'exportLog' && e.out === out).map((e) => e.line);
    expect(lines.some((l) => l.startsWith('source model (full fine-tuning run): loss'))).toBe(true);
    expect(lines.some((l) => /^check gguf-model: .* ok$/.test(l))).toBe(true);

    // Without ggufType: a full run's default, f32, keeps the trained weights exactly.
    const autoOut = join(tempDir('service-export'), 'full-auto');
    const auto = await ok<ExportResult>('exportAdapter', { source: fullRun, formats: ['gguf-model'], out: autoOut });
    expect(auto.ggufModel?.type).toBe('f32');
    expect(auto.check.checks).toEqual([expect.objectContaining({ format: 'gguf-model', passed: true, tolerance: 1e-6 })]);

    // f16 asked for: two steps at the default lr 1e-5 move the demo's F16 weights by less than f16's step:
    // rounded back, the file would lose part of the training (measured: loss 12.965 against the run's 12.904
    // and the demo's 13.118 on these rows), so the check refuses it, says why and names the type that keeps them.
    const f16Out = join(tempDir('service-export'), 'full-f16');
    const f16 = await callRefused(service, 'exportAdapter', { source: fullRun, formats: ['gguf-model'], out: f16Out, ggufType: 'f16' });
    expect(f16.message).toMatch(/^the gguf-model export failed its reload check: it scores loss [\d.]+ where the source model scores [\d.]+ \(relative difference [\d.e+-]+ > tolerance 0\.001\); nothing was written\. f16 rounds every weight of the fine-tuned model \(to 11 significant bits\).* Export it with the GGUF type f32/);
    expect(f16.message).not.toContain('--gguf-type');
    expect(existsSync(f16Out)).toBe(false);
  }, 120_000);

  it('a checkpoint of the run is exported as its own model', async () => {
    const checkpoint = join(fullRun, 'checkpoints', 'step-1');
    expect(existsSync(checkpoint)).toBe(true);
    const out = join(tempDir('service-export'), 'ckpt');
    const result = await ok<ExportResult>('exportAdapter', { source: checkpoint, formats: ['gguf-model'], out, ggufType: 'f32' });
    expect(result.source).toMatchObject({ kind: 'full-run', runDir: fullRun, checkpointStep: 1 });
    expect(result.check.checks[0]).toMatchObject({ passed: true, relativeDifference: 0 });
  }, 120_000);

  it('refuses the adapter formats, saying why and what to use instead; nothing written', async () => {
    const out = join(tempDir('service-export'), 'full-merged');
    const error = await callRefused(service, 'exportAdapter', { source: fullRun, formats: ['gguf-model', 'merged'], out });
    expect(error.code).toBe('failed');
    expect(error.message).toMatch(/is a full fine-tuning run; it has no adapter to export as merged\. Its folder already is a Hugging Face model/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('exportAdapter of a LoRA run', () => {
  let loraRun: string;
  beforeAll(async () => {
    loraRun = await train('lora');
  }, 180_000);

  it('ggufBase writes base.gguf beside adapter.gguf in ggufType, and checks the pair', async () => {
    const out = join(tempDir('service-export'), 'gguf-base');
    const result = await ok<ExportResult>('exportAdapter', { source: loraRun, formats: ['gguf'], out, ggufType: 'f16', ggufBase: true });
    expect(result.outputs[0].files).toEqual(['adapter.gguf', 'base.gguf', 'Modelfile']);
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'adapter.gguf', 'base.gguf']);
    expect(result.ggufBase).toMatchObject({ type: 'f16', qloraNote: null });
    expect(result.check.checks.map((c) => [c.format, c.passed])).toEqual([['gguf', true], ['gguf-base', true]]);
    expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/base\.gguf$/m);
    const parsed = await hfGguf(join(out, 'base.gguf'), { allowLocalFile: true, typedMetadata: true });
    expect(parsed.typedMetadata['general.file_type'].value).toBe(1);
  }, 120_000);

  it('refuses a bad ggufType or ggufBase as an invalid field, before any work', async () => {
    const out = join(tempDir('service-export'), 'refused');
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ formats: ['gguf-model'], ggufType: 'q4_0' }, 'ggufType', /^ggufType must be one of f32, f16, bf16, q8_0; got 'q4_0'$/],
      [{ formats: ['gguf-model'], ggufType: 8 }, 'ggufType', /^ggufType must be a string, got number$/],
      [{ formats: ['gguf', 'gguf-model'], ggufType: 'q8_0' }, 'ggufType', /^ggufType q8_0: the GGUF adapter \(format gguf\) is written as f32 or f16 only/],
      [{ formats: ['peft'], ggufType: 'f16' }, 'ggufType', /^ggufType is the tensor type of a GGUF export/],
      [{ formats: ['gguf-model'], ggufBase: true }, 'ggufBase', /^ggufBase writes base\.gguf beside the GGUF adapter: it needs the format gguf$/],
      [{ formats: ['gguf'], ggufBase: 'yes' }, 'ggufBase', /^ggufBase must be true or false, got "yes"$/],
    ];
    for (const [fields, field, message] of cases) {
      const error = await callRefused(service, 'exportAdapter', { source: loraRun, out, ...fields });
      expect(error, JSON.stringify(fields)).toMatchObject({ code: 'invalid', field });
      expect(error.message).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
  });
});
