// fittingAlternatives on the bundled demo model with budgets given as numbers:
// each alternative is held against the addon's own estimate, asked directly
// (addon.estimateMemory, not through estimateRun): the batch found is the
// largest that fits (estimate(b) <= budget < estimate(b + 1)), the sequence
// the longest multiple of 64 (or below 64, the longest), checkpointing's and
// the method's bytes are the changed run's estimate; a run that fits gets
// none; a combination only when no single change fits; nothing fits: said.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MemoryEstimateOptions, NativeAddon } from '../engine/native.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { inAppWords } from '../service/app-wording.js';
import { MANY_ROWS, manyRowsFile } from '../testing/many-rows.js';
import { cli, tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import type { LoraSettings, TrainConfig } from './config.js';
import { fitToLength } from '../data/load-dataset.js';
import { fittingAlternatives, largestFitting, rowShapes } from './fit-alternatives.js';
import { estimateRun, memoryBudget, memoryShortfall, rowsCutInWords } from './memory-check.js';
import { trainingProcessBytes } from './process-memory.js';
import { rowsBytes } from './rows-bytes.js';
import { loadRunData } from './run.js';
import { ModelTokenizer } from '../models/tokenizer.js';

const DEMO = resolve('resources/demo');
const MODEL = join(DEMO, 'model');
const CPU = { device: 'cpu' as const, precision: 'fp32' as const };

const lora: LoraSettings = { rank: 8, alpha: 16, dropout: 0, rslora: false, dora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
const run = (over: Partial<TrainConfig> = {}): TrainConfig =>
  ({ method: 'lora', lora, quantization: null, batchSize: 16, gradAccum: 1, seqLen: 256, gradientCheckpointing: false, optimizer: 'adamw', precision: 'fp32', ...over }) as TrainConfig;

/**
 * The run's estimate for the demo model, the engine's asked directly (LoRA rank 8 on q/v unless `over` says
 * otherwise) plus, on the CPU, the training process's own memory (no rows given: none counted).
 */
function engineBytes(folder: ModelFolder, over: Partial<MemoryEstimateOptions>, rowsHeld = 0): number {
  return trainingProcessBytes(folder.dir, rowsHeld) + loadAddon().estimateMemory(folder.spec, {
    device: 'cpu', precision: 'fp32', method: 'lora', quantization: null, weightDType: 'F16',
    batchSize: 16, seqLen: 256, lora: { rank: 8, targets: ['q_proj', 'v_proj'], layers: null, dropout: 0, dora: false },
    gradientCheckpointing: false, optimizer: 'adamw', ...over,
  }).totalBytes;
}
const NF4 = { type: 'nf4' as const, blocksize: 64, doubleQuant: true };

describe('fittingAlternatives on the demo model', () => {
  it('the smaller batch is the largest that fits, with the accumulation that keeps the effective batch', async () => {
    const folder = await openModelFolder(MODEL);
    expect(folder.storedDType).toBe('F16');
    const at = (b: number) => engineBytes(folder, { batchSize: b });
    expect(at(14)).toBeGreaterThan(at(13));
    // between 13 and 14 rows: 13 fits; 48 rows in 4 steps of accumulation need only 12 a step, so 12 x 4 = 48, not 13 x 4 = 52
    const budget = Math.floor((at(13) + at(14)) / 2);
    const fit = fittingAlternatives(loadAddon(), folder, run({ gradAccum: 3 }), lora, CPU, budget);
    const batch = fit.alternatives.find((a) => a.changes[0] === 'smaller-batch')!;
    expect(batch.form).toEqual({ batchSize: 12, gradAccum: 4 });
    expect(at(13)).toBeLessThanOrEqual(budget);
    expect(at(14)).toBeGreaterThan(budget);
    expect(batch.totalBytes).toBe(at(12));
    expect(batch.flags).toBe('--batch-size 12 --grad-accum 4');
    expect(batch.effectiveBatch).toEqual({ before: 48, after: 48 });
    // 10 fits at most: 48 rows take 5 steps, of 10 rows (50: the nearest above, 2 over, fewer than the 5 steps)
    const ten = fittingAlternatives(loadAddon(), folder, run({ gradAccum: 3 }), lora, CPU, Math.floor((at(10) + at(11)) / 2)).alternatives[0];
    expect(ten.form).toEqual({ batchSize: 10, gradAccum: 5 });
    expect(ten.effectiveBatch).toEqual({ before: 48, after: 50 });
    // 8 divides 16: the effective batch is kept exactly
    const even = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, at(8)).alternatives[0];
    expect(even.form).toEqual({ batchSize: 8, gradAccum: 2 });
    expect(even.effectiveBatch).toEqual({ before: 16, after: 16 });
    expect(memoryShortfall({ ...zeroEstimate, totalBytes: at(16) }, budget, run({ gradAccum: 3 }), fit))
      .toContain(`These fit: --batch-size 12 --grad-accum 4 (${gib(at(12))}); --seq-len `);
  });

  it('the shorter sequence is the longest multiple of 64 that fits, or below 64 the longest', async () => {
    const folder = await openModelFolder(MODEL);
    const at = (s: number) => engineBytes(folder, { batchSize: 16, seqLen: s });
    const budget = Math.floor((at(128) + at(129)) / 2);
    const seq = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, budget).alternatives.find((a) => a.changes[0] === 'shorter-sequence')!;
    expect(seq.form).toEqual({ seqLen: 128 });
    expect(at(128)).toBeLessThanOrEqual(budget);
    expect(at(128 + 64)).toBeGreaterThan(budget);
    expect(seq.totalBytes).toBe(at(128));
    expect(seq.flags).toBe('--seq-len 128');
    // not even 64: the longest below it, to the token
    const small = Math.floor((at(40) + at(41)) / 2);
    expect(at(41)).toBeGreaterThan(at(40));
    const short = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, small).alternatives.find((a) => a.changes[0] === 'shorter-sequence')!;
    expect(short.form).toEqual({ seqLen: 40 });
    expect(short.totalBytes).toBe(at(40));
  });

  it('the shorter sequence says how many rows it cuts, and how many of those it cuts inside the prompt (they would be skipped)', async () => {
    const folder = await openModelFolder(MODEL);
    const at = (s: number) => engineBytes(folder, { batchSize: 16, seqLen: s });
    const budget = Math.floor((at(128) + at(129)) / 2);
    // rows as the loader gives them: labels -100 over the prompt, then the trained answer
    const row = (prompt: number, answer: number) =>
      ({ inputIds: new Int32Array(prompt + answer).fill(5), labels: Int32Array.from([...new Array<number>(prompt).fill(-100), ...new Array<number>(answer).fill(7)]), layout: 'prompt-completion' });
    const rows = rowShapes([
      row(10, 50), //   60 tokens: not cut at 128
      row(100, 100), // 200: cut at 128, the answer's start kept
      row(127, 20), //  147: cut, one trained token left (label 127 is within the first 128)
      row(128, 20), //  148: cut exactly at its prompt's end: nothing left, skipped
      row(200, 40), //  240: cut inside the prompt: skipped
    ]);
    expect(rows.map((r) => r.trainedFrom)).toEqual([10, 100, 127, 128, 200]);
    const seq = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, budget, { rows }).alternatives.find((a) => a.changes[0] === 'shorter-sequence')!;
    expect(seq.form).toEqual({ seqLen: 128 });
    expect(seq.longerRows).toEqual({ longer: 4, of: 5, skipped: 2 });
    // the loader agrees about each row: fitToLength keeps the first three and skips the two
    for (const [i, r] of [row(10, 50), row(100, 100), row(127, 20), row(128, 20), row(200, 40)].entries()) {
      const keeps = (() => { try { fitToLength(r, 128); return true; } catch { return false; } })();
      expect(keeps).toBe(i < 3);
    }
    const fit = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, budget, { rows });
    const message = memoryShortfall(estimateRun(loadAddon(), folder, run(), lora, CPU), budget, run(), fit)!;
    expect(message).toContain('--seq-len 128 (');
    expect(message).toContain('; 4 of 5 rows are longer and would be cut, 2 of them inside the prompt (nothing left to learn: they would be skipped))');
    expect(rowsCutInWords({ longer: 1, of: 9, skipped: 1 })).toBe('; 1 of 9 rows are longer and would be cut, inside its prompt (nothing left to learn: it would be skipped)');
    expect(rowsCutInWords({ longer: 3, of: 9, skipped: 3 })).toBe('; 3 of 9 rows are longer and would be cut, all inside their prompt (nothing left to learn: they would be skipped)');
    expect(rowsCutInWords({ longer: 3, of: 9, skipped: 0 }, '')).toBe('3 of 9 rows are longer and would be cut');
    expect(rowsCutInWords({ longer: 0, of: 9, skipped: 0 })).toBe('');
  });

  it('checkpointing and the lighter method: the estimate of the changed run; all four singles in order', async () => {
    const folder = await openModelFolder(MODEL);
    const current = engineBytes(folder, { batchSize: 4 });
    // one byte short: every single change that saves anything fits
    const fit = fittingAlternatives(loadAddon(), folder, run({ batchSize: 4 }), lora, CPU, current - 1);
    expect(fit.alternatives.map((a) => a.changes)).toEqual([['smaller-batch'], ['shorter-sequence'], ['gradient-checkpointing'], ['qlora']]);
    // 3 rows fit at most: the 4 rows take 2 steps either way, of 2 rows (4, as before) rather than 3 (6)
    expect(fit.alternatives.map((a) => a.flags)).toEqual(['--batch-size 2 --grad-accum 2', '--seq-len 192', '--gradient-checkpointing', '--method qlora']);
    const [, , checkpointing, qlora] = fit.alternatives;
    expect(checkpointing.totalBytes).toBe(engineBytes(folder, { batchSize: 4, gradientCheckpointing: true }));
    expect(qlora.totalBytes).toBe(engineBytes(folder, { batchSize: 4, quantization: NF4 }));
    expect(qlora.form).toEqual({ method: 'qlora' });
    expect(qlora.totalBytes).toBeLessThan(current);
    // full fine-tuning: LoRA with the defaults of --method lora alone (rank 8 on q_proj, v_proj)
    const full = engineBytes(folder, { method: 'full', batchSize: 4, lora: undefined });
    const fromFull = fittingAlternatives(loadAddon(), folder, run({ method: 'full', lora: null, batchSize: 4 }), null, CPU, full - 1);
    const toLora = fromFull.alternatives.find((a) => a.form.method === 'lora')!;
    expect(toLora.flags).toBe('--method lora');
    expect(toLora.totalBytes).toBe(engineBytes(folder, { batchSize: 4 }));
    expect(fromFull.alternatives.some((a) => a.form.method === 'qlora')).toBe(false);
  });

  it('a run that fits gets none; a resumed run may only turn checkpointing on', async () => {
    const folder = await openModelFolder(MODEL);
    const current = engineBytes(folder, {});
    expect(fittingAlternatives(loadAddon(), folder, run(), lora, CPU, current)).toEqual({ alternatives: [], tried: [], leanest: null, resumed: false });
    const resumed = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, current - 1, { resumed: true });
    expect(resumed.alternatives.map((a) => a.flags)).toEqual(['--gradient-checkpointing']);
    expect(resumed.tried).toEqual(['gradient-checkpointing']);
  });

  it('a combination only when no single change fits: checkpointing with the largest batch that then fits', async () => {
    // 16 layers: checkpointing keeps one layer's input per layer instead of everything, so it
    // saves far more than one row weighs; 1024 tokens a row, many rows (even 2 tokens each weigh more than one row of 1024)
    const model = await tinyModel({ seed: 47, layers: 16, maxPosition: 1024 });
    const folder = await openModelFolder(model.dir);
    const base = { seqLen: 1024, batchSize: 4096 };
    const at = (b: number, gc: boolean) => engineBytes(folder, { ...base, weightDType: 'F32', batchSize: b, gradientCheckpointing: gc });
    const budget = at(1, false) - 1;
    // the premise: no single change fits this budget, checkpointing with a few rows does
    expect(engineBytes(folder, { ...base, weightDType: 'F32', seqLen: 2 })).toBeGreaterThan(budget);
    expect(at(4096, true)).toBeGreaterThan(budget);
    expect(engineBytes(folder, { ...base, weightDType: 'F32', quantization: NF4 })).toBeGreaterThan(budget);
    expect(at(3, true)).toBeLessThanOrEqual(budget);
    const fit = fittingAlternatives(loadAddon(), folder, run(base), lora, CPU, budget);
    expect(fit.alternatives).toHaveLength(1);
    const [both] = fit.alternatives;
    expect(both.changes).toEqual(['gradient-checkpointing', 'smaller-batch']);
    // the largest batch that fits with checkpointing, found here by walking up from 1
    let most = 1;
    while (at(most + 1, true) <= budget) most++;
    const accum = Math.ceil(4096 / most);
    const b = Math.ceil(4096 / accum);
    expect(both.form).toEqual({ gradientCheckpointing: true, batchSize: b, gradAccum: accum });
    expect(at(b, true)).toBeLessThanOrEqual(budget);
    expect(b * accum - 4096).toBeLessThan(accum);
    expect(both.flags).toBe(`--gradient-checkpointing --batch-size ${b} --grad-accum ${accum}`);
    expect(memoryShortfall({ ...zeroEstimate, totalBytes: at(4096, false) }, budget, run(base), fit)).toContain('No single change fits; together these do: --gradient-checkpointing --batch-size');
  });

  it('nothing fits: no alternative, the leanest setting tried and its estimate, and the message says so', async () => {
    const folder = await openModelFolder(MODEL);
    const fit = fittingAlternatives(loadAddon(), folder, run(), lora, CPU, 1024);
    expect(fit.alternatives).toEqual([]);
    expect(fit.tried).toEqual(['smaller-batch', 'shorter-sequence', 'gradient-checkpointing', 'qlora']);
    expect(fit.leanest!.flags).toBe('--batch-size 1 --grad-accum 16 --gradient-checkpointing --method qlora');
    const leanestBytes = engineBytes(folder, { batchSize: 1, gradientCheckpointing: true, quantization: NF4 });
    expect(fit.leanest!.totalBytes).toBe(leanestBytes);
    const estimate = { ...zeroEstimate, totalBytes: engineBytes(folder, {}) };
    const inRam = memoryShortfall(estimate, 1024, run(), fit)!;
    expect(inRam).toContain('Nothing tried fits on this device (a smaller --batch-size, a shorter --seq-len, --gradient-checkpointing, --method qlora, alone or together): ' +
      `even --batch-size 1 --grad-accum 16 --gradient-checkpointing --method qlora needs about ${gib(leanestBytes)}; or pass --ignore-memory-check to start anyway.`);
    expect(inRam).not.toContain('--device cpu');
    // on a GPU: the CPU is the way out, in fp32
    const h200 = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * 2 ** 30, freeBytes: 1024, error: '' };
    const onGpu = memoryShortfall(estimate, memoryBudget({ gpu: h200 }), { ...run(), precision: 'bf16' }, fit)!;
    expect(onGpu).toContain(`needs about ${gib(leanestBytes)}; another device: --device cpu --precision fp32; or pass --ignore-memory-check to start anyway.`);
    // the ways out end as the list without a search did, so the app still words them as its Resume options (service/app-wording.ts)
    expect(inAppWords(onGpu, 'resume')).toContain('another device: the CPU (choose cpu as the device in the Resume options); ' +
      'or tick "Resume even if the memory check says it does not fit" in the Resume options.');
  });

  it('asks the estimate about log2 times per search, not once per candidate', async () => {
    const folder = await openModelFolder(MODEL);
    const addon = loadAddon();
    let calls = 0;
    const counted: NativeAddon = Object.assign(Object.create(addon) as NativeAddon, {
      estimateMemory: (...args: Parameters<NativeAddon['estimateMemory']>) => {
        calls++;
        return addon.estimateMemory(...args);
      },
    });
    // 4000 rows: the batch search runs its full length (the budget sits between two batches)
    const config = run({ batchSize: 4000, seqLen: 256 });
    const at = (b: number) => engineBytes(folder, { batchSize: b });
    const fit = fittingAlternatives(counted, folder, config, lora, CPU, Math.floor((at(1234) + at(1235)) / 2));
    // 1234 fits at most: 4000 rows in ceil(4000 / 1234) = 4 steps of 1000
    expect(fit.alternatives[0].form).toEqual({ batchSize: 1000, gradAccum: 4 });
    // base 1; batch 1 + 12; sequence 1 + 2 (multiples of 64) and maybe 1 + 6 (below 64); checkpointing 1; method 1
    expect(calls).toBeLessThanOrEqual(1 + 13 + 3 + 7 + 2);
  });

  it('largestFitting: the largest n that fits, null when none does', () => {
    const seen: number[] = [];
    expect(largestFitting(1, 1000, (n) => (seen.push(n), n <= 777))).toBe(777);
    expect(seen.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(1000)));
    expect(largestFitting(1, 1000, () => false)).toBeNull();
    expect(largestFitting(1, 1000, () => true)).toBe(1000);
    expect(largestFitting(5, 4, () => true)).toBeNull();
  });
});

