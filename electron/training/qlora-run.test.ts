// `train --method qlora` end to end: LoRA on the base held in 4-bit NF4,
// through the CLI and the training child. What it must show: the run learns,
// run.json records the 4-bit base so later commands rebuild the same model,
// the adapter evaluates on that 4-bit base to the loss the run reported,
// and the flags that only make sense for qlora are refused elsewhere.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TinyModel } from '../testing/tiny-model.js';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

const THREADS = ['--threads', '2'];

describe('train --method qlora', () => {
  let model: TinyModel;
  let dir: string;
  let data: string;

  beforeAll(async () => {
    // hidden 256: wide enough for LoRA to push the loss well below chance (see train-run.test.ts)
    model = await tinyModel({ seed: 5, hidden: 256, intermediate: 512 });
    dir = tempDir('qlora');
    data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(16, 24));
  });

  it('learns on a 4-bit base, records it, and evaluates the adapter on the same base', async () => {
    const out = join(dir, 'run');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'qlora', '--targets', 'all-linear',
      '--rank', '8', '--lr', '1e-2', '--steps', '30', '--batch-size', '4', '--scheduler', 'constant', '--eval-split', '0.25', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'loss' in m);
    expect(rows).toHaveLength(30);
    expect(rows[0].loss).toBeGreaterThan(Math.log(320) - 0.3);
    expect(rows[29].loss).toBeLessThan(2.0);

    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config.method).toBe('qlora');
    expect(run.config.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    // its README says how to load the base as it was trained on (PEFT loads the adapter on any base it is given)
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain('## Base model in 4 bits (QLoRA)');
    expect(card).toContain('BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)');
    expect(card).not.toContain('blocks of 64; this run used');

    // The run's final eval loss came from the 4-bit engine; `eval --quant nf4`
    // rebuilds that engine from the files, so it must agree to float rounding,
    // while the fp32 base under the same adapter is a different model.
    const summary = JSON.parse(r.stdout);
    const evalData = writeJsonl(join(dir, 'eval.jsonl'), cycleRows(16, 24));
    const on4bit = await cli(['eval', '--model', model.dir, '--data', evalData, '--adapter', out, '--quant', 'nf4', ...THREADS]);
    expect(on4bit.code, on4bit.stderr).toBe(0);
    const l4 = JSON.parse(on4bit.stdout).loss;
    expect(l4).toBeLessThan(2.0);
    // Without --quant the adapter's run.json brings its 4-bit base along, and says so.
    const auto = await cli(['eval', '--model', model.dir, '--data', evalData, '--adapter', out, ...THREADS]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toContain('was trained on a 4-bit NF4 base (run.json: blocksize 64, double quantization); the model is quantized the same way');
    expect(JSON.parse(auto.stdout).loss).toBe(l4);
    // The same adapter copied without its run.json runs on the fp32 base: a different model.
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) copyFileSync(join(out, f), join(bare, f));
    const onFp32 = await cli(['eval', '--model', model.dir, '--data', evalData, '--adapter', bare, ...THREADS]);
    expect(onFp32.code, onFp32.stderr).toBe(0);
    expect(onFp32.stderr).toBe('');
    expect(Math.abs(l4 - JSON.parse(onFp32.stdout).loss)).toBeGreaterThan(1e-4);
    expect(summary.final_eval_loss).toBeGreaterThan(0);

    // merge: the adapter goes into the dequantized 4-bit base (run.json says
    // it was trained on one), saved in the base's dtype; that model alone
    // scores what the 4-bit base + adapter scores.
    const merged = join(dir, 'merged');
    const m = await cli(['merge', '--model', model.dir, '--adapter', out, '--out', merged, ...THREADS]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stderr).toContain('A merge back into 4 bits would be lossy');
    const onMerged = await cli(['eval', '--model', merged, '--data', evalData, ...THREADS]);
    expect(onMerged.code, onMerged.stderr).toBe(0);
    expect(Math.abs(JSON.parse(onMerged.stdout).loss - l4) / l4).toBeLessThan(1e-5);
    const orphan = await cli(['merge', '--model', model.dir, '--adapter', out, '--out', join(dir, 'm2'), '--quant-blocksize', '128']);
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toContain('--quant-blocksize needs --quant nf4');
  });

  it('honours --quant-blocksize and --no-double-quant, and refuses them without qlora', async () => {
    const out = join(dir, 'bs128');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'qlora', '--quant-blocksize', '128',
      '--no-double-quant', '--steps', '2', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config.quantization).toEqual({ type: 'nf4', blocksize: 128, doubleQuant: false });
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain('bnb_4bit_use_double_quant=False');
    expect(card).toContain('BitsAndBytesConfig always quantizes in blocks of 64; this run used 128');

    const wrong = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'x'), '--quant-blocksize', '128', ...THREADS]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--quant-blocksize applies to --method qlora only');
    const odd = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'y'), '--method', 'qlora', '--quant-blocksize', '96', ...THREADS]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toContain('power of two');
  });
});
