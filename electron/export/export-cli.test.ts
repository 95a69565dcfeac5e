// `peft-studio export` end to end: a LoRA trained with the CLI, exported to
// every format from its run folder, each export scored again through other
// commands (eval of the PEFT folder and of the merged model); --gguf-base (the
// base as base.gguf beside the adapter, read independently); a full run and a
// checkpoint of it as GGUF models.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { builtCli, cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

async function evalLoss(args: string[]): Promise<number> {
  const r = await cli(['eval', ...args, '--batch-size', '4', '--threads', '2']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).loss;
}

describe('peft-studio export', () => {
  it('exports a trained run as peft, merged and gguf; each scores as the run\'s adapter', { timeout: 300_000 }, async () => {
    const model = await tinyModel({ seed: 51 });
    const dir = tempDir('export-cli');
    const data = writeJsonl(join(dir, 'train.jsonl'), cycleRows(12, 20));
    const runDir = join(dir, 'run');
    builtCli(); // train runs its worker from dist/
    const trained = await cli(['train', '--model', model.dir, '--data', data, '--out', runDir, '--steps', '8', '--rank', '4', '--alpha', '8',
      '--targets', 'all-linear', '--lr', '0.01', '--seq-len', '32', '--threads', '2']);
    expect(trained.code, trained.stderr).toBe(0);

    const out = join(dir, 'exports');
    const r = await cli(['export', runDir, '--format', 'peft,merged,gguf', '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.base_model).toBe(model.dir);
    expect(summary.check.data).toBe(data);
    expect(summary.check.rowsFrom).toBe('run data'); // no --eval-split: the first rows of the run's data
    expect(summary.check.evalRows).toBe(false);
    expect(summary.check.checks.map((c: { format: string; passed: boolean }) => [c.format, c.passed])).toEqual([['peft', true], ['merged', true], ['gguf', true]]);
    expect(r.stderr).toMatch(/source adapter: loss \d+\.\d{6} on 8 rows, \d+ tokens of /);
    expect(r.stderr).toMatch(/check merged: loss \d+\.\d{6} vs source \d+\.\d{6} \(relative difference .*, tolerance 0\.0001\) ok/);
    expect(r.stderr).toContain(`exported gguf to ${join(out, 'gguf')}`);

    // scored again through `eval`, on all rows: the PEFT export as the run's adapter, the merged model close to it
    const runLoss = await evalLoss(['--model', model.dir, '--adapter', runDir, '--data', data]);
    const baseLoss = await evalLoss(['--model', model.dir, '--data', data]);
    expect(Math.abs(runLoss - baseLoss)).toBeGreaterThan(1e-2); // the adapter learned something
    expect(await evalLoss(['--model', model.dir, '--adapter', join(out, 'peft'), '--data', data])).toBe(runLoss);
    expect(Math.abs(await evalLoss(['--model', join(out, 'merged'), '--data', data]) - runLoss) / runLoss).toBeLessThan(1e-4);
    expect(readFileSync(join(out, 'gguf', 'Modelfile'), 'utf8')).toContain(`FROM ${model.dir}\nADAPTER ./adapter.gguf\n`);

    // no silent overwrite, then --overwrite with a single format
    const again = await cli(['export', runDir, '--format', 'gguf', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^peft-studio: .*exports: the folder already exists and is not empty\. Choose another folder, or pass --overwrite to replace it\./);
    expect(existsSync(join(out, 'merged', 'model.safetensors'))).toBe(true);
    // --gguf-base: the base beside the adapter, in the chosen type; the Modelfile FROM it
    const f16 = await cli(['export', runDir, '--format', 'gguf', '--gguf-type', 'f16', '--gguf-base', '--out', out, '--overwrite', '--threads', '2']);
    expect(f16.code, f16.stderr).toBe(0);
    expect(existsSync(join(out, 'merged'))).toBe(false);
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'adapter.gguf', 'base.gguf']);
    const withBase = JSON.parse(f16.stdout);
    expect(withBase.outputs[0].files).toEqual(['adapter.gguf', 'base.gguf', 'Modelfile']);
    expect(withBase.gguf_base).toMatchObject({ type: 'f16', qloraNote: null });
    // base.gguf + adapter.gguf against the source adapter on its base: f16 for both, tolerance 1e-3
    expect(withBase.check.checks.map((c: { format: string; passed: boolean; tolerance: number }) => [c.format, c.passed, c.tolerance])).toEqual([['gguf', true, 1e-3], ['gguf-base', true, 1e-3]]);
    expect(withBase.check.checks[1].sourceLoss).toBe(withBase.check.sourceLoss);
    expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/base\.gguf\nADAPTER \.\/adapter\.gguf\n$/m);
    // read by an independent GGUF reader: a whole model (general.type model, file type MOSTLY_F16) of the base's tensors
    const base = await hfGguf(join(out, 'base.gguf'), { allowLocalFile: true, typedMetadata: true });
    expect(base.typedMetadata['general.file_type'].value).toBe(1);
    expect(base.typedMetadata['general.architecture']?.value).toBe('llama');
    const attnQ = base.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight');
    expect(attnQ?.shape.map(Number)).toEqual([model.spec.hiddenSize, model.spec.numHeads * model.spec.headDim]);
    expect(attnQ?.dtype).toBe(1); // GGML F16
    expect(withBase.gguf_base.fileBytes).toBe(readFileSync(join(out, 'base.gguf')).length);
    const noGguf = await cli(['export', runDir, '--format', 'peft', '--gguf-base', '--out', join(dir, 'no-gguf')]);
    expect(noGguf.code).toBe(1);
    expect(noGguf.stderr).toContain('--gguf-base writes base.gguf beside the GGUF adapter: it needs --format gguf');
  });

  it('gguf-model: the demo trained with LoRA, then with full fine-tuning, each exported as one GGUF that passes its check', { timeout: 300_000 }, async () => {
    const demo = resolve('resources/demo/model');
    const dir = tempDir('export-cli-gguf-model');
    const data = writeJsonl(join(dir, 'train.jsonl'), cycleRows(12, 20, [300, 301, 302, 303, 304, 305]));
    builtCli(); // train runs its worker from dist/
    const lora = join(dir, 'lora');
    const trained = await cli(['train', '--model', demo, '--data', data, '--out', lora, '--steps', '4', '--rank', '4', '--targets', 'all-linear', '--lr', '0.01', '--seq-len', '32', '--threads', '2']);
    expect(trained.code, trained.stderr).toBe(0);
    const out = join(dir, 'lora-gguf');
    const r = await cli(['export', lora, '--format', 'gguf-model', '--gguf-type', 'q8_0', '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.gguf_model).toMatchObject({ type: 'q8_0', architecture: 'llama', pre: 'gpt-2' });
    expect(summary.check.checks.map((c: { format: string; passed: boolean }) => [c.format, c.passed])).toEqual([['gguf-model', true]]);
    expect(r.stderr).toMatch(/check gguf-model: loss \d+\.\d{6} vs source \d+\.\d{6} \(relative difference .*, tolerance 0\.003\) ok/);
    expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/model\.gguf$/m);

    // the adapter format keeps f32 / f16
    const badType = await cli(['export', lora, '--format', 'gguf', '--gguf-type', 'q8_0', '--out', join(dir, 'bad'), '--threads', '2']);
    expect(badType.code).toBe(1);
    expect(badType.stderr).toContain('--gguf-type q8_0: the GGUF adapter (format gguf) is written as f32 or f16 only');

    const full = join(dir, 'full');
    const fullTrained = await cli(['train', '--model', demo, '--data', data, '--out', full, '--method', 'full', '--steps', '2', '--save-every', '1', '--lr', '0.001', '--seq-len', '32', '--threads', '2']);
    expect(fullTrained.code, fullTrained.stderr).toBe(0);
    const f = await cli(['export', full, '--format', 'gguf-model', '--gguf-type', 'f32', '--out', join(dir, 'full-gguf'), '--threads', '2']);
    expect(f.code, f.stderr).toBe(0);
    const fullSummary = JSON.parse(f.stdout);
    expect(fullSummary.gguf_model.type).toBe('f32');
    expect(fullSummary.check.checks[0]).toMatchObject({ format: 'gguf-model', passed: true });
    expect(fullSummary.check.checks[0].relativeDifference).toBeLessThanOrEqual(1e-6);
    expect(f.stderr).toMatch(/source model \(full fine-tuning run\): loss/);

    // a checkpoint of the run: its own weights (step 1 scores otherwise than the final model), the run's rows
    const c = await cli(['export', join(full, 'checkpoints', 'step-1'), '--format', 'gguf-model', '--gguf-type', 'f32', '--out', join(dir, 'ckpt-gguf'), '--threads', '2']);
    expect(c.code, c.stderr).toBe(0);
    const ckpt = JSON.parse(c.stdout);
    expect(ckpt.check.rowsFrom).toBe('run data');
    expect(ckpt.check.data).toBe(data);
    expect(ckpt.check.checks[0]).toMatchObject({ format: 'gguf-model', passed: true });
    expect(ckpt.check.checks[0].relativeDifference).toBeLessThanOrEqual(1e-6);
    expect(ckpt.check.sourceLoss).not.toBe(fullSummary.check.sourceLoss);
    expect(c.stderr).toMatch(/source model \(full fine-tuning run, checkpoint step 1\): loss/);
  });

  it('usage errors exit 2; a folder that is no adapter exits 1 with a clear line', async () => {
    const model = await tinyModel({ seed: 52 });
    const dir = tempDir('export-cli');
    const noFormat = await cli(['export', model.dir, '--out', join(dir, 'a')]);
    expect(noFormat.code).toBe(2);
    expect(noFormat.stderr).toContain('export needs --format');
    const badFormat = await cli(['export', model.dir, '--format', 'onnx', '--out', join(dir, 'a')]);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain('--format must be one of peft, merged, gguf');
    const notAdapter = await cli(['export', model.dir, '--format', 'gguf', '--out', join(dir, 'a')]);
    expect(notAdapter.code).toBe(1);
    expect(notAdapter.stderr).toMatch(/^peft-studio: .*model: is neither a training run folder \(no run\.json\) nor a PEFT adapter folder/);
    expect(existsSync(join(dir, 'a'))).toBe(false);
  });
});
