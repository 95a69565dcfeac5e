// A step's loss and gradient are divided by the tokens the step trains
// (countBatchTokens). That count must be the engine's own, or the training
// loss is off from the evaluation loss of the same rows: with --pack it
// counted each document's first token, which the engine never predicts (no
// prediction across a seam), so a packed run of text rows reported a loss
// ~3-5% too low and took a gradient as much too small; under prompt tuning it
// left out the row's first token, which the last virtual token does predict.
// Checked here against the engine's count (evaluate().tokens) and its loss.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../engine/load.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { createEngine } from '../session.js';
import { tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { loadDataset } from '../data/load-dataset.js';
import type { Example } from './data.js';
import { countBatchTokens, makeBatch } from './batches.js';
import { train, type TrainerOptions } from './trainer.js';
import type { StepMetrics } from './metrics.js';

const addon = loadAddon();
let folder: ModelFolder;
let text: { plain: Example[]; packed: Example[] };
let completion: { plain: Example[]; packed: Example[] };

async function rowsOf(file: string, tokenizer: ModelTokenizer, pack: boolean): Promise<Example[]> {
  const opts = { format: 'auto' as const, seqLen: 96, completionOnly: true, vocabSize: folder.spec.vocabSize, pack };
  return (await loadDataset(file, tokenizer, opts)).examples;
}

beforeAll(async () => {
  const model = await tinyModel({ seed: 11 });
  folder = await openModelFolder(model.dir);
  const tokenizer = await ModelTokenizer.load(model.dir);
  const dir = tempDir('step-tokens');
  // text rows: every token is trained, the first one too (a document's first label is not -100)
  const textFile = writeJsonl(join(dir, 'text.jsonl'), Array.from({ length: 12 }, (_, i) => ({ text: `row ${i} says${' more'.repeat(i % 4)} words` })));
  const completionFile = writeJsonl(join(dir, 'completion.jsonl'),
    Array.from({ length: 9 }, (_, i) => ({ prompt: `question ${i}${' and'.repeat(i % 3)}`, completion: ` answer ${i * 7}` })));
  text = { plain: await rowsOf(textFile, tokenizer, false), packed: await rowsOf(textFile, tokenizer, true) };
  completion = { plain: await rowsOf(completionFile, tokenizer, false), packed: await rowsOf(completionFile, tokenizer, true) };
});

function options(batchSize: number, virtualTokens = 0): TrainerOptions {
  return {
    optimizer: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clip: 1, scheduler: 'constant',
    warmupSteps: 0, maxSteps: 1, epochs: 1, batchSize, gradAccum: 1, seed: 1, evalEvery: 0, saveEvery: 0, virtualTokens,
  };
}

function loraEngine() {
  const engine = createEngine(addon, folder, { threads: 2 });
  engine.setupLora({ rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false, init: 'default', layers: null, seed: 1, dora: false });
  return engine;
}

/** The step-1 row of a one-step run over all the rows in one micro-batch, and the engine's loss of those rows before it. */
async function oneStep(rows: Example[], setup: () => ReturnType<typeof loraEngine>, virtualTokens = 0) {
  const engine = setup();
  try {
    const before = await engine.evaluate(makeBatch(rows));
    let row: StepMetrics | undefined;
    await train(engine, rows, [], options(rows.length, virtualTokens), { onStep: (r) => { row = r; } });
    return { before, row: row! };
  } finally {
    engine.dispose();
  }
}

describe('the tokens a step divides by', () => {
  it('are the ones the engine counts: unpacked, packed (seams not counted), padded, under prompt tuning', async () => {
    expect(text.packed.length).toBeLessThan(text.plain.length);  // really packed: several documents a row
    // the text rows' first labels are trained: a packed row has seams whose label is not -100
    expect(text.plain.every((r) => r.labels[0] !== -100)).toBe(true);
    const engine = loraEngine();
    const prompted = createEngine(addon, folder, { threads: 2 });
    prompted.setupPromptTuning({ numVirtualTokens: 5, init: new Float32Array(5 * folder.spec.hiddenSize).fill(0.02) });
    try {
      for (const [name, rows] of Object.entries({ ...text, completionPlain: completion.plain, completionPacked: completion.packed })) {
        for (const batch of [makeBatch(rows), makeBatch(rows.slice(0, 3), 120), makeBatch(rows.slice(1, 2))]) {
          const counted = (await engine.evaluate(batch)).tokens;
          expect(countBatchTokens(batch), name).toBe(counted);
          expect(counted).toBeGreaterThan(0);
        }
      }
      for (const rows of [text.plain, completion.plain]) {
        for (const batch of [makeBatch(rows), makeBatch(rows.slice(0, 4), 100)]) {
          expect(countBatchTokens(batch, 5)).toBe((await prompted.evaluate(batch)).tokens);
        }
      }
      // text rows under prompt tuning: one more token a row than without (the first, predicted by the last virtual token)
      const batch = makeBatch(text.plain);
      expect(countBatchTokens(batch, 5)).toBe(countBatchTokens(batch) + text.plain.length);
    } finally {
      engine.dispose();
      prompted.dispose();
    }
  });

  it('make a packed step report the loss of its rows unpacked, the engine\'s mean', async () => {
    for (const set of [text, completion]) {
      const plain = await oneStep(set.plain, loraEngine);
      const packed = await oneStep(set.packed, loraEngine);
      expect(plain.before.tokens).toBe(packed.before.tokens);
      expect(packed.row.tokens).toBe(packed.before.tokens);
      expect(plain.row.tokens).toBe(plain.before.tokens);
      const mean = plain.before.lossSum / plain.before.tokens;
      expect(plain.row.loss).toBeCloseTo(mean, 5);
      // before: 5.445 against 5.702 for these text rows (the seams counted: 222 tokens for 212)
      expect(packed.row.loss).toBeCloseTo(mean, 5);
    }
  });

  it('make a prompt-tuning step report the engine\'s mean of its rows', async () => {
    const prompted = () => {
      const e = createEngine(addon, folder, { threads: 2 });
      e.setupPromptTuning({ numVirtualTokens: 4, init: new Float32Array(4 * folder.spec.hiddenSize).fill(0.02) });
      return e as ReturnType<typeof loraEngine>;
    };
    const { before, row } = await oneStep(text.plain, prompted, 4);
    expect(row.tokens).toBe(before.tokens);
    expect(row.loss).toBeCloseTo(before.lossSum / before.tokens, 5);
  });
});
