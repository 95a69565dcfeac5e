// The reload check always runs and scores the right rows: the built-in sample
// when no data is named or the run's data is gone, a run's eval rows (as
// training split them) when it trained with --eval-split, the first rows of
// its evaluation file when it had one (--eval-data); --check-data takes
// any dataset file train reads; errors writing the target name --out, not the
// temp folder beside it.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, readPeftAdapter, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { exportSpec } from '../cli/commands/export.js';
import { loadAddon } from '../engine/load.js';
import type { ModelSpec } from '../engine/native.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { Prng } from '../random/prng.js';
import type { Example } from '../training/data.js';
import { loadRunData } from '../training/run.js';
import { trainConfigFromSettings } from '../training/settings.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { BUILT_IN_CHECK_TEXTS } from './check-rows.js';
import { exportAdapter, type ExportOptions } from './export.js';
import { lossWithLora } from './verify.js';

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));
const tinyModel = (options: TinyModelOptions) => writeTinyModel(join(tempDir('model'), 'model'), options);
const run = (o: Omit<ExportOptions, 'threads'>) => exportAdapter({ threads: 2, ...o });
const LORA: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'down_proj'], layers: null, init: 'default' };

/** A LoRA with random non-zero A and B, so it changes the loss. */
async function randomAdapter(dir: string, spec: ModelSpec, baseDir: string, seed = 3): Promise<void> {
  const rng = new Prng(seed);
  const tensors = loraTensorShapes(spec, LORA).map(({ name, shape }) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.4),
  }));
  await writePeftAdapter({ dir, spec, lora: LORA, baseModelNameOrPath: baseDir, tensors, keepOtherFiles: true });
}

/** Loss of the adapter in `adapterDir` on `examples`, through the same engine path as the check. */
async function adapterLoss(modelDir: string, adapterDir: string, examples: Example[]) {
  const folder = await openModelFolder(modelDir);
  const adapter = await readPeftAdapter(adapterDir, folder.spec);
  return lossWithLora(loadAddon(), folder, adapter.lora, adapter.tensors, examples, 2);
}

