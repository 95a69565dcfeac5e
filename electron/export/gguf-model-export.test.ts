// Export format gguf-model with the real addon on the demo model: a LoRA
// adapter merged and converted in every type, a full fine-tuning run (and a
// checkpoint of one) converted as it is, each reloaded through our GGUF reader
// and scored against the source; the Modelfile; refusals (prompt tuning, other
// formats of a full run, a full run still training or an incomplete checkpoint,
// --model with a full run, a bf16/q8_0 adapter, --gguf-base without gguf, an
// unsupported tokenizer), with nothing left behind.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { openModelFolder } from '../models/folder.js';
import { Prng } from '../random/prng.js';
import { exportAdapter, type ExportOptions } from './export.js';
import { resolveExportSource } from './source.js';
import type { GgufModelType } from './gguf-model.js';
import { LOSS_TOLERANCE } from './verify.js';

const DEMO = resolve('resources/demo/model');
const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));
const run = (o: Omit<ExportOptions, 'threads'>) => exportAdapter({ threads: 2, ...o });

/** A LoRA adapter on every projection of the demo model, with B large enough to move the loss. */
async function demoAdapter(): Promise<string> {
  const folder = await openModelFolder(DEMO);
  const dir = join(tempDir('gm-adapter'), 'adapter');
  const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: null, init: 'default' };
  const rng = new Prng(17);
  const tensors = loraTensorShapes(folder.spec, lora).map(({ name, shape }) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.2),
  }));
  await writePeftAdapter({ dir, spec: folder.spec, lora, baseModelNameOrPath: DEMO, tensors });
  return dir;
}

/** A full fine-tuning run folder: the model files at its top level and run.json with method "full". */
function fullRun(): string {
  const dir = join(tempDir('gm-full'), 'run');
  mkdirSync(dir);
  for (const f of readdirSync(DEMO)) copyFileSync(join(DEMO, f), join(dir, f));
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { method: 'full', model: DEMO, seqLen: 64 } }));
  return dir;
}

