// Packing through the real engine: a packed batch has the loss (sum and
// token count) of the same rows unpacked, and each document in a packed row
// scores as it does alone. A control shows that without segments/positions
// the loss would differ, so the equality is not vacuous.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadAddon } from '../engine/load.js';
import type { NativeEngine } from '../engine/native.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { createEngine } from '../session.js';
import { tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { makeBatch } from '../training/batches.js';
import { IGNORE_INDEX, type Example } from '../training/data.js';
import { loadDataset } from './load-dataset.js';

let engine: NativeEngine;
let plain: Example[];
let packed: Example[];

beforeAll(async () => {
  const model = await tinyModel({ seed: 11 });
  const folder = await openModelFolder(model.dir);
  const tok = await ModelTokenizer.load(model.dir);
  engine = createEngine(loadAddon(), folder, { threads: 2 });
  const rows = Array.from({ length: 9 }, (_, i) => ({ prompt: `Q${i}: how many${' more'.repeat(i % 4)}?`, completion: ` ${i} and${' then'.repeat(i % 3)} done` }));
  const file = writeJsonl(join(tempDir('pack-engine'), 'rows.jsonl'), rows);
  const options = { format: 'auto' as const, seqLen: 128, completionOnly: true, vocabSize: 320 };
  plain = (await loadDataset(file, tok, { ...options, pack: false })).examples;
  packed = (await loadDataset(file, tok, { ...options, pack: true })).examples;
});
afterAll(() => engine?.dispose());

const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.abs(b));

describe('packed batches in the engine', () => {
  it('packs the rows into fewer rows with several documents each', () => {
    expect(packed.length).toBeLessThan(plain.length);
    expect(packed.some((r) => (r.documents?.length ?? 0) >= 3)).toBe(true);
  });

  it('gives the loss sum and token count of the same rows unpacked', async () => {
    const a = await engine.evaluate(makeBatch(plain));
    const b = await engine.evaluate(makeBatch(packed));
    expect(b.tokens).toBe(a.tokens);
    expect(a.tokens).toBeGreaterThan(20);
    close(b.lossSum, a.lossSum);
  });

  it('scores each document in a packed row as it scores alone', async () => {
    const row = packed.find((r) => (r.documents?.length ?? 0) >= 3)!;
    const docs = row.documents!.map((source) => plain.find((e) => e.source === source)!);
    for (let k = 0; k < docs.length; k++) {
      // only document k's labels count in the packed row
      const onlyK = { ...row, labels: row.labels.map((l, t) => (row.segments![t] === k ? l : IGNORE_INDEX)) };
      const inRow = await engine.evaluate(makeBatch([onlyK]));
      const alone = await engine.evaluate(makeBatch([docs[k]]));
      expect(inRow.tokens).toBe(alone.tokens);
      close(inRow.lossSum, alone.lossSum);
    }
  });

  it('control: the same concatenation as one sequence scores differently', async () => {
    const row = packed.find((r) => (r.documents?.length ?? 0) >= 3)!;
    const asOne = { inputIds: row.inputIds, labels: row.labels };
    const separated = await engine.evaluate(makeBatch([row]));
    // Same tokens counted (each document starts with a masked BOS, so no
    // seam is a prediction here), but later documents attend to earlier ones
    // and sit at later positions.
    const joined = await engine.evaluate(makeBatch([asOne]));
    expect(joined.tokens).toBe(separated.tokens);
    expect(Math.abs(joined.lossSum - separated.lossSum)).toBeGreaterThan(1e-3);
  });
});
