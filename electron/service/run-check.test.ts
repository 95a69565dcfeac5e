// checkRun for a run that does not fit: the settings that would, in the
// form's words and values, each held against the engine's estimate (asked
// here directly, for the check's own config) and the budget the check used;
// none for a run that fits or is refused; and the verdict's words when only a
// combination fits or nothing does (budgets given as numbers).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RunCheck } from '../api/contract.js';
import { loadAddon } from '../engine/load.js';
import type { MemoryEstimateOptions } from '../engine/native.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { manyRowsFile } from '../testing/many-rows.js';
import { serviceForTests } from '../testing/service-fixture.js';
import type { LoraSettings, TrainConfig } from '../training/config.js';
import { fittingAlternatives } from '../training/fit-alternatives.js';
import { trainingProcessBytes } from '../training/process-memory.js';
import { rowsBytes } from '../training/rows-bytes.js';
import { loadRunData } from '../training/run.js';
import { fitAdvice, formAlternative } from './run-check.js';

const studio = serviceForTests('service-fit-home');
const { ok, taskTrain } = studio;

/**
 * The run's estimate for the demo model: the engine's, asked directly (LoRA rank 8 on q/v at 256 tokens unless
 * `over` says otherwise), and on the CPU the training process's own memory (training/process-memory.ts).
 */
function engineBytes(folder: ModelFolder, over: Partial<MemoryEstimateOptions>, rowsHeld = 0): number {
  return trainingProcessBytes(folder.dir, rowsHeld) + loadAddon().estimateMemory(folder.spec, {
    device: 'cpu', precision: 'fp32', method: 'lora', quantization: null, weightDType: 'F16',
    batchSize: 1, seqLen: 256, lora: { rank: 8, targets: ['q_proj', 'v_proj'], layers: null, dropout: 0, dora: false },
    gradientCheckpointing: false, optimizer: 'adamw', ...over,
  }).totalBytes;
}

describe('checkRun: what would fit', () => {
  it('a run over any RAM: the largest batch and the longest sequence that fit, as form values and in the verdict', async () => {
    const folder = await openModelFolder(studio.demo.model);
    // 30000 rows of 256 tokens (a batch holds no more rows than the data has): within one step's limit, far over any test machine's RAM
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: await manyRowsFile(799), method: 'lora', hyper: { batchSize: 30000, gradAccum: 2, steps: 1, device: 'cpu' } });
    expect(c.errors).toEqual([]);
    expect(c.ok).toBe(false);
    expect(c.memory!.fits).toBe(false);
    const available = c.memory!.availableBytes;
    // the rows the training process would hold, as loaded here independently (30000 x 256 ids: ~61 MB of tokens)
    const { train, eval: evalRows } = await loadRunData(c.config!, await ModelTokenizer.load(folder.dir), folder);
    expect(rowsBytes([...train, ...evalRows])).toBeGreaterThan(30000 * 256 * 8);
    // the check's own rows, for the exact figures below
    const held = c.memory!.processBytes - trainingProcessBytes(folder.dir);
    // what they hold, as a load here has them: the same within 2% (buffers may be laid out another way: a cold
    // load's chunks, a warm one's cache entry)
    expect(Math.abs(held - rowsBytes([...train, ...evalRows]))).toBeLessThan(held * 0.02);
    // checkpointing halves the activations at most, QLoRA shrinks the (tiny) weights: neither fits on its own
    expect(c.alternatives.map((a) => Object.keys(a.hyper))).toEqual([['batchSize', 'gradAccum'], ['seqLen']]);
    const [batch, seq] = c.alternatives;
    const b = batch.hyper.batchSize!;
    const accum = batch.hyper.gradAccum!;
    expect(engineBytes(folder, { batchSize: b }, held)).toBe(batch.totalBytes);
    expect(batch.totalBytes).toBeLessThanOrEqual(available);
    // 2 x 30000 rows per step kept: the fewest accumulation steps whose batch fits (one fewer needs a batch that does not), the batch as even as it can be
    expect(engineBytes(folder, { batchSize: Math.ceil(60000 / (accum - 1)) }, held)).toBeGreaterThan(available);
    expect(b).toBe(Math.ceil(60000 / accum));
    expect(b * accum - 60000).toBeLessThan(accum);
    expect(batch.label).toBe(`batch size ${b}, gradient accumulation ${accum}`);
    expect(batch.detail).toBe(60000 % b === 0 ? null : `an effective batch of ${b * accum} instead of 60000`);
    expect(batch.method).toBeUndefined();
    const s = seq.hyper.seqLen!;
    expect(seq.totalBytes).toBe(engineBytes(folder, { batchSize: 30000, seqLen: s }, held));
    expect(seq.totalBytes).toBeLessThanOrEqual(available);
    expect(engineBytes(folder, { batchSize: 30000, seqLen: s < 64 ? s + 1 : s + 64 }, held)).toBeGreaterThan(available);
    expect(seq.label).toBe(`sequence length ${s}`);
    expect(c.verdict).toMatch(/^Does not fit in RAM: needs about [\d.]+ GiB, [\d.]+ GiB available\. These fit: batch size \d+, gradient accumulation \d+ \([\d.]+ GiB(; an effective batch of \d+ instead of 60000)?\); sequence length \d+ \([\d.]+ [KMG]iB; 30000 of 30000 rows are longer and would be cut\)\.$/);
    // the data's rows (30000 of 256 ids) are counted against the shorter sequence
    expect(seq.detail).toBe('30000 of 30000 rows are longer and would be cut');
  });

  it('packed rows: a shorter sequence packs the documents again, so it says no count of rows it would cut', async () => {
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: await manyRowsFile(799), method: 'lora', pack: true, hyper: { batchSize: 30000, steps: 1, device: 'cpu' } });
    const seq = c.alternatives.find((a) => a.hyper.seqLen !== undefined)!;
    expect(seq).toBeDefined();
    expect(seq.detail).toBeNull();
    expect(c.verdict).not.toContain('would be cut');
  });

  it('sized by the data: 111 short rows at batch 30000 need what 111 of them need, and fit', async () => {
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { batchSize: 30000, steps: 1, device: 'cpu' } });
    expect(c.memory!.fits).toBe(true);
    expect(c.alternatives).toEqual([]);
    // a batch of all 111 rows (the file's lines), padded to the longest: some length of a short question and answer
    const rows = readFileSync(taskTrain(), 'utf8').trim().split('\n').length;
    const tokenizer = await ModelTokenizer.load(studio.demo.model);
    const texts = readFileSync(taskTrain(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string });
    const around = Math.max(...texts.map((r) => tokenizer.encodeForTraining(r.prompt + r.completion).length));
    const folder = await openModelFolder(studio.demo.model);
    const held = c.memory!.processBytes - trainingProcessBytes(folder.dir); // the rows' bytes (the first test checks them)
    const lengths = [-2, -1, 0, 1, 2].map((d) => around + d).filter((L) => engineBytes(folder, { batchSize: rows, seqLen: L }, held) === c.memory!.totalBytes);
    expect(lengths).toHaveLength(1);
    expect(c.memory!.totalBytes * 100).toBeLessThan(engineBytes(folder, { batchSize: 30000, seqLen: 256 }));
  });

  it('a run that fits, and a refused one, have none', async () => {
    const fits = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1, device: 'cpu' } });
    expect(fits.ok).toBe(true);
    expect(fits.alternatives).toEqual([]);
    const refused = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { batchSize: 0 } });
    expect(refused.config).toBeNull();
    expect(refused.alternatives).toEqual([]);
  });
});

