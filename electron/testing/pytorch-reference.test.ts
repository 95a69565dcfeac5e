// Our engine against PyTorch + transformers + peft, on tiny models of every
// supported architecture. The PyTorch numbers were computed by
// scripts/reference/pytorch_check.py (torch, transformers and peft versions
// are recorded in the JSON) from the very model folders this test rebuilds
// (their weight hashes are checked) and these adapter files:
//   fixtures/pytorch/ours-<case>/   written by our exporter, loaded by PEFT unchanged
//   fixtures/pytorch/peft-<case>/   written by PEFT's save_pretrained, imported here
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadAddon } from '../engine/load.js';
import type { Batch, NativeEngine } from '../engine/native.js';
import { mergeAdapter } from '../export/merge.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { attachAdapter, createEngine } from '../session.js';
import { PYTORCH_BATCH, PYTORCH_CASES, PYTORCH_PROMPT } from './pytorch-cases.js';
import { writeTinyModel } from './tiny-model.js';
import { maxAbs, maxAbsDiff } from './compare.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'pytorch');

interface CaseReference {
  base_loss: number;
  base_prompt_logits: number[];
  adapter_loss: number;
  grads: Record<string, number[]>;
  adapter_prompt_logits: number[];
  peft_saved_loss: number;
  peft_saved_merged_loss: number;
}

function batchOf(): Batch {
  const B = PYTORCH_BATCH.inputIds.length;
  const T = PYTORCH_BATCH.inputIds[0].length;
  const segments = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      segments[b * T + t] = PYTORCH_BATCH.attentionMask[b][t] ? 0 : -1;
      positions[b * T + t] = t;
    }
  }
  return {
    batchSize: B,
    seqLen: T,
    inputIds: Int32Array.from(PYTORCH_BATCH.inputIds.flat()),
    labels: Int32Array.from(PYTORCH_BATCH.labels.flat()),
    segments,
    positions,
  };
}

async function lastLogits(engine: NativeEngine): Promise<Float32Array> {
  engine.resetCache(PYTORCH_PROMPT.length);
  return engine.decode(Int32Array.from(PYTORCH_PROMPT));
}

async function meanLoss(engine: NativeEngine): Promise<number> {
  const r = await engine.evaluate(batchOf());
  return r.lossSum / r.tokens;
}

const reference = JSON.parse(await readFile(join(fixtures, 'pytorch-reference.json'), 'utf8')) as {
  torch: string;
  transformers: string;
  peft: string;
  cases: Record<string, CaseReference>;
};
const prepared = JSON.parse(await readFile(join(fixtures, 'cases.json'), 'utf8')) as {
  cases: { name: string; weightsSha256: string }[];
};

describe(`against PyTorch ${reference.torch}, transformers ${reference.transformers}, peft ${reference.peft}`, () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'peft-studio-pytorch-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const c of PYTORCH_CASES) {
    describe(c.name, () => {
      const ref = reference.cases[c.name];
      let folder: ModelFolder;

      beforeAll(async () => {
        const tiny = await writeTinyModel(join(root, c.name), c.model);
        const hash = createHash('sha256');
        for (const f of tiny.weightFiles) hash.update(await readFile(join(tiny.dir, f)));
        // The same bytes PyTorch loaded: otherwise the numbers below mean nothing.
        expect(hash.digest('hex')).toBe(prepared.cases.find((p) => p.name === c.name)?.weightsSha256);
        folder = await openModelFolder(tiny.dir);
      });

      it('base model: loss and last-token logits', async () => {
        const engine = createEngine(loadAddon(), folder, { threads: 2 });
        try {
          expect(await meanLoss(engine)).toBeCloseTo(ref.base_loss, 5);
          const logits = await lastLogits(engine);
          expect(maxAbsDiff(logits, ref.base_prompt_logits)).toBeLessThan(1e-4 * Math.max(1, maxAbs(ref.base_prompt_logits)));
        } finally {
          engine.dispose();
        }
      });

      it('our exported adapter: loss, LoRA gradients and logits equal PEFT on it', async () => {
        const engine = createEngine(loadAddon(), folder, { threads: 2 });
        try {
          await attachAdapter(engine, folder, join(fixtures, `ours-${c.name}`), 0);
          const batch = batchOf();
          const count = await engine.evaluate(batch);
          const r = await engine.forwardBackward(batch, 1 / count.tokens);
          expect(r.lossSum / r.tokens).toBeCloseTo(ref.adapter_loss, 5);
          const names = Object.keys(ref.grads);
          const ours = engine.parameters().filter((p) => p.trainable).map((p) => p.name);
          expect([...ours].sort()).toEqual([...names].sort());
          for (const name of names) {
            const want = ref.grads[name];
            const got = engine.getGradient(name);
            // fp32 on both sides, different summation orders: relative to the tensor's scale.
            expect(maxAbsDiff(got, want), name).toBeLessThan(2e-4 * maxAbs(want) + 1e-7);
          }
          const logits = await lastLogits(engine);
          expect(maxAbsDiff(logits, ref.adapter_prompt_logits)).toBeLessThan(1e-4 * Math.max(1, maxAbs(ref.adapter_prompt_logits)));
        } finally {
          engine.dispose();
        }
      });

      it("PEFT's own saved adapter imports with PEFT's loss", async () => {
        const engine = createEngine(loadAddon(), folder, { threads: 2 });
        try {
          await attachAdapter(engine, folder, join(fixtures, `peft-${c.name}`), 0);
          expect(await meanLoss(engine)).toBeCloseTo(ref.peft_saved_loss, 5);
        } finally {
          engine.dispose();
        }
      });

      it("merging PEFT's adapter gives PEFT's merge_and_unload loss", async () => {
        const out = join(root, `${c.name}-merged`);
        await mergeAdapter(folder.dir, join(fixtures, `peft-${c.name}`), out, { addon: loadAddon(), threads: 2 });
        const merged = await openModelFolder(out);
        const engine = createEngine(loadAddon(), merged, { threads: 2 });
        try {
          // PyTorch keeps the merged weights in fp32; we store them in the base's
          // dtype, so a BF16 base rounds them once more.
          const digits = folder.storedDType === 'F32' ? 5 : 2;
          expect(await meanLoss(engine)).toBeCloseTo(ref.peft_saved_merged_loss, digits);
        } finally {
          engine.dispose();
        }
      });
    });
  }
});
