// Exports through the library API with the real addon: every format reloads
// and scores as the source adapter; the GGUF file checked field by field with
// an independent reader (@huggingface/gguf) and a float64 re-implementation of
// llama.cpp's q/k permutation; no silent overwrite; nothing left on failure;
// clear errors for what cannot be exported.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gguf as hfGguf, GGUFValueType } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { Prng } from '../random/prng.js';
import { writeRandomAdapter } from '../testing/random-adapter.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { exportAdapter, type ExportOptions } from './export.js';
import { readGgufLoraAdapter } from './gguf-lora.js';
import { halfToNumber, referencePermute } from './test-reference.js';
import { gatherRows, ropeRowOrder } from './rope-permute.js';
import { compareLoss, lossOfModel, lossWithLora, loadCheckRows } from './verify.js';

const ALL: AdapterLora['targets'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));

async function tinyModel(options: TinyModelOptions) {
  return writeTinyModel(join(tempDir('model'), 'model'), options);
}

const randomAdapter = writeRandomAdapter;

/** Rows of token ids the tiny models score: a cycle, from different starts. */
function writeRows(file: string, count = 6, length = 24): string {
  const cycle = [40, 41, 42, 43, 44, 45, 46];
  const rows = Array.from({ length: count }, (_, r) => ({ input_ids: Array.from({ length: length - (r % 4) }, (_, t) => cycle[(r + t * 3) % cycle.length] + (t % 5)) }));
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

const run = (o: Omit<ExportOptions, 'threads'>) => exportAdapter({ threads: 2, ...o });

/** Tensor bytes of a parsed GGUF, by tensor name. */
async function parsedGguf(file: string) {
  const parsed = await hfGguf(file, { allowLocalFile: true, typedMetadata: true });
  const bytes = readFileSync(file);
  const data = (name: string) => {
    const t = parsed.tensorInfos.find((x) => x.name === name)!;
    const start = Number(parsed.tensorDataOffset + t.offset);
    const n = t.shape.reduce((a, d) => a * Number(d), 1);
    const raw = bytes.subarray(start, start + n * (Number(t.dtype) === 0 ? 4 : 2));
    if (Number(t.dtype) === 0) return Array.from(new Float32Array(new Uint8Array(raw).buffer));
    return Array.from(new Uint16Array(new Uint8Array(raw).buffer), halfToNumber);
  };
  return { parsed, md: parsed.typedMetadata, data };
}

function ggufName(engineName: string): string {
  const m = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)_proj\.lora_([AB])\.weight$/.exec(engineName)!;
  const module = { q: 'attn_q', k: 'attn_k', v: 'attn_v', o: 'attn_output', gate: 'ffn_gate', up: 'ffn_up', down: 'ffn_down' }[m[2]]!;
  return `blk.${m[1]}.${module}.weight.lora_${m[3].toLowerCase()}`;
}