/** Rows of distinct lengths and contents, so any two subsets score differently. */
function writeTextRows(file: string, count: number): string {
  const words = ['red', 'green', 'blue', 'stone', 'river', 'cloud', 'lamp', 'seven', 'paper', 'north'];
  const rows = Array.from({ length: count }, (_, r) => ({ text: Array.from({ length: 3 + (r % 5) }, (_, t) => words[(r * 3 + t * 7) % words.length]).join(' ') }));
  writeFileSync(file, rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
  return file;
}

describe('export reload check rows', () => {
  it('an adapter folder without --check-data is still checked, on the built-in sample tokenized by the model', async () => {
    const model = await tinyModel({ seed: 61 });
    const dir = tempDir('export-check');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const lines: string[] = [];
    const result = await run({ source: join(dir, 'adapter'), formats: ['peft', 'gguf'], out: join(dir, 'out'), log: (l) => lines.push(l) });
    expect(result.check.rowsFrom).toBe('built-in sample');
    expect(result.check.data).toBeNull();
    expect(result.check.checks.map((c) => [c.format, c.passed])).toEqual([['peft', true], ['gguf', true]]);
    expect(lines.some((l) => /skipped/.test(l))).toBe(false);

    // the rows: each text as training tokenizes a text row (BOS ... EOS), every token trained
    const tokenizer = await ModelTokenizer.load(model.dir);
    const ids = BUILT_IN_CHECK_TEXTS.slice(0, 8).map((t) => tokenizer.encodeForTraining(t));
    expect(ids.every((r) => r.length > 8 && r[r.length - 1] === tokenizer.eosId)).toBe(true);
    expect(result.check.rows).toBe(8);
    expect(result.check.tokens).toBe(ids.reduce((n, r) => n + r.length - 1, 0));
    const reference = await adapterLoss(model.dir, join(dir, 'adapter'), ids.map((r, i) => ({ inputIds: Int32Array.from(r), labels: Int32Array.from(r), source: `sample:${i}` })));
    expect(result.check.sourceLoss).toBe(reference.loss);

    // a run whose data file is gone falls back to the sample, and says why
    const runDir = join(dir, 'run');
    const data = writeTextRows(join(dir, 'train.jsonl'), 6);
    await randomAdapter(runDir, model.spec, model.dir);
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, data, method: 'lora', seqLen: 64 } }));
    unlinkSync(data);
    const gone = await run({ source: runDir, formats: ['gguf'], out: join(dir, 'out2'), checkRows: 3 });
    expect(gone.check).toMatchObject({ rowsFrom: 'built-in sample', data: null, rows: 3 });
    expect(gone.check.note).toContain(data);
    expect(gone.check.checks[0].passed).toBe(true);
  });

  it('a model folder without a tokenizer is checked on fixed in-vocabulary token rows', async () => {
    const model = await tinyModel({ seed: 62 });
    rmSync(join(model.dir, 'tokenizer.json'));
    const dir = tempDir('export-check');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const result = await run({ source: join(dir, 'adapter'), formats: ['merged'], out: join(dir, 'out'), checkRows: 2 });
    expect(result.check).toMatchObject({ rowsFrom: 'built-in sample', rows: 2, tokens: 22 });
    expect(result.check.checks[0].passed).toBe(true);
  });

  it("a run with --eval-split is checked on its eval rows, split exactly as training split them", async () => {
    const model = await tinyModel({ seed: 63 });
    const dir = tempDir('export-check');
    const data = writeTextRows(join(dir, 'train.jsonl'), 12);
    const runDir = join(dir, 'run');
    await randomAdapter(runDir, model.spec, model.dir);
    const settings = { data, seqLen: 48, evalSplit: 0.4, seed: 7 };
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, method: 'lora', ...settings } }));
    const result = await run({ source: runDir, formats: ['peft'], out: join(dir, 'out'), checkRows: 3 });
    expect(result.check).toMatchObject({ rowsFrom: 'run data', data, evalRows: true, rows: 3 });

    // training's own loader gives the eval rows (5 of 12); the check scored the first 3 of them
    const folder = await openModelFolder(model.dir);
    const config = trainConfigFromSettings({ model: model.dir, out: runDir, method: 'lora', ...settings });
    const split = await loadRunData(config, await ModelTokenizer.load(model.dir), folder);
    expect(split.eval.length).toBe(5);
    const evalRows = split.eval.slice(0, 3);
    const firstRows = [...split.train, ...split.eval].sort((a, b) => Number(a.source.split(':').pop()) - Number(b.source.split(':').pop())).slice(0, 3);
    expect(evalRows.map((e) => e.source)).not.toEqual(firstRows.map((e) => e.source));
    const onEval = await adapterLoss(model.dir, runDir, evalRows);
    const onFirst = await adapterLoss(model.dir, runDir, firstRows);
    expect(result.check.sourceLoss).toBe(onEval.loss);
    expect(result.check.tokens).toBe(onEval.tokens);
    expect(Math.abs(onFirst.loss - onEval.loss)).toBeGreaterThan(1e-6);

    // without an eval split: the first rows of the data
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, method: 'lora', ...settings, evalSplit: 0 } }));
    const plain = await run({ source: runDir, formats: ['peft'], out: join(dir, 'out2'), checkRows: 3 });
    expect(plain.check).toMatchObject({ rowsFrom: 'run data', evalRows: false });
    expect(plain.check.sourceLoss).toBe(onFirst.loss);
  });

  it('a run with --eval-data is checked on the first rows of its evaluation file, read as training read it', async () => {
    const model = await tinyModel({ seed: 64 });
    const dir = tempDir('export-check');
    const data = writeTextRows(join(dir, 'train.jsonl'), 12);
    // other rows than the training file's first ones: rows 15..20 of the same generator (its rows repeat every 10)
    const evalFile = join(dir, 'valid.jsonl');
    const evalRows = readFileSync(writeTextRows(join(dir, 'all.jsonl'), 21), 'utf8').trim().split('\n').slice(15);
    writeFileSync(evalFile, evalRows.join('\n') + '\n');
    const runDir = join(dir, 'run');
    await randomAdapter(runDir, model.spec, model.dir);
    const settings = { data, evalData: evalFile, seqLen: 48, evalSplit: 0, seed: 7 };
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, method: 'lora', ...settings } }));
    const result = await run({ source: runDir, formats: ['peft'], out: join(dir, 'out'), checkRows: 3 });
    expect(result.check).toMatchObject({ rowsFrom: 'run data', data: evalFile, evalRows: true, rows: 3 });

    // training's own loader gives the eval rows (all 6 of the file); the check scored the first 3
    const config = trainConfigFromSettings({ model: model.dir, out: runDir, method: 'lora', ...settings });
    const loaded = await loadRunData(config, await ModelTokenizer.load(model.dir), await openModelFolder(model.dir));
    expect(loaded.eval.map((e) => e.source)).toEqual(evalRows.map((_, i) => `${evalFile}:${i + 1}`));
    const onEval = await adapterLoss(model.dir, runDir, loaded.eval.slice(0, 3));
    const onData = await adapterLoss(model.dir, runDir, loaded.train.slice(0, 3));
    expect(result.check.sourceLoss).toBe(onEval.loss);
    expect(result.check.tokens).toBe(onEval.tokens);
    expect(Math.abs(onData.loss - onEval.loss)).toBeGreaterThan(1e-6);
  });

  it('--check-data: the help names every dataset container train reads, and a CSV of text rows is used', async () => {
    const flag = exportSpec.flags.find((f) => f.name === 'check-data')!;
    expect(flag.help).not.toMatch(/JSONL rows/);
    for (const ext of ['.jsonl', '.json', '.csv', '.tsv', '.txt']) expect(flag.help, ext).toContain(ext);

    const model = await tinyModel({ seed: 64 });
    const dir = tempDir('export-check');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const csv = join(dir, 'rows.csv');
    writeFileSync(csv, 'text\n"one, two, three"\nfour five six\n');
    const result = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out: join(dir, 'out'), checkData: csv });
    expect(result.check).toMatchObject({ rowsFrom: '--check-data', data: csv, rows: 2 });
    const tokenizer = await ModelTokenizer.load(model.dir);
    expect(result.check.tokens).toBe(tokenizer.encodeForTraining('one, two, three').length - 1 + tokenizer.encodeForTraining('four five six').length - 1);
  });
});

