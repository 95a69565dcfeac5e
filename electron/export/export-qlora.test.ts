// `export --format merged` (and gguf-model, the merged model as one GGUF) of a real QLoRA run. The reference is the model
// the user trained: the adapter on the 4-bit NF4 base (verify.ts). The merged
// model, dequant(W4) + s·B·A stored in the original dtype, must score as
// that reference within the merge tolerance of its dtype, while the same
// adapter on the 16-bit base is a different model (the NF4 quantization
// error), which the check must not be compared with. --gguf-base is the one
// export of a QLoRA adapter onto the 16-bit base (GGUF has no NF4): its check
// compares base.gguf + adapter.gguf with exactly that, and says so.
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { LOSS_TOLERANCE } from './verify.js';

const THREADS = ['--threads', '2'];

async function evalLoss(args: string[]): Promise<number> {
  const r = await cli(['eval', ...args, '--batch-size', '4', ...THREADS]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).loss;
}

describe('export of a QLoRA run', () => {
  it('merged, peft and gguf-model pass their checks against the adapter on the 4-bit base, as trained', { timeout: 300_000 }, async () => {
    const model = await tinyModel({ seed: 5, hidden: 256, intermediate: 512 });
    const dir = tempDir('export-qlora');
    const data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(16, 24));
    const run = join(dir, 'run');
    const trained = await cli(['train', '--model', model.dir, '--data', data, '--out', run, '--method', 'qlora', '--targets', 'all-linear',
      '--rank', '8', '--lr', '1e-2', '--steps', '6', '--batch-size', '4', '--eval-split', '0', '--save-every', '3', ...THREADS]);
    expect(trained.code, trained.stderr).toBe(0);

    const rows = writeJsonl(join(dir, 'rows.jsonl'), cycleRows(8, 24).slice(0, 8));
    const out = join(dir, 'exports');
    const r = await cli(['export', run, '--format', 'merged,peft,gguf-model', '--out', out, '--check-data', rows, ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.check.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    expect(summary.check.checks.map((c: { format: string; passed: boolean }) => [c.format, c.passed])).toEqual([['merged', true], ['peft', true], ['gguf-model', true]]);
    expect(r.stderr).toContain('source adapter on its 4-bit NF4 base (blocksize 64, double quantization), as trained: loss');

    // The reference, computed independently through `eval` (which rebuilds the run's 4-bit base from run.json) ...
    const on4bit = await evalLoss(['--model', model.dir, '--adapter', run, '--data', rows]);
    expect(Math.abs(summary.check.sourceLoss - on4bit) / on4bit).toBeLessThan(1e-6);
    const merged = await evalLoss(['--model', join(out, 'merged'), '--data', rows]);
    expect(Math.abs(merged - on4bit) / on4bit).toBeLessThan(LOSS_TOLERANCE.merged.F32);
    // the GGUF of the merged model (f16, the converter's default for an F32 model) against the same reference
    expect(summary.gguf_model.type).toBe('f16');
    expect(Math.abs(summary.check.checks[2].loss - on4bit) / on4bit).toBeLessThan(LOSS_TOLERANCE['gguf-model'].f16);
    // The same adapter on the fp32 base (copied without its run.json): off by the NF4 quantization
    // error, far beyond the F32 merge tolerance: the reference the check used before, which failed every QLoRA export.
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) copyFileSync(join(run, f), join(bare, f));
    const onFp32 = await evalLoss(['--model', model.dir, '--adapter', bare, '--data', rows]);
    expect(Math.abs(merged - onFp32) / onFp32).toBeGreaterThan(LOSS_TOLERANCE.merged.F32);
    if (process.env.PS_PRINT_FIGURES) console.log({ sourceLoss: summary.check.sourceLoss, on4bit, onFp32, merged, stderr: r.stderr });
    // A checkpoint of the run has no run.json of its own: merge finds the run's and merges into the 4-bit base too.
    const fromCheckpoint = await cli(['merge', '--model', model.dir, '--adapter', join(run, 'checkpoints', 'step-3'), '--out', join(dir, 'ckpt-merged'), ...THREADS]);
    expect(fromCheckpoint.code, fromCheckpoint.stderr).toBe(0);
    expect(fromCheckpoint.stderr).toContain('note: QLoRA adapter (NF4, blocksize 64, double quantization)');
    // the PEFT copy scored on the 4-bit base is the same computation
    expect(summary.check.checks[1].loss).toBe(summary.check.sourceLoss);

    // --gguf-base: base.gguf is the 16-bit base; the pair is checked against the adapter on it (onFp32, from eval), the 4-bit gap reported
    const withBase = join(dir, 'gguf-base');
    const g = await cli(['export', run, '--format', 'gguf', '--gguf-base', '--out', withBase, '--check-data', rows, ...THREADS]);
    expect(g.code, g.stderr).toBe(0);
    expect(readdirSync(withBase).sort()).toEqual(['Modelfile', 'adapter.gguf', 'base.gguf']);
    const gs = JSON.parse(g.stdout);
    expect(gs.check.checks.map((c: { format: string; passed: boolean }) => [c.format, c.passed])).toEqual([['gguf', true], ['gguf-base', true]]);
    const [adapterCheck, baseCheck] = gs.check.checks;
    expect(adapterCheck.sourceLoss).toBe(gs.check.sourceLoss);
    expect(Math.abs(adapterCheck.sourceLoss - on4bit) / on4bit).toBeLessThan(1e-6);
    expect(Math.abs(baseCheck.sourceLoss - onFp32) / onFp32).toBeLessThan(1e-6);
    expect(gs.gguf_base.type).toBe('f16'); // gguf-model's auto for an F32 model
    expect(baseCheck.tolerance).toBe(LOSS_TOLERANCE['gguf-model'].f16);
    expect(Math.abs(baseCheck.loss - onFp32) / onFp32).toBeLessThan(LOSS_TOLERANCE['gguf-model'].f16);
    const gap = (Math.abs(onFp32 - on4bit) / on4bit).toExponential(2);
    expect(gs.gguf_base.qloraNote).toContain(`QLoRA: the adapter was trained on the 4-bit NF4 base; base.gguf holds the 16-bit base (GGUF has no NF4)`);
    expect(gs.gguf_base.qloraNote).toContain(`(relative difference ${gap})`);
    expect(g.stderr).toContain(gs.gguf_base.qloraNote);
    expect(g.stderr).toMatch(/check gguf-base: loss \d+\.\d{6} vs reference \d+\.\d{6} .* ok/);
    expect(readFileSync(join(withBase, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/base\.gguf$/m);
    if (process.env.PS_PRINT_FIGURES) console.log({ qloraGgufBase: { on4bit, onFp32, baseGguf: baseCheck.loss, relativeToFp32: baseCheck.relativeDifference, gap } });
  });
});
