// Settings a run accepts but that look like a slip: one warning line each in
// the run's log, and none for ordinary settings.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { trainConfigFromSettings } from './settings.js';
import { runWarnings, targetShape } from './warnings.js';
import type { ModelSpec } from '../engine/native.js';

// hidden 64, 4 heads of 16, 2 kv heads (kv dim 32), intermediate 128
const spec = { hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 } as ModelSpec;
const config = (s: Parameters<typeof trainConfigFromSettings>[0]) => trainConfigFromSettings({ model: 'm', data: 'd.jsonl', out: 'o', threads: 2, ...s });

describe('runWarnings', () => {
  it('says nothing about ordinary settings', () => {
    expect(runWarnings(config({ rank: 32, warmupSteps: 9, evalSplit: 0.1, evalEvery: 5 }), spec, 10, 2)).toEqual([]);
    // --steps 0 writes the initial adapter: warmup has nothing to warm
    expect(runWarnings(config({ warmupSteps: 5, steps: 0 }), spec, 0, 2)).toEqual([]);
  });

  it('warns about --eval-every without --eval-split, warmup past the end, a rank above the smallest dimension, too many threads', () => {
    expect(runWarnings(config({ evalEvery: 10 }), spec, 100, 2)).toEqual([
      '--eval-every 10 has no effect without --eval-split: no rows are held out to evaluate on; add --eval-split (e.g. 0.1), or drop --eval-every']);
    expect(runWarnings(config({ warmupSteps: 100, lr: 0.001 }), spec, 2, 2)).toEqual([
      "--warmup-steps 100 is not below the run's 2 steps: the learning rate rises for the whole run and never reaches --lr 0.001; use fewer warmup steps"]);
    expect(runWarnings(config({ warmupSteps: 10 }), spec, 10, 2)).toHaveLength(1);
    // q_proj 64 x 64, v_proj 32 x 64 (the default targets): the smallest dimension is v_proj's 32
    expect(runWarnings(config({ rank: 33 }), spec, 10, 2)).toEqual([
      '--rank 33 is larger than the smallest dimension of the adapted layers (v_proj is 32 x 64): an update there cannot have a rank above 32, ' +
      'so the extra rank only costs memory and time; use --rank 32 or less']);
    expect(runWarnings(config({ rank: 64, targets: ['q_proj', 'o_proj', 'down_proj'] }), spec, 10, 2)).toEqual([]);
    expect(runWarnings(config({ rank: 65, targets: ['down_proj'] }), spec, 10, 2)[0]).toMatch(/^--rank 65 .*\(down_proj is 64 x 128\).* --rank 64 or less$/);
    expect(runWarnings(config({ threads: 1000 }), spec, 10, 2)).toEqual([
      "--threads 1000 is more than this machine's 2 hardware threads: the extra threads wait on each other and make every step slower; use --threads 2 or fewer"]);
  });

  it('knows each target weight as PyTorch stores it, [out, in]', () => {
    expect(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'].map((t) => targetShape(spec, t as never)))
      .toEqual([[64, 64], [32, 64], [32, 64], [64, 64], [128, 64], [128, 64], [64, 128]]);
  });
});

describe('train prints the warnings', () => {
  it('one "warning:" line each on stderr, and the run still runs', async () => {
    const model = await tinyModel({ seed: 51 });
    const dir = tempDir('warn');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(4, 8));
    const threads = availableParallelism() + 1;
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--steps', '2', '--eval-every', '1',
      '--warmup-steps', '100', '--rank', '40', '--threads', String(threads)]);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    expect(warnings.map((w) => w.split(' ')[1])).toEqual(['--eval-every', '--warmup-steps', '--rank', '--threads']);
    expect(warnings[3]).toContain(`--threads ${threads} is more than this machine's ${threads - 1} hardware thread${threads - 1 === 1 ? '' : 's'}`);
  });
});