describe('export gguf-model', () => {
  it('LoRA on the demo: merged and converted in each type, reloaded and scored within tolerance; Modelfile', { timeout: 300_000 }, async () => {
    const adapter = await demoAdapter();
    const measured: Record<string, number> = {};
    for (const type of ['f32', 'f16', 'bf16', 'q8_0'] as GgufModelType[]) {
      const out = join(tempDir('gm-export'), 'out');
      const lines: string[] = [];
      const result = await run({ source: adapter, formats: ['gguf-model'], out, ggufType: type, log: (l) => lines.push(l) });
      const c = result.check.checks[0];
      expect(c.format).toBe('gguf-model');
      expect(c.passed).toBe(true);
      expect(c.tolerance).toBe(Math.max(LOSS_TOLERANCE.merged.F16, LOSS_TOLERANCE['gguf-model'][type]));
      measured[type] = c.relativeDifference;
      expect(readdirSync(out).sort()).toEqual(['Modelfile', 'model.gguf']);
      expect(result.ggufModel).toMatchObject({ type, architecture: 'llama', pre: 'gpt-2' });
      const parsed = await hfGguf(join(out, 'model.gguf'), { allowLocalFile: true, typedMetadata: true });
      expect(parsed.typedMetadata['general.file_type'].value).toBe({ f32: 0, f16: 1, bf16: 32, q8_0: 7 }[type]);
      expect(parsed.typedMetadata['tokenizer.ggml.pre'].value).toBe('gpt-2');
      expect(parsed.tensorInfos).toHaveLength(3 + 4 * 9);
      expect(lines.some((l) => /^check gguf-model: loss .* ok$/.test(l))).toBe(true);
    }
    if (process.env.PS_PRINT_FIGURES) console.log('gguf-model relative loss differences on the demo (LoRA, 8 rows):', JSON.stringify(measured));
    // f32 and f16 of an F16 model hold the merged F16 weights as they are: the same loss
    expect(measured.f32).toBe(measured.f16);
    expect(measured.q8_0).toBeGreaterThan(0);
  });

  it('writes FROM ./model.gguf in the Modelfile and keeps the chat template in the file', { timeout: 120_000 }, async () => {
    const out = join(tempDir('gm-export'), 'out');
    await run({ source: await demoAdapter(), formats: ['gguf-model'], out, ggufType: 'q8_0' });
    const modelfile = readFileSync(join(out, 'Modelfile'), 'utf8');
    expect(modelfile).toMatch(/^FROM \.\/model\.gguf$/m);
    expect(modelfile).not.toMatch(/ADAPTER/);
    const parsed = await hfGguf(join(out, 'model.gguf'), { allowLocalFile: true, typedMetadata: true });
    const config = JSON.parse(readFileSync(join(DEMO, 'tokenizer_config.json'), 'utf8'));
    expect(parsed.typedMetadata['tokenizer.chat_template'].value).toBe(config.chat_template);
  });

  it('a full fine-tuning run is converted as it is (f32: the same weights, the same loss)', { timeout: 120_000 }, async () => {
    const dir = fullRun();
    const out = join(tempDir('gm-export'), 'out');
    const result = await run({ source: dir, formats: ['gguf-model'], out, ggufType: 'f32' });
    expect(result.check.checks[0]).toMatchObject({ format: 'gguf-model', passed: true, relativeDifference: 0 });
    expect(existsSync(join(out, 'model.gguf'))).toBe(true);
    // without --gguf-type: a full run's default, f32 (its weights as trained)
    const out2 = join(tempDir('gm-export'), 'out');
    expect((await run({ source: dir, formats: ['gguf-model'], out: out2 })).ggufModel?.type).toBe('f32');
    await expect(run({ source: dir, formats: ['gguf-model', 'merged'], out: join(tempDir('gm-export'), 'o') }))
      .rejects.toThrow(/is a full fine-tuning run; it has no adapter to export as merged\. .* export it with --format gguf-model/);
  });

  it('a checkpoint of a full run is a source of its own kind, with the run\'s data; unfinished and incomplete ones are refused', { timeout: 120_000 }, async () => {
    const dir = fullRun();
    const step = join(dir, 'checkpoints', 'step-2');
    mkdirSync(step, { recursive: true });
    for (const f of readdirSync(DEMO)) copyFileSync(join(DEMO, f), join(step, f));
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { method: 'full', model: DEMO, seqLen: 48, data: 'train.jsonl', evalSplit: 0.25, seed: 9 } }));
    // incomplete: no COMPLETE marker (the run stopped while writing it)
    await expect(resolveExportSource(step)).rejects.toThrow(/step-2: the checkpoint is incomplete \(no COMPLETE marker or no config\.json\)/);
    writeFileSync(join(step, 'COMPLETE'), '{}');
    const source = await resolveExportSource(step);
    expect(source).toEqual({
      kind: 'full-run', dir: step, modelDir: step, runDir: dir, checkpointStep: 2,
      runData: join(dir, 'train.jsonl'), runSeqLen: 48, runDataFormat: null, runCompletionOnly: null, runEvalSplit: 0.25, runEvalData: null, runSeed: 9,
    });
    // the run's data is gone: the check says so and scores the built-in sample
    const out = join(tempDir('gm-export'), 'out');
    const lines: string[] = [];
    const result = await run({ source: step, formats: ['gguf-model'], out, ggufType: 'f32', log: (l) => lines.push(l) });
    expect(result.check.checks[0]).toMatchObject({ format: 'gguf-model', passed: true, relativeDifference: 0 });
    expect(result.check.rowsFrom).toBe('built-in sample');
    expect(lines[0]).toMatch(/^reload check: the run's data could not be used/);
    expect(lines.some((l) => l.startsWith('source model (full fine-tuning run, checkpoint step 2): loss'))).toBe(true);
    const parsed = await hfGguf(join(out, 'model.gguf'), { allowLocalFile: true, typedMetadata: true });
    expect(parsed.typedMetadata['general.name'].value).toBe('run-step-2');

    await expect(run({ source: step, formats: ['gguf'], out: join(tempDir('gm-export'), 'o') }))
      .rejects.toThrow(/step-2: is a checkpoint of the full fine-tuning run .*run; it has no adapter to export as gguf\./);
    await expect(run({ source: dir, model: DEMO, formats: ['gguf-model'], out: join(tempDir('gm-export'), 'o') }))
      .rejects.toThrow(/run: is a full fine-tuning run: its folder is the fine-tuned model itself, so there is no base model to choose; leave out --model/);
    // still training: run.json but no final model at the top level
    const training = join(tempDir('gm-training'), 'run');
    mkdirSync(training);
    writeFileSync(join(training, 'run.json'), JSON.stringify({ config: { method: 'full', model: DEMO } }));
    await expect(run({ source: training, formats: ['gguf-model'], out: join(tempDir('gm-export'), 'o') }))
      .rejects.toThrow(/run: the full fine-tuning run has no final model \(no config\.json at its top level\): it is still training or was interrupted\. Finish it with 'train --resume /);
  });

  it('refusals: prompt tuning, a bf16 adapter, an unsupported tokenizer; nothing written', { timeout: 120_000 }, async () => {
    const prompt = join(tempDir('gm-prompt'), 'adapter');
    mkdirSync(prompt);
    writeFileSync(join(prompt, 'adapter_config.json'), JSON.stringify({ peft_type: 'PROMPT_TUNING', base_model_name_or_path: DEMO, num_virtual_tokens: 4 }));
    const out = join(tempDir('gm-export'), 'out');
    await expect(run({ source: prompt, formats: ['gguf-model'], out })).rejects.toThrow(/is a prompt tuning adapter \(peft_type PROMPT_TUNING\); it adds virtual tokens, not weight updates, so there is nothing to merge into the base weights/);
    await expect(run({ source: await demoAdapter(), formats: ['gguf', 'gguf-model'], out, ggufType: 'bf16' }))
      .rejects.toThrow(/--gguf-type bf16: the GGUF adapter \(format gguf\) is written as f32 or f16 only/);
    await expect(run({ source: await demoAdapter(), formats: ['gguf-model'], out, ggufBase: true }))
      .rejects.toThrow(/--gguf-base writes base\.gguf beside the GGUF adapter: it needs --format gguf/);

    // the demo with a SentencePiece-style pre-tokenizer: refused naming tokenizer.json, and no folder left
    const model = join(tempDir('gm-sp'), 'model');
    mkdirSync(model);
    for (const f of readdirSync(DEMO)) copyFileSync(join(DEMO, f), join(model, f));
    const tok = JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8'));
    tok.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    writeFileSync(join(model, 'tokenizer.json'), JSON.stringify(tok));
    const adapter = await demoAdapter();
    await expect(run({ source: adapter, model, formats: ['gguf-model'], out })).rejects.toThrow(/tokenizer\.json: "pre_tokenizer\.type" is "Metaspace"/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(out, '..'))).toEqual([]);
  });
});
