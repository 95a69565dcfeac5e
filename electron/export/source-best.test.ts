// A run's best/ (train --keep-best) as an export source: the run's base model
// and data come with it, as with a checkpoint; a full run's best/ is its best
// model, exported as the GGUF model only. Real runs on the bundled demo model.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from '../testing/e2e-fixtures.js';
import { exportSourceName, resolveExportSource } from './source.js';

const DEMO = resolve('resources/demo');
const MODEL = join(DEMO, 'model');
const DATA = join(DEMO, 'task-train.jsonl');
const RUN = ['--model', MODEL, '--data', DATA, '--eval-data', join(DEMO, 'task-eval.jsonl'), '--steps', '4', '--batch-size', '4', '--eval-every', '2', '--threads', '2', '--keep-best'];

describe('export source: a run\'s best/', () => {
  it('a LoRA run\'s best adapter takes the run\'s base model and data', async () => {
    const out = join(tempDir('source-best-lora'), 'run');
    const r = await cli(['train', ...RUN, '--out', out, '--lr', '5e-3']);
    expect(r.code, r.stderr).toBe(0);
    const step = JSON.parse(readFileSync(join(out, 'best', 'best.json'), 'utf8')).step;
    expect([2, 4]).toContain(step);
    const source = await resolveExportSource(join(out, 'best'));
    expect(source).toMatchObject({ kind: 'adapter', dir: join(out, 'best'), adapterDir: join(out, 'best'), modelDir: MODEL, runData: DATA, peftType: 'LORA' });
    expect(exportSourceName(source)).toBe('run-best');

    // a best/ whose best.json is damaged is only an adapter folder (its base from adapter_config.json)
    writeFileSync(join(out, 'best', 'best.json'), '{');
    const plain = await resolveExportSource(join(out, 'best'));
    expect(plain).toMatchObject({ kind: 'adapter', runData: null });
  });

  it('a full run\'s best model exports as the GGUF model only, named as its best', async () => {
    const out = join(tempDir('source-best-full'), 'run');
    const r = await cli(['train', ...RUN, '--out', out, '--method', 'full', '--lr', '1e-4']);
    expect(r.code, r.stderr).toBe(0);
    const step = JSON.parse(readFileSync(join(out, 'best', 'best.json'), 'utf8')).step;
    const source = await resolveExportSource(join(out, 'best'), null, ['gguf-model']);
    expect(source).toMatchObject({ kind: 'full-run', dir: join(out, 'best'), modelDir: join(out, 'best'), runDir: out, checkpointStep: step, best: true, runData: DATA });
    expect(exportSourceName(source)).toBe(`run-best-${step}`);
    await expect(resolveExportSource(join(out, 'best'), null, ['peft'])).rejects.toThrow(`${join(out, 'best')}: is the best model (step ${step}) of the full fine-tuning run ${out}; it has no adapter to export as peft`);
  });
});
