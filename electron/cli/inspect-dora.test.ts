// `inspect --dora`: the lora and qlora rows as DoRA, against what a DoRA run
// really has: the engine's trainable parameters, the adapter file train
// writes, and the extra FLOPs in the tokens/s.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { openModelFolder } from '../models/folder.js';
import type { LoraTarget } from '../engine/native.js';
import { microBatchFlops, stepOverheadFlops, uniformMicroBatch, type FlopSettings } from '../training/step-flops.js';
import { METHOD_EFFICIENCY } from '../training/time-estimate.js';

describe('inspect --dora', () => {
  it('counts the magnitudes in the lora and qlora rows, the file train writes and the slower step', { timeout: 120_000 }, async () => {
    const model = await tinyModel({ seed: 66 });
    const common = [model.dir, '--batch-size', '2', '--seq-len', '32', '--rank', '4', '--targets', 'q_proj,down_proj'];
    const plainRun = await cli(['inspect', ...common]);
    const doraRun = await cli(['inspect', ...common, '--dora']);
    expect(doraRun.code, doraRun.stderr).toBe(0);
    const plain = JSON.parse(plainRun.stdout);
    const dora = JSON.parse(doraRun.stdout);
    expect(dora.settings.dora).toBe(true);
    expect(plain.settings.dora).toBeUndefined();
    // q_proj out 64 and down_proj out 64, in both layers
    for (const row of ['lora', 'qlora']) expect(dora.memory[row].trainable_params - plain.memory[row].trainable_params, row).toBe(2 * (64 + 64));
    for (const row of ['full', 'prompt', 'prefix']) expect(dora.memory[row], row).toEqual(plain.memory[row]);

    // the adapter file a DoRA run with these settings writes
    const dir = tempDir('inspect-dora');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const out = join(dir, 'run');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--dora', '--rank', '4', '--targets', 'q_proj,down_proj', '--steps', '0', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(dora.memory.lora.adapter_bytes).toBe(statSync(join(out, 'adapter_model.safetensors')).size);

    if (dora.fits_in.device === 'cpu') {
      const spec = (await openModelFolder(model.dir)).spec;
      const s: FlopSettings = { method: 'lora', lora: { rank: 4, targets: ['q_proj', 'down_proj'] as LoraTarget[], layers: null, dora: true }, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
      const flops = microBatchFlops(spec, s, uniformMicroBatch(2, 32, 'lora')).total + stepOverheadFlops(spec, s).total;
      expect(dora.time.tokens_per_second.lora).toBeCloseTo(64 / (flops / (dora.time.gemm_gflops * 1e9 * METHOD_EFFICIENCY.lora)), 6);
      expect(dora.time.tokens_per_second.lora).toBeLessThan(plain.time.tokens_per_second.lora);
    }
  });
});