describe('the verdict in the form\'s words', () => {
  const lora: LoraSettings = { rank: 8, alpha: 16, dropout: 0, rslora: false, dora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
  const run = (over: Partial<TrainConfig> = {}): TrainConfig =>
    ({ method: 'lora', lora, quantization: null, batchSize: 16, gradAccum: 1, seqLen: 256, gradientCheckpointing: false, optimizer: 'adamw', precision: 'fp32', ...over }) as TrainConfig;
  const CPU = { device: 'cpu' as const, precision: 'fp32' as const };

  it('checkpointing and QLoRA as buttons: their fields and the method, with the changed run\'s estimate', async () => {
    const folder = await openModelFolder(studio.demo.model);
    const fit = fittingAlternatives(loadAddon(), folder, run({ batchSize: 4 }), lora, CPU, engineBytes(folder, { batchSize: 4 }) - 1);
    const [, , checkpointing, qlora] = fit.alternatives.map(formAlternative);
    expect(checkpointing).toEqual({ label: 'gradient checkpointing', detail: null, hyper: { gradientCheckpointing: true }, totalBytes: engineBytes(folder, { batchSize: 4, gradientCheckpointing: true }) });
    expect(qlora).toEqual({
      label: 'QLoRA on a 4-bit base', detail: null, method: 'qlora', hyper: {},
      totalBytes: engineBytes(folder, { batchSize: 4, quantization: { type: 'nf4', blocksize: 64, doubleQuant: true } }),
    });
    expect(fitAdvice(fit, { gpu: false })).toMatch(/^These fit: batch size 2, gradient accumulation 2 \([\d.]+ MiB\); sequence length 192 \([\d.]+ MiB\); gradient checkpointing \([\d.]+ MiB\); QLoRA on a 4-bit base \([\d.]+ MiB\)\.$/);
  });

  it('nothing fits: says what was tried and what even the leanest needs; on a GPU, the CPU', async () => {
    const folder = await openModelFolder(studio.demo.model);
    const fit = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, 1024);
    const leanest = engineBytes(folder, { batchSize: 1, gradientCheckpointing: true, quantization: { type: 'nf4', blocksize: 64, doubleQuant: true } });
    const words = `Nothing the form can change makes it fit (tried: a smaller batch size, a shorter sequence length, gradient checkpointing, QLoRA on a 4-bit base, alone and together): ` +
      `even batch size 1, gradient accumulation 16 with gradient checkpointing and QLoRA on a 4-bit base needs about ${(leanest / 2 ** 20).toFixed(1)} MiB`;
    expect(fitAdvice(fit, { gpu: false })).toBe(`${words}.`);
    expect(fitAdvice(fit, { gpu: true })).toBe(`${words}; choose the CPU as the Device (advanced settings).`);
  });
});
