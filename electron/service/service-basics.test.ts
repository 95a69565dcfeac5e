// The service against the real bundled demo model and datasets: machine,
// demo paths, inspectModel (the same numbers as the CLI's inspect),
// inspectData / previewRow (as `data inspect`), hyperparameters, checkRun,
// request validation and the browser-mode path policy.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiMethod, ApiResult, DatasetReport, DemoPaths, HyperparameterSpec, ModelOverview, RecentItems, RowPreview, RunCheck } from '../api/contract.js';
import { inspectModel } from '../cli/commands/inspect.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { machineInfo } from '../system/machine.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { PROCESS_BASE_BYTES } from '../training/process-memory.js';
import { createStudioService, type StudioService } from './service.js';


process.env.PEFT_STUDIO_HOME = tempDir('service-home');

let desktop: StudioService;
let demo: DemoPaths;
const taskTrain = () => demo.datasets.find((d) => d.name === 'task-train')!.path;

async function ok<T>(service: StudioService, method: ApiMethod, request: unknown): Promise<T> {
  const result = await service.call(method, request);
  if (!result.ok) throw new Error(`${method} failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}
async function err(service: StudioService, method: string, request: unknown) {
  const result: ApiResult<ApiMethod> = await service.call(method, request);
  expect(result.ok, `${method} should fail`).toBe(false);
  return (result as { ok: false; error: { code: string; field?: string; message: string } }).error;
}

beforeAll(async () => {
  desktop = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await ok<DemoPaths>(desktop, 'demoPaths', {});
});
afterAll(() => desktop.close());

describe('machine and demo', () => {
  it('machine: this machine\'s threads and memory, the CPU engine', async () => {
    const m = await ok<{ cpuThreads: number; totalMemoryBytes: number; availableMemoryBytes: number; gpus: unknown[]; engine: string; mode: string }>(desktop, 'machine', {});
    expect(m.cpuThreads).toBe(machineInfo().cpu_threads);
    expect(m.totalMemoryBytes).toBe(machineInfo().total_memory_bytes);
    expect(m.availableMemoryBytes).toBeGreaterThan(0);
    expect(m.availableMemoryBytes).toBeLessThanOrEqual(m.totalMemoryBytes);
    expect(m.gpus).toEqual([]);
    expect(m.engine).toContain(loadAddon().cpuInfo().kernel);
    expect(m.mode).toBe('browser');
  });

  it('demoPaths: the bundled model and its four datasets', () => {
    expect(readFileSync(join(demo.model, 'config.json'), 'utf8')).toContain('LlamaForCausalLM');
    expect(demo.datasets.map((d) => d.name).sort()).toEqual(['base-sample', 'replay-train', 'task-eval', 'task-train']);
    for (const d of demo.datasets) expect(d.description.length).toBeGreaterThan(20);
  });
});

describe('inspectModel', () => {
  it('the report is the CLI inspect report for the same settings; the advice follows its rows', async () => {
    const o = await ok<ModelOverview>(desktop, 'inspectModel', { model: demo.model, batchSize: 2, rank: 4 });
    const folder = await openModelFolder(demo.model);
    // no seqLen given: train's default, fitted to the model's 256 positions
    const cli = inspectModel(loadAddon(), folder, {
      batch_size: 2, seq_len: 256, rank: 4, targets: ['q_proj', 'v_proj'], virtual_tokens: 20, encoder_hidden_size: null,
      optimizer: 'adamw', gradient_checkpointing: false, quant_blocksize: 64, double_quant: true,
    }, o.report.machine);
    expect(o.report).toEqual(cli);
    expect(o.report.parameters).toBe(folder.parameterCount);
    expect(o.methods.map((m) => m.method)).toEqual(['lora', 'qlora', 'prompt', 'prefix', 'full']);
    for (const m of o.methods) {
      expect(m.memory).toEqual(cli.memory[m.method]);
      expect(m.unavailable).toBeNull(); // a 16-bit folder: every method can train it
    }
    expect(o.recommended).toBe('lora'); // a 4-layer model fits anywhere
    expect(o.recommendation).toMatch(/LoRA fits comfortably/);
  });

  it('remembers the model among the recent ones', async () => {
    const recent = await ok<RecentItems>(desktop, 'recent', {});
    expect(recent.models[0]).toBe(demo.model);
  });
});

describe('inspectData and previewRow', () => {
  it('the report of the bundled task: every row used, completion format', async () => {
    const r = await ok<DatasetReport>(desktop, 'inspectData', { model: demo.model, data: taskTrain() });
    const lines = readFileSync(taskTrain(), 'utf8').trim().split('\n').length;
    expect(r.format).toBe('completion');
    expect(r.rows.total).toBe(lines);
    expect(r.rows.used).toBe(lines);
    expect((await ok<RecentItems>(desktop, 'recent', {})).datasets[0]).toBe(taskTrain());
  });

  it('previewRow: row 1 trains exactly its completion tokens', async () => {
    const p = await ok<RowPreview>(desktop, 'previewRow', { model: demo.model, data: taskTrain(), row: 1 });
    const first = JSON.parse(readFileSync(taskTrain(), 'utf8').split('\n')[0]) as { prompt: string; completion: string };
    expect(p.status).toBe('used');
    const trained = p.tokens.filter((t) => t.trained).map((t) => t.piece).join('');
    // the completion, and the end-of-sequence token after it
    expect(trained.startsWith(first.completion)).toBe(true);
    expect(p.trainedTokens).toBe(p.tokens.filter((t) => t.trained).length);
  });

  it('a malformed dataset fails naming the file and the line', async () => {
    const dir = tempDir('bad-data');
    const file = join(dir, 'bad.jsonl');
    // a completion row, then a line cut short, then an empty completion: nothing usable
    writeFileSync(file, '{"prompt": "Q:", "completion": 5}\n{"prompt": "Q:", "compl\n{"prompt": "Q:", "completion": ""}\n');
    const e = await err(desktop, 'inspectData', { model: demo.model, data: file });
    expect(e.code).toBe('failed');
    expect(e.message).toContain(`${file}: none of its 3 rows can be used`);
    expect(e.message).toMatch(new RegExp(`${file}:2: .*JSON`));
    expect(e.message).toContain(`${file}:3:`);
  });

  it('a seqLen beyond the model\'s positions is invalid, naming seqLen', async () => {
    const e = await err(desktop, 'inspectData', { model: demo.model, data: taskTrain(), seqLen: 4096 });
    expect(e).toMatchObject({ code: 'invalid', field: 'seqLen' });
    expect(e.message).toContain('256');
  });
});

describe('hyperparameters', () => {
  it('lora: train\'s defaults with the model\'s sequence length', async () => {
    const specs = await ok<HyperparameterSpec[]>(desktop, 'hyperparameters', { model: demo.model, method: 'lora' });
    const by = Object.fromEntries(specs.map((s) => [s.key, s]));
    expect(by.lr.default).toBe(2e-4);
    expect(by.rank).toMatchObject({ default: 8, min: 1, group: 'basic' });
    expect(by.seqLen).toMatchObject({ default: 256, max: 256 });
    expect(by.virtualTokens).toBeUndefined();
    for (const s of specs) expect(s.help.length).toBeGreaterThan(10);
  });

  it('prompt: its learning rate and virtual tokens, no LoRA settings; seqLen leaves room for them', async () => {
    const specs = await ok<HyperparameterSpec[]>(desktop, 'hyperparameters', { model: demo.model, method: 'prompt' });
    const by = Object.fromEntries(specs.map((s) => [s.key, s]));
    expect(by.lr.default).toBe(3e-2);
    expect(by.virtualTokens.default).toBe(20);
    expect(by.seqLen.default).toBe(256 - 20);
    expect(by.rank).toBeUndefined();
  });

  it('qlora adds the NF4 settings; full has its own learning rate', async () => {
    const q = await ok<HyperparameterSpec[]>(desktop, 'hyperparameters', { model: demo.model, method: 'qlora' });
    expect(q.find((s) => s.key === 'quantBlocksize')).toMatchObject({ default: 64, min: 32, max: 4096 });
    const full = await ok<HyperparameterSpec[]>(desktop, 'hyperparameters', { model: demo.model, method: 'full' });
    expect(full.find((s) => s.key === 'lr')!.default).toBe(1e-5);
    expect(full.some((s) => s.key === 'rank' || s.key === 'quantBlocksize')).toBe(false);
  });
});

describe('checkRun', () => {
  it('a LoRA run of the demo fits; its config is what train resolves', async () => {
    const c = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 3, rank: 4 } });
    expect(c.errors).toEqual([]);
    expect(c.ok).toBe(true);
    expect(c.config).toMatchObject({ method: 'lora', steps: 3, seqLen: 256, lr: 2e-4, lora: { rank: 4, alpha: 16 } });
    expect(c.memory!.fits).toBe(true);
    // on the CPU the backend's own part is its threads' scratch
    expect(c.memory!.backendLabel).toBe("CPU threads' scratch");
    expect(c.memory!.backendBytes).toBeGreaterThan(0);
    // and the training process's own (Node, the tokenizer, the rows)
    expect(c.memory!.processBytes).toBeGreaterThan(PROCESS_BASE_BYTES);
    expect(c.memory!.totalBytes).toBe(c.memory!.weights + c.memory!.gradients + c.memory!.optimizerState + c.memory!.activations + c.memory!.backendBytes + c.memory!.processBytes);
    expect(c.verdict).toMatch(/^Fits/);
  });

  it('every bad setting comes back as a field error', async () => {
    const c = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { lr: -1, batchSize: 0 } });
    expect(c.ok).toBe(false);
    expect(c.config).toBeNull();
    expect(c.errors.map((e) => e.field).sort()).toEqual(['hyper.batchSize', 'hyper.lr']);
  });

  it('0 steps (the CLI writes an untrained adapter with it) and a batch no step can hold are refused, naming their fields', async () => {
    const zero = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 0 } });
    expect(zero.errors).toEqual([{ field: 'hyper.steps', message: 'Steps must be a whole number of at least 1, got 0' }]);
    const huge = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { batchSize: 1e9 } });
    // with the sequence length the run really has (the demo model's default, 256), known once the model is
    expect(huge.errors).toEqual([{ field: 'hyper.batchSize', message: expect.stringContaining('Batch size 1000000000 x Sequence length 256 = 256000000000 tokens per step, more than one step can hold (16777216)') }]);
    // the limit is the engine's: the largest step the form lets through is estimated, one token more is refused there too
    const largest = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { batchSize: 65536, seqLen: 256 } });
    expect(largest.errors).toEqual([]);
    expect(largest.memory!.activations).toBeGreaterThan(65536 * 1000);
    expect((await err(desktop, 'inspectModel', { model: demo.model, batchSize: 65537, seqLen: 256 })).message).toContain('= 16777472 tokens per step');
    const estimate = await err(desktop, 'inspectModel', { model: demo.model, batchSize: 1e9 });
    expect(estimate.message).toContain('lower the batch size or the sequence length');
  });

  it('a setting of another method, and a seqLen the model cannot hold, name their fields', async () => {
    const wrong = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'prompt', hyper: { rank: 4 } });
    expect(wrong.errors).toEqual([{ field: 'hyper.rank', message: 'LoRA rank applies to the method lora and qlora only' }]);
    const long = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'prompt', hyper: { seqLen: 250 } });
    expect(long.errors[0].field).toBe('hyper.seqLen');
    expect(long.errors[0].message).toContain('minus the 20 virtual tokens');
  });
});

describe('checkRun: methods and folders', () => {
  it('qlora on the demo: a 4-bit NF4 base with the default settings', async () => {
    const c = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'qlora', hyper: { steps: 2 } });
    expect(c.ok).toBe(true);
    expect(c.config!.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    const lora = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 2 } });
    expect(c.memory!.weights).toBeLessThan(lora.memory!.weights);
  });

  it('an out folder of other files, or the model folder itself, is refused naming out', async () => {
    const dir = tempDir('not-a-run');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const c = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: dir, hyper: {} });
    expect(c.errors).toHaveLength(1);
    expect(c.errors[0].field).toBe('out');
    expect(c.errors[0].message).toContain('not empty');
    const m = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: demo.model, hyper: {} });
    expect(m.errors[0]).toMatchObject({ field: 'out' });
    expect(m.errors[0].message).toContain('model folder');
  });

  it('a missing data file names data', async () => {
    const c = await ok<RunCheck>(desktop, 'checkRun', { model: demo.model, data: '/nonexistent/d.jsonl', method: 'lora', hyper: {} });
    expect(c.errors).toEqual([{ field: 'data', message: '/nonexistent/d.jsonl: the dataset file does not exist' }]);
  });
});

describe('validation', () => {
  it('an unknown API method, a missing model, a negative lr, an unknown training method: invalid, naming the field', async () => {
    expect(await err(desktop, 'formatDisk', {})).toMatchObject({ code: 'invalid', field: 'method' });
    expect(await err(desktop, 'inspectModel', {})).toMatchObject({ code: 'invalid', field: 'model' });
    expect(await err(desktop, 'startRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { lr: -0.1 } })).toMatchObject({ code: 'invalid', field: 'hyper.lr' });
    expect(await err(desktop, 'startRun', { model: demo.model, data: taskTrain(), method: 'dora', hyper: {} })).toMatchObject({ code: 'invalid', field: 'method' });
    expect(await err(desktop, 'inspectModel', { model: 'relative/model' })).toMatchObject({ code: 'invalid', field: 'model' });
    expect(await err(desktop, 'generate', { model: demo.model, adapter: null, prompt: 'x', maxNewTokens: 0, temperature: 0, seed: 1 })).toMatchObject({ code: 'invalid', field: 'maxNewTokens' });
    expect(await err(desktop, 'generate', { model: demo.model, adapter: null, prompt: 'x', promptFormat: 'markdown', maxNewTokens: 1, temperature: 0, seed: 1 })).toMatchObject({ code: 'invalid', field: 'promptFormat' });
    expect(await err(desktop, 'generate', { model: demo.model, adapter: null, prompt: 'x', system: 3, maxNewTokens: 1, temperature: 0, seed: 1 })).toMatchObject({ code: 'invalid', field: 'system' });
    for (const requestId of ['', 'has space', 'x'.repeat(65), 7]) {
      expect(await err(desktop, 'generate', { model: demo.model, adapter: null, prompt: 'x', maxNewTokens: 1, temperature: 0, seed: 1, requestId })).toMatchObject({ code: 'invalid', field: 'requestId' });
    }
    expect(await err(desktop, 'stopGenerate', {})).toMatchObject({ code: 'invalid', field: 'requestId' });
    expect(await err(desktop, 'inspectModel', 'not an object')).toMatchObject({ code: 'invalid' });
  });

  it('a missing model folder fails with the folder in the message', async () => {
    const e = await err(desktop, 'inspectModel', { model: '/nonexistent/model' });
    expect(e.code).toBe('failed');
    expect(e.message).toContain('/nonexistent/model');
  });
});

describe('browser mode: the path policy', () => {
  const root = tempDir('root');
  const outside = tempDir('outside');
  let browser: StudioService;
  beforeAll(() => {
    mkdirSync(join(root, 'data'));
    writeFileSync(join(outside, 'secret.jsonl'), '{"text": "secret"}\n');
    symlinkSync(outside, join(root, 'link'));
    browser = createStudioService({ mode: 'browser', allowedRoots: [root] });
  });
  afterAll(() => browser.close());

  it('a path outside the roots is forbidden, naming the path and the roots', async () => {
    const e = await err(browser, 'inspectData', { model: demo.model, data: join(outside, 'secret.jsonl') });
    expect(e.code).toBe('forbidden');
    expect(e.field).toBe('data');
    expect(e.message).toContain(join(outside, 'secret.jsonl'));
    expect(e.message).toContain(root);
  });

  it('a symlink inside the root that points outside is refused (realpath)', async () => {
    const e = await err(browser, 'inspectData', { model: demo.model, data: join(root, 'link', 'secret.jsonl') });
    expect(e.code).toBe('forbidden');
    expect((await err(browser, 'listDir', { path: join(root, 'link') })).code).toBe('forbidden');
    // ".." out of the root is normalized first, then refused
    expect((await err(browser, 'listDir', { path: join(root, '..') })).code).toBe('forbidden');
  });

  it('the bundled demo and the studio home are always allowed; a path to be created inside the root is allowed', async () => {
    await ok(browser, 'inspectData', { model: demo.model, data: taskTrain() });
    const c = await ok<RunCheck>(browser, 'checkRun', { model: demo.model, data: taskTrain(), method: 'lora', out: join(root, 'runs', 'new-run'), hyper: { steps: 1 } });
    expect(c.ok).toBe(true);
  });

  it('listDir: starts at the root (no parent), folders first, the link out of the root is not listed', async () => {
    writeFileSync(join(root, 'a.jsonl'), '{}\n');
    writeFileSync(join(root, '.hidden'), '');
    const l = await ok<{ path: string; parent: string | null; entries: { name: string; kind: string }[] }>(browser, 'listDir', { path: null });
    expect(l.path).toBe(root);
    expect(l.parent).toBeNull();
    expect(l.entries.map((e) => e.name)).toEqual(['data', 'a.jsonl']);
  });

  it('pickPath without native dialogs answers {path: null, dialog: false}', async () => {
    expect(await ok(browser, 'pickPath', { kind: 'file', title: 'Dataset' })).toEqual({ path: null, dialog: false });
  });
});