describe('export', () => {
  it('peft + merged + gguf in one go: each reloads and scores as the source adapter, which differs from the base', async () => {
    const model = await tinyModel({ seed: 41 });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: true, targets: ALL, layers: null, init: 'default' };
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const data = writeRows(join(dir, 'rows.jsonl'));
    const out = join(dir, 'exports');
    const lines: string[] = [];
    const result = await run({ source: join(dir, 'adapter'), formats: ['peft', 'merged', 'gguf'], out, checkData: data, log: (l) => lines.push(l) });

    expect(result.outputs.map((o) => o.dir)).toEqual([join(out, 'peft'), join(out, 'merged'), join(out, 'gguf')]);
    for (const f of ['peft/adapter_config.json', 'peft/adapter_model.safetensors', 'merged/model.safetensors', 'merged/config.json', 'merged/tokenizer.json', 'gguf/adapter.gguf', 'gguf/Modelfile']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(result.check.rowsFrom).toBe('--check-data');
    expect(result.check.rows).toBe(6);
    expect(result.check.checks.map((c) => [c.format, c.passed])).toEqual([['peft', true], ['merged', true], ['gguf', true]]);
    expect(result.check.checks[0].relativeDifference).toBe(0); // same float32 factors, same computation
    expect(result.check.checks[2].relativeDifference).toBeLessThan(1e-6);
    expect(result.check.checks[1].relativeDifference).toBeLessThan(1e-4);
    expect(lines.some((l) => /^check gguf: loss \d+\.\d+ vs source \d+\.\d+/.test(l))).toBe(true);
    expect(result.ggufAlpha).toBe(8 * Math.sqrt(4));

    // the check can fail: the base alone scores clearly differently from base + adapter
    const folder = await openModelFolder(model.dir);
    const examples = await loadCheckRows(data, await ModelTokenizer.load(model.dir), { seqLen: 64, vocabSize: model.spec.vocabSize, rows: 8 });
    const base = await lossOfModel(loadAddon(), folder, examples, 2);
    expect(compareLoss('base', base.loss, result.check.sourceLoss, 1e-3).passed).toBe(false);
  });

  it("peft keeps the base's name and revision (from_pretrained loads the base at that commit; it was written null)", async () => {
    const model = await tinyModel({ seed: 43 });
    const dir = tempDir('export-revision');
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj'], layers: null, init: 'default' });
    // as a run on a Hugging Face cache base records it: a repo id and the snapshot's commit
    const configFile = join(dir, 'adapter', 'adapter_config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    Object.assign(config, { base_model_name_or_path: 'org/tiny-llama', revision: '0123456789abcdef0123456789abcdef01234567' });
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const out = join(dir, 'out');
    await run({ source: join(dir, 'adapter'), model: model.dir, formats: ['peft'], out, checkData: writeRows(join(dir, 'rows.jsonl')) });
    const written = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect([written.base_model_name_or_path, written.revision]).toEqual(['org/tiny-llama', '0123456789abcdef0123456789abcdef01234567']);
  });

  it('GGUF for Llama: @huggingface/gguf reads the adapter KVs, llama.cpp names, shapes, F32, aligned offsets, and q/k lora_b permuted', async () => {
    const model = await tinyModel({ seed: 42, heads: 4, kvHeads: 2 });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 3, alpha: 5, dropout: 0, rslora: true, targets: ALL, layers: [1], init: 'default' };
    const adapter = await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const out = join(dir, 'gguf');
    const result = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out, checkData: writeRows(join(dir, 'rows.jsonl')) });
    expect('checks' in result.check && result.check.checks[0].passed).toBe(true);

    const { parsed, md, data } = await parsedGguf(join(out, 'adapter.gguf'));
    expect(md.version.value).toBe(3);
    expect(md['general.architecture']).toEqual({ value: 'llama', type: GGUFValueType.STRING });
    expect(md['general.type']).toEqual({ value: 'adapter', type: GGUFValueType.STRING });
    expect(md['adapter.type']).toEqual({ value: 'lora', type: GGUFValueType.STRING });
    expect(md['adapter.lora.alpha'].type).toBe(GGUFValueType.FLOAT32);
    // rsLoRA: llama.cpp scales by alpha / r, so the file holds alpha * sqrt(r)
    expect(md['adapter.lora.alpha'].value).toBe(Math.fround(5 * Math.sqrt(3)));
    expect((md['adapter.lora.alpha'].value as number) / 3).toBeCloseTo(5 / Math.sqrt(3), 6);
    expect(md['general.alignment']).toEqual({ value: 32, type: GGUFValueType.UINT32 });
    expect(Number(parsed.tensorDataOffset) % 32).toBe(0);

    const expected = loraTensorShapes(model.spec, lora);
    expect(parsed.tensorInfos.map((t) => t.name)).toEqual(expected.map((t) => ggufName(t.name)));
    expect(parsed.tensorInfos.map((t) => t.name).slice(0, 4)).toEqual(['blk.1.attn_q.weight.lora_a', 'blk.1.attn_q.weight.lora_b', 'blk.1.attn_k.weight.lora_a', 'blk.1.attn_k.weight.lora_b']);
    for (const [i, t] of parsed.tensorInfos.entries()) {
      // GGUF lists ne innermost first: lora_a [in, r], lora_b [r, out]
      expect(t.shape.map(Number), t.name).toEqual([...expected[i].shape].reverse());
      expect(Number(t.dtype), t.name).toBe(0);
      expect(Number(t.offset) % 32, t.name).toBe(0);
    }
    const { hiddenSize: h, headDim } = model.spec;
    expect(parsed.tensorInfos.find((t) => t.name === 'blk.1.attn_k.weight.lora_b')!.shape.map(Number)).toEqual([3, 2 * headDim]);
    expect(parsed.tensorInfos.find((t) => t.name === 'blk.1.ffn_down.weight.lora_a')!.shape.map(Number)).toEqual([model.spec.intermediateSize, 3]);
    expect(parsed.tensorInfos.find((t) => t.name === 'blk.1.attn_q.weight.lora_a')!.shape.map(Number)).toEqual([h, 3]);

    for (const [name, t] of adapter) {
      const stored = data(ggufName(name));
      let want: number[] = Array.from(t.data);
      if (name.includes('q_proj.lora_B')) want = Array.from(referencePermute(t.data, t.shape[0], t.shape[1], model.spec.numHeads));
      if (name.includes('k_proj.lora_B')) want = Array.from(referencePermute(t.data, t.shape[0], t.shape[1], model.spec.numKvHeads));
      expect(stored, name).toEqual(want);
      if (/[qk]_proj\.lora_B/.test(name)) expect(stored, name).not.toEqual(Array.from(t.data));
    }

    const modelfile = readFileSync(join(out, 'Modelfile'), 'utf8');
    expect(modelfile).toContain('#   ollama create NAME -f Modelfile\n');
    expect(modelfile).toContain(`\nFROM ${model.dir}\n`);
    expect(modelfile).toContain('\nADAPTER ./adapter.gguf\n');

    // our reader gives back the PEFT factors exactly, and the engine layout
    const back = await readGgufLoraAdapter(join(out, 'adapter.gguf'), model.spec);
    expect(back.lora).toMatchObject({ rank: 3, rslora: false, layers: [1], targets: ALL });
    expect(back.scaling).toBeCloseTo(5 / Math.sqrt(3), 6);
    for (const t of back.tensors) expect(Array.from(t.data), t.name).toEqual(Array.from(adapter.get(t.name)!.data));

    // the reload check sees the permutation: left permuted, q/k give another loss
    const folder = await openModelFolder(model.dir);
    const examples = await loadCheckRows(join(dir, 'rows.jsonl'), await ModelTokenizer.load(model.dir), { seqLen: 64, vocabSize: model.spec.vocabSize, rows: 8 });
    const addon = loadAddon();
    const right = await lossWithLora(addon, folder, back.lora, back.tensors, examples, 2);
    const stillPermuted = back.tensors.map((t) => {
      const heads = t.name.includes('q_proj.lora_B') ? model.spec.numHeads : t.name.includes('k_proj.lora_B') ? model.spec.numKvHeads : 0;
      return heads ? { ...t, data: gatherRows(t.data, t.shape[1], ropeRowOrder(heads, headDim)) } : t;
    });
    const wrong = await lossWithLora(addon, folder, back.lora, stillPermuted, examples, 2);
    expect(Math.abs(wrong.loss - right.loss) / right.loss).toBeGreaterThan(1e-4);
  });

  it('GGUF for Qwen2 and Qwen3: their llama.cpp architectures, NEOX RoPE so no permutation, reload matches', async () => {
    for (const [arch, name] of [['Qwen2ForCausalLM', 'qwen2'], ['Qwen3ForCausalLM', 'qwen3']] as const) {
      const model = await tinyModel({ seed: 43, arch });
      const dir = tempDir('export');
      const lora: AdapterLora = { rank: 2, alpha: 6, dropout: 0, rslora: false, targets: ['q_proj', 'k_proj', 'down_proj'], layers: null, init: 'default' };
      const adapter = await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
      const result = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out: join(dir, 'out'), checkData: writeRows(join(dir, 'rows.jsonl')) });
      expect('checks' in result.check && result.check.checks[0].relativeDifference, arch).toBeLessThan(1e-6);
      const { md, data } = await parsedGguf(join(dir, 'out', 'adapter.gguf'));
      expect(md['general.architecture']?.value, arch).toBe(name);
      expect(md['adapter.lora.alpha'].value).toBe(6);
      for (const [n, t] of adapter) expect(data(ggufName(n)), `${arch} ${n}`).toEqual(Array.from(t.data));
      expect(readFileSync(join(dir, 'out', 'Modelfile'), 'utf8')).toContain(`llama.cpp architecture: ${name}`);
    }
  });

  it('GGUF f16: F16 tensors rounded to nearest, reload within 1e-3', async () => {
    const model = await tinyModel({ seed: 44 });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 4, alpha: 16, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'up_proj'], layers: null, init: 'default' };
    const adapter = await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const result = await run({ source: join(dir, 'adapter'), formats: ['gguf'], ggufType: 'f16', out: join(dir, 'out'), checkData: writeRows(join(dir, 'rows.jsonl')) });
    if (!('checks' in result.check)) throw new Error('check skipped');
    expect(result.check.checks[0].passed).toBe(true);
    expect(result.check.checks[0].tolerance).toBe(1e-3);
    const { parsed, md, data } = await parsedGguf(join(dir, 'out', 'adapter.gguf'));
    expect(md['general.file_type'].value).toBe(1);
    expect(parsed.tensorInfos.every((t) => Number(t.dtype) === 1)).toBe(true);
    let changed = 0;
    for (const [n, t] of adapter) {
      const want = n.includes('q_proj.lora_B') ? referencePermute(t.data, t.shape[0], t.shape[1], model.spec.numHeads) : Float64Array.from(t.data);
      const stored = data(ggufName(n));
      for (let i = 0; i < want.length; i++) {
        // nearest half: within half a unit in the last place (2^-11 relative; 2^-25 absolute for subnormals)
        expect(Math.abs(stored[i] - want[i]), `${n}[${i}]`).toBeLessThanOrEqual(Math.max(Math.abs(want[i]) * 2 ** -11, 2 ** -25));
        if (stored[i] !== want[i]) changed++;
      }
    }
    expect(changed).toBeGreaterThan(0);
  });

  it('never overwrites silently; --overwrite replaces the folder; a failure leaves no target and no temp folder', async () => {
    const model = await tinyModel({ seed: 45 });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const out = join(dir, 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    const refused = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out, howToOverwrite: 'pass --overwrite' }).catch((e: Error) => e.message);
    expect(refused).toMatch(/out: the folder already exists and is not empty\. Choose another folder, or pass --overwrite to replace it/);
    expect(readFileSync(join(out, 'keep.txt'), 'utf8')).toBe('mine');
    const replaced = await run({ source: join(dir, 'adapter'), formats: ['gguf'], out, overwrite: true });
    expect(replaced.check.rowsFrom).toBe('built-in sample'); // an adapter folder names no data
    expect(replaced.check.checks.map((c) => c.passed)).toEqual([true]);
    expect(readdirSync(out).sort()).toEqual(['Modelfile', 'adapter.gguf']);

    // a value float16 cannot hold makes the gguf step fail after peft was written: nothing stays
    await randomAdapter(join(dir, 'big'), model.spec, model.dir, lora, 6, (t) => {
      if (t.name === 'model.layers.1.self_attn.v_proj.lora_B.weight') t.data[3] = 1e6;
    });
    const failed = join(dir, 'failed');
    const message = await run({ source: join(dir, 'big'), formats: ['peft', 'gguf'], ggufType: 'f16', out: failed }).catch((e: Error) => e.message);
    expect(message).toMatch(/blk\.1\.attn_v\.weight\.lora_b\[3\] = 1000000 does not fit float16.*--gguf-type f32/);
    expect(existsSync(failed)).toBe(false);
    expect(readdirSync(dirname(failed)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a run folder: run.json names the base and the rows; an unfinished run, a full run and a non-adapter folder are refused clearly', async () => {
    const model = await tinyModel({ seed: 46 });
    const dir = tempDir('export');
    const runDir = join(dir, 'run');
    const data = writeRows(join(dir, 'train.jsonl'), 10);
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, data, out: runDir, method: 'lora', seqLen: 16 } }));
    const unfinished = await run({ source: runDir, formats: ['peft'], out: join(dir, 'x') }).catch((e: Error) => e.message);
    expect(unfinished).toMatch(/the run has no final adapter .* Finish it with 'train --resume /);
    const lora: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'o_proj'], layers: null, init: 'default' };
    const rng = new Prng(9);
    await writePeftAdapter({
      dir: runDir,
      spec: model.spec,
      lora,
      baseModelNameOrPath: model.dir,
      tensors: loraTensorShapes(model.spec, lora).map(({ name, shape }) => ({ name, shape, data: Float32Array.from({ length: shape[0] * shape[1] }, () => rng.nextFloat() - 0.5) })),
      keepOtherFiles: true,
    });
    const result = await run({ source: runDir, formats: ['peft', 'gguf'], out: join(dir, 'exports'), checkRows: 3 });
    expect(result.source.kind).toBe('run');
    expect(result.source.modelDir).toBe(model.dir);
    expect(result.check.rowsFrom).toBe('run data');
    expect(result.check.data).toBe(data);
    expect(result.check.rows).toBe(3);
    expect(result.check.checks.every((c) => c.passed)).toBe(true);
    // seq len 16 from run.json: 3 rows of <= 16 tokens, 15 labels each at most
    expect(result.check.tokens).toBeLessThanOrEqual(45);

    const fullDir = join(dir, 'full');
    mkdirSync(fullDir);
    writeFileSync(join(fullDir, 'run.json'), JSON.stringify({ config: { model: model.dir, method: 'full' } }));
    expect(await run({ source: fullDir, formats: ['gguf'], out: join(dir, 'y') }).catch((e: Error) => e.message)).toMatch(/is a full fine-tuning run; it has no adapter to export/);
    expect(await run({ source: model.dir, formats: ['gguf'], out: join(dir, 'z') }).catch((e: Error) => e.message)).toMatch(/is neither a training run folder \(no run\.json\) nor a PEFT adapter folder \(no adapter_config\.json\)/);
  });

  it('merged into a BF16 sharded base: stays BF16, checked within the BF16 tolerance', async () => {
    const model = await tinyModel({ seed: 53, dtype: 'BF16', sharded: true });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'o_proj', 'up_proj'], layers: null, init: 'default' };
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const result = await run({ source: join(dir, 'adapter'), formats: ['merged'], out: join(dir, 'merged'), checkData: writeRows(join(dir, 'rows.jsonl')) });
    expect(result.check.rowsFrom).toBe('--check-data');
    expect(result.check.checks[0]).toMatchObject({ format: 'merged', tolerance: 5e-3, passed: true });
    expect((await openModelFolder(join(dir, 'merged'))).storedDType).toBe('BF16');
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]); // merge's own temp folder inside ours is gone too
    // every file of the merged folder, the index and the side files too
    expect(result.outputs[0].files.slice(0, 3)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    expect([...result.outputs[0].files].sort()).toEqual(readdirSync(join(dir, 'merged')).sort());
  });

  it("scores the run's rows as training reads them (alpaca rows, completion-only masking)", async () => {
    const model = await tinyModel({ seed: 54 });
    const dir = tempDir('export');
    const data = join(dir, 'alpaca.jsonl');
    writeFileSync(data, Array.from({ length: 5 }, (_, i) => JSON.stringify({ instruction: `add ${i} and ${i + 1}`, input: '', output: `${2 * i + 1}` })).join('\n') + '\n');
    const runDir = join(dir, 'run');
    const lora: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['v_proj'], layers: null, init: 'default' };
    await randomAdapter(runDir, model.spec, model.dir, lora);
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ config: { model: model.dir, data, method: 'lora', seqLen: 256, dataFormat: 'alpaca', completionOnly: true } }));
    const result = await run({ source: runDir, formats: ['gguf'], out: join(dir, 'out') });
    expect(result.check.rowsFrom).toBe('run data');
    expect(result.check.rows).toBe(5);
    expect(result.check.checks[0].passed).toBe(true);
    // completion-only: a few output tokens (+ EOS) per row are scored, not the prompt
    expect(result.check.tokens).toBeGreaterThanOrEqual(5);
    expect(result.check.tokens).toBeLessThan(5 * 8);
  });

  it('refuses a mismatched base, an adapter whose base is not here, and a prompt-tuning adapter for GGUF', async () => {
    const model = await tinyModel({ seed: 47 });
    const other = await tinyModel({ seed: 48, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64 });
    const dir = tempDir('export');
    const lora: AdapterLora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'], layers: null, init: 'default' };
    await randomAdapter(join(dir, 'adapter'), model.spec, model.dir, lora);
    const mismatched = await run({ source: join(dir, 'adapter'), model: other.dir, formats: ['gguf'], out: join(dir, 'a') }).catch((e: Error) => e.message);
    expect(mismatched).toMatch(/adapter_model\.safetensors: tensor ".*" has shape \[2, 64\] but this model and r = 2 need \[2, 32\]/);
    expect(existsSync(join(dir, 'a'))).toBe(false);

    // a GGUF made for one architecture is refused for another
    await run({ source: join(dir, 'adapter'), formats: ['gguf'], out: join(dir, 'g') });
    const qwen = await tinyModel({ seed: 49, arch: 'Qwen2ForCausalLM' });
    expect(await readGgufLoraAdapter(join(dir, 'g', 'adapter.gguf'), qwen.spec).catch((e: Error) => e.message)).toMatch(/adapter\.gguf: is an adapter for llama\.cpp architecture "llama", but the model \(Qwen2ForCausalLM\) is "qwen2"/);

    await randomAdapter(join(dir, 'hub'), model.spec, 'meta-llama/Llama-3.2-1B', lora);
    expect(await run({ source: join(dir, 'hub'), formats: ['peft'], out: join(dir, 'b') }).catch((e: Error) => e.message)).toMatch(/its base_model_name_or_path "meta-llama\/Llama-3\.2-1B" is not a folder on this machine, nor a model in the Hugging Face cache; pass --model DIR/);

    const prompt = join(dir, 'prompt');
    mkdirSync(prompt);
    writeFileSync(join(prompt, 'adapter_config.json'), JSON.stringify({ peft_type: 'PROMPT_TUNING', task_type: 'CAUSAL_LM', num_virtual_tokens: 4, token_dim: 64, base_model_name_or_path: model.dir }));
    expect(await run({ source: prompt, formats: ['gguf'], out: join(dir, 'c') }).catch((e: Error) => e.message)).toMatch(/prompt: is a prompt tuning adapter \(peft_type PROMPT_TUNING\); it adds virtual tokens, not weight updates\. A GGUF adapter holds LoRA factors only/);
    expect(await run({ source: prompt, formats: ['merged'], out: join(dir, 'c') }).catch((e: Error) => e.message)).toMatch(/nothing to merge/);
    expect(existsSync(join(dir, 'c'))).toBe(false);
  });
});
