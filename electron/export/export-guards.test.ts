// merge and export must never replace their own inputs (the --out folder is
// replaced as a whole), must refuse a bad destination before any scoring,
// and must word what they refuse by what it really is.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { Prng } from '../random/prng.js';
import { cli, tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import type { TinyModel } from '../testing/tiny-model.js';
import { exportAdapter } from './export.js';
import { canMakeImmutable } from '../testing/immutable-folder.js';

const LORA: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };

/** A finished-looking LoRA run folder: run.json + a random adapter (non-zero B). */
async function runFolder(dir: string, model: TinyModel, method = 'lora'): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { model: model.dir, method, out: dir } }));
  if (method === 'full') return dir;
  const rng = new Prng(3);
  await writePeftAdapter({
    dir,
    spec: model.spec,
    lora: LORA,
    baseModelNameOrPath: model.dir,
    tensors: loraTensorShapes(model.spec, LORA).map(({ name, shape }) => ({ name, shape, data: Float32Array.from({ length: shape[0] * shape[1] }, () => rng.nextFloat() - 0.5) })),
    keepOtherFiles: true,
  });
  return dir;
}

/** Every file under `dir` with its bytes, to see that nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      out[name] = readFileSync(path).toString('base64');
    } catch {
      out[name] = '<dir>';
    }
  }
  return out;
}

const canChattr = canMakeImmutable;

describe('merge never replaces its inputs', () => {
  it('refuses --out equal to, inside or around the adapter, the run or the model (also through a symlink), with --overwrite', async () => {
    const dir = tempDir('guard-merge');
    const model = await tinyModel({ seed: 81 });
    const anc = join(dir, 'anc');
    const run = await runFolder(join(anc, 'run'), model);
    writeFileSync(join(anc, 'notes.txt'), 'mine');
    symlinkSync(run, join(dir, 'link-to-run'));
    const before = { anc: snapshot(anc), model: snapshot(model.dir) };
    const cases: [string, string, RegExp][] = [
      [run, '--adapter', new RegExp(`^peft-studio: --out ${run}: is the adapter folder ${run}; merge replaces the whole --out folder, so it would delete its own input`)],
      [model.dir, '--model', new RegExp(`--out ${model.dir}: is the model folder ${model.dir};`)],
      [anc, 'parent', new RegExp(`--out ${anc}: contains the adapter folder ${run};`)],
      [join(model.dir, 'merged'), 'inside', new RegExp(`--out ${join(model.dir, 'merged')}: lies inside the model folder ${model.dir};`)],
      [join(run, 'checkpoints', 'merged'), 'inside run', new RegExp(`lies inside the adapter folder ${run};`)],
      [join(dir, 'link-to-run'), 'symlink', new RegExp(`--out ${join(dir, 'link-to-run')}: is the adapter folder ${run} \\(through a symbolic link`)],
    ];
    for (const [out, label, expected] of cases) {
      const r = await cli(['merge', '--model', model.dir, '--adapter', run, '--out', out, '--overwrite', '--threads', '2']);
      expect(r.code, label).toBe(1);
      expect(r.stderr, label).toMatch(expected);
    }
    expect(snapshot(anc)).toEqual(before.anc);
    expect(snapshot(model.dir)).toEqual(before.model);
  });

  it('a checkpoint of a run as --adapter: its run folder is an input too', async () => {
    const dir = tempDir('guard-merge');
    const model = await tinyModel({ seed: 82 });
    const run = await runFolder(join(dir, 'run'), model);
    const checkpoint = join(run, 'checkpoints', 'step-2');
    mkdirSync(checkpoint, { recursive: true });
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) writeFileSync(join(checkpoint, f), readFileSync(join(run, f)));
    const r = await cli(['merge', '--model', model.dir, '--adapter', checkpoint, '--out', join(run, 'merged'), '--threads', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out ${join(run, 'merged')}: lies inside the adapter's run folder ${run};`);
  });

  it('a full fine-tuning run as --adapter: says what it is and to use it as --model', async () => {
    const dir = tempDir('guard-merge');
    const model = await tinyModel({ seed: 83 });
    const full = await runFolder(join(dir, 'full'), model, 'full');
    const r = await cli(['merge', '--model', model.dir, '--adapter', full, '--out', join(dir, 'out'), '--threads', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peft-studio: ${full}: is a full fine-tuning run; it holds no adapter to merge, it already is a whole model. ` +
      `Its folder already is a Hugging Face model (config.json + model.safetensors): use it as the model (--model ${full}) instead of --adapter\n`);
  });
});

describe('export never replaces its inputs and checks --out first', () => {
  it('refuses --out that holds the run (with other runs beside it), lies inside it, or is the base model', async () => {
    const dir = tempDir('guard-export');
    const model = await tinyModel({ seed: 84 });
    const anc = join(dir, 'anc');
    const run = await runFolder(join(anc, 'run'), model);
    await runFolder(join(anc, 'otherrun'), model);
    writeFileSync(join(anc, 'notes.txt'), 'x');
    const before = snapshot(anc);
    const refuse = async (out: string, extra: string[] = []) => {
      const r = await cli(['export', run, '--format', 'peft', '--out', out, '--overwrite', '--threads', '2', ...extra]);
      expect(r.code, out).toBe(1);
      expect(r.stderr).not.toContain('source adapter:'); // refused before scoring anything
      return r.stderr;
    };
    expect(await refuse(anc)).toContain(`--out ${anc}: contains the run folder ${run}; the export replaces the whole --out folder, so it would delete its own input`);
    expect(await refuse(run)).toContain(`--out ${run}: is the run folder ${run};`);
    expect(await refuse(join(run, 'export'))).toContain(`--out ${join(run, 'export')}: lies inside the run folder ${run};`);
    expect(await refuse(model.dir)).toContain(`--out ${model.dir}: is the base model folder ${model.dir};`);
    const data = join(anc, 'data', 'rows.jsonl');
    mkdirSync(join(anc, 'data'));
    writeFileSync(data, '{"input_ids": [40, 41, 42, 43]}\n');
    expect(await refuse(join(anc, 'data'), ['--check-data', data])).toContain(`--out ${join(anc, 'data')}: contains the --check-data file ${data};`);
    rmSync(join(anc, 'data'), { recursive: true });
    expect(snapshot(anc)).toEqual(before);
  });

  it('--out a file or a /proc path is refused at once, before the source is scored', { timeout: 10_000 }, async () => {
    const dir = tempDir('guard-export');
    const model = await tinyModel({ seed: 85 });
    const run = await runFolder(join(dir, 'run'), model);
    writeFileSync(join(dir, 'file'), 'x');
    for (const [out, expected] of [
      [join(dir, 'file'), `--out ${join(dir, 'file')}: is a file, not a folder; choose a folder path for the export`],
      [join(dir, 'file', 'sub'), `--out ${join(dir, 'file', 'sub')}: ${join(dir, 'file')} is a file, so no folder can be made below it`],
      ['/proc/peft-studio-no-such/out', '--out /proc/peft-studio-no-such/out: is under /proc, a kernel file system'],
    ]) {
      const lines: string[] = [];
      const t0 = performance.now();
      const message = await exportAdapter({ source: run, formats: ['peft'], out, threads: 2, log: (l) => lines.push(l) }).then(() => 'no error', (e: Error) => e.message);
      expect(message).toContain(expected);
      expect(lines).toEqual([]); // nothing scored
      expect(performance.now() - t0).toBeLessThan(2000);
    }
  });

  it.runIf(canChattr)('an immutable empty --out: the message names that folder and the flag, not its parent', async () => {
    const dir = tempDir('guard-export');
    const model = await tinyModel({ seed: 86 });
    const run = await runFolder(join(dir, 'run'), model);
    const out = join(dir, 'frozen');
    mkdirSync(out);
    execFileSync('chattr', ['+i', out]);
    try {
      const message = await exportAdapter({ source: run, formats: ['peft'], out, threads: 2 }).then(() => 'no error', (e: Error) => e.message);
      expect(message).toBe(`${out}: cannot replace the existing folder (EPERM): the folder itself cannot be moved or removed. ` +
        `It is marked immutable (chattr +i; lsattr -d shows it), or it belongs to another user inside a shared folder such as /tmp. ` +
        `Remove the flag (chattr -i ${out}), or choose another --out folder.`);
      expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]); // no temp folder left beside it
    } finally {
      execFileSync('chattr', ['-i', out]);
    }
  });

  it('merged: the summary lists every file written; an (IA)³ adapter is refused for GGUF by its own type', async () => {
    const dir = tempDir('guard-export');
    const model = await tinyModel({ seed: 87 });
    const run = await runFolder(join(dir, 'run'), model);
    const r = await cli(['export', run, '--format', 'merged', '--out', join(dir, 'merged'), '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    const files = JSON.parse(r.stdout).outputs[0].files as string[];
    expect([...files].sort()).toEqual(readdirSync(join(dir, 'merged')).sort());
    expect(files).toContain('config.json');
    expect(files).toContain('tokenizer.json');

    const ia3 = join(dir, 'ia3');
    mkdirSync(ia3);
    writeFileSync(join(ia3, 'adapter_config.json'), JSON.stringify({ peft_type: 'IA3', task_type: 'CAUSAL_LM', target_modules: ['k_proj', 'v_proj', 'down_proj'], feedforward_modules: ['down_proj'], base_model_name_or_path: model.dir }));
    const g = await cli(['export', ia3, '--format', 'gguf', '--out', join(dir, 'g')]);
    expect(g.code).toBe(1);
    expect(g.stderr).toContain(`${ia3}: is an (IA)³ adapter (peft_type IA3); it holds learned scaling vectors that multiply activations, not LoRA factors. A GGUF adapter holds LoRA factors only`);
    expect(g.stderr).not.toMatch(/virtual/);
    const m = await cli(['export', ia3, '--format', 'merged', '--out', join(dir, 'g')]);
    expect(m.stderr).toContain('export merges LoRA adapters only. Merge it with PEFT (merge_and_unload)');
    expect(existsSync(join(dir, 'g'))).toBe(false);
  });
});