describe('export target errors', () => {
  it('a file-system error writing the target names the --out folder and what to do, not the temp folder beside it', async () => {
    const model = await tinyModel({ seed: 65 });
    const dir = tempDir('export-check');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    // a name the file system takes, but not with the temp suffix (.NAME.PID.HEX.tmp): fails when the temp folder is made
    const out = join(dir, 'x'.repeat(250));
    const message = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out }).then(() => 'no error', (e: Error) => e.message);
    expect(message).toBe(`${out}: cannot write the export folder: the folder name is too long for the file system (ENAMETOOLONG). Choose a shorter --out folder name.`);
    expect(readdirSync(dir).sort()).toEqual(['adapter']);
  });

  it.skipIf(process.getuid?.() === 0)('a parent folder without write permission: the message names --out and the folder to fix', async () => {
    const model = await tinyModel({ seed: 66 });
    const dir = tempDir('export-check');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir);
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    try {
      const out = join(locked, 'out');
      const message = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out }).then(() => 'no error', (e: Error) => e.message);
      expect(message).toMatch(new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot write the export folder: permission denied \\(EACCES\\)`));
      expect(message).toContain(`beside it in ${locked}`);
      expect(message).not.toMatch(/\.tmp/);
      expect(existsSync(out)).toBe(false);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});