describe('train prints what would fit', () => {
  it('a run over any RAM: the batch and sequence that fit, with their estimates, before anything is written', async () => {
    const folder = await openModelFolder(MODEL);
    const dir = tempDir('fit-alternatives');
    // 30000 rows of 256 tokens (a batch holds no more rows than the data has): within one step's limit (2^24 tokens), far over any test machine's RAM
    const data = await manyRowsFile(folder.spec.vocabSize);
    const r = await cli(['train', '--model', MODEL, '--data', data, '--out', join(dir, 'out'), '--batch-size', '30000', '--steps', '1', '--device', 'cpu']);
    expect(r.code).not.toBe(0);
    const m = /but only ([\d.]+) GiB is available in RAM\. These fit: --batch-size (\d+) --grad-accum (\d+) \(([\d.]+) GiB(?:; an effective batch of (\d+) instead of 30000)?\); --seq-len (\d+) \(([\d.]+) GiB(?:; (\d+) of (\d+) rows are longer and would be cut)?\)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const [, available, batch, accum, batchGiB, , seqLen, seqGiB, longer, of] = m!;
    // the data's view of the shorter sequence: its rows counted, all of them 256 ids, so all longer than it
    expect(Number(of)).toBe(MANY_ROWS);
    expect(Number(longer)).toBe(MANY_ROWS);
    const b = Number(batch), a = Number(accum);
    // the rows train held (30000 x 256 ids), as a load here has them: its buffers may be laid out another way
    // (a cold load's chunks, a warm one's cache entry), so the figures agree to the printed 0.01 GiB, not the byte
    const config = { ...run({ batchSize: 30000 }), data, evalSplit: 0, seed: 42, dataFormat: 'auto', completionOnly: true, pack: false, evalData: null } as TrainConfig;
    const { train, eval: evalRows } = await loadRunData(config, await ModelTokenizer.load(MODEL), folder);
    const held = rowsBytes([...train, ...evalRows]);
    const near = (printed: string, bytes: number) => expect(Math.abs(Number(printed) - bytes / 2 ** 30)).toBeLessThanOrEqual(0.01);
    // the fewest accumulation steps whose batch fits, that batch as even as it can be
    expect(b).toBe(Math.ceil(30000 / a));
    expect(b * a - 30000).toBeLessThan(a);
    near(batchGiB, engineBytes(folder, { batchSize: b, seqLen: 256 }, held));
    near(seqGiB, engineBytes(folder, { batchSize: 30000, seqLen: Number(seqLen) }, held));
    // from 64 up a multiple of 64
    expect(Number(seqLen) < 64 || Number(seqLen) % 64 === 0).toBe(true);
    // it fitted what was free then, and one accumulation step fewer would not have (printed to 0.01 GiB: give or take that rounding)
    expect(engineBytes(folder, { batchSize: b, seqLen: 256 }, held)).toBeLessThanOrEqual((Number(available) + 0.01) * 2 ** 30);
    expect(engineBytes(folder, { batchSize: Math.ceil(30000 / (a - 1)), seqLen: 256 }, held)).toBeGreaterThan((Number(available) - 0.01) * 2 ** 30);
    expect(r.stderr).toContain('); or pass --ignore-memory-check to start anyway.');
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });
});

const zeroEstimate = { quantizedBytes: 0, quantizedParams: 0, weightBytes: 0, gradientBytes: 0, optimizerBytes: 0, activationBytes: 0, deviceBytes: 0, totalBytes: 0, trainableParams: 0, totalParams: 0 };
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
