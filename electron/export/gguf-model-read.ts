// The export's reload check of a GGUF model (model.gguf written by
// gguf-model.ts): before the file is scored, what llama.cpp will take from it
// is rebuilt and compared with the model it was written from, so that wrong
// metadata cannot pass a check that only looks at the weights:
//   hyperparameters  read the way llama.cpp's loader reads them
//                    (llama_model_base::load_hparams and load_arch_hparams for
//                    llama / qwen2 / qwen3), with its defaults where a key is
//                    absent, against the ModelSpec
//   rope_freqs       bit for bit against llama3RopeFactors(spec), and absent
//                    without Llama 3 RoPE scaling
//   tensors          exactly the model's set, each with its shape
//   tokenizer        every tokenizer.* key against a fresh ggufVocab of the
//                    model folder (tokenizer model, tokens, token types,
//                    merges or SentencePiece scores, special ids, add_bos /
//                    add_eos, add_space_prefix, pre-tokenizer, chat template)
// Then the tensors are read back (ggufModelToFolder) into a folder the engine
// scores. A mismatch is a bug in our GGUF writer, and the error says so.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelSpec } from '../engine/native.js';
import { writeFileAtomic } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import { expectedTensors } from '../models/folder.js';
import { encodeFloatTensor } from '../safetensors/convert.js';
import { writeSafetensors } from '../safetensors/write.js';
import { GgmlType, GgufValueType, type GgufKv, type GgufScalarType } from './gguf/format.js';
import { GgufFormatError, readGgufHeader, readGgufTensor, type GgufFile, type GgufMetadataEntry, type GgufValue } from './gguf/read.js';
import { llamaCppArchitecture } from './gguf-lora.js';
import { ggufModelTensorName, ggufRowOrder, ggufTokenizerKvs, llama3RopeFactors } from './gguf-model.js';
import { ggufVocab, withChatTemplate } from './gguf-vocab.js';
import { scatterRows } from './rope-permute.js';

const WRITER_BUG = 'this is a bug in PEFT Studio\'s GGUF writer, not in the model: please report it';

/** A refusal naming the key, the value in the file and the one the model needs. */
function mismatch(file: string, what: string, got: string, want: string): GgufFormatError {
  return new GgufFormatError(file, `${what} is ${got}; the model needs ${want} (${WRITER_BUG})`);
}

function show(value: GgufValue | undefined): string {
  if (value === undefined) return 'absent';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return String(value);
}

/** A value llama.cpp reads, and where it came from (the file, or its default for an absent key). */
interface Read<T> {
  value: T;
  /** for messages: `${key} is ${shown}` */
  shown: string;
}

/**
 * Metadata reads with llama.cpp's rules: a present key must have the type
 * llama.cpp's get_key expects (it throws "wrong type" otherwise), an absent
 * optional key takes the default its loader sets before reading it.
 */
class LlamaCppKeys {
  constructor(private readonly gguf: GgufFile) {}

  private entry(key: string, type: GgufScalarType, required: boolean): GgufMetadataEntry | undefined {
    const e = this.gguf.metadata.get(key);
    if (!e) {
      if (required) throw new GgufFormatError(this.gguf.file, `has no metadata "${key}", which llama.cpp requires (${WRITER_BUG})`);
      return undefined;
    }
    if (e.type !== type) throw new GgufFormatError(this.gguf.file, `metadata "${key}" is a ${GgufValueType[e.type]}; llama.cpp reads it as ${GgufValueType[type]} (${WRITER_BUG})`);
    return e;
  }

  /** A scalar; `fallback` is llama.cpp's default (omitted: the key is required). */
  scalar<T extends number | string | boolean>(key: string, type: GgufScalarType, fallback?: { value: T; why: string }): Read<T> {
    const e = this.entry(key, type, fallback === undefined);
    if (!e) return { value: fallback!.value, shown: `absent, so llama.cpp uses ${show(fallback!.value)} (${fallback!.why})` };
    return { value: e.value as T, shown: show(e.value) };
  }

  /**
   * A per-layer uint32 (get_key_or_arr: one value for every layer, or an
   * array of n_layer values), as the value of each layer.
   */
  perLayer(key: string, layers: number, fallback: { value: number[]; why: string }): Read<number[]> {
    const e = this.gguf.metadata.get(key);
    if (!e) return { value: fallback.value, shown: `absent, so llama.cpp uses ${fallback.value[0]} (${fallback.why})` };
    if (e.type !== GgufValueType.ARRAY) {
      const one = this.scalar<number>(key, GgufValueType.UINT32);
      return { value: Array<number>(layers).fill(one.value), shown: one.shown };
    }
    const items = e.value as GgufValue[];
    if (e.itemType !== GgufValueType.UINT32 && e.itemType !== GgufValueType.INT32) {
      throw new GgufFormatError(this.gguf.file, `metadata "${key}" is an array of ${GgufValueType[e.itemType!]}; llama.cpp reads UINT32 or INT32 (${WRITER_BUG})`);
    }
    if (items.length !== layers) throw new GgufFormatError(this.gguf.file, `metadata "${key}" has ${items.length} values; llama.cpp needs one per layer (${layers}) (${WRITER_BUG})`);
    return { value: items as number[], shown: `[${items.join(', ')}]` };
  }
}

/**
 * The hyperparameters llama.cpp takes from the file (llama_model_base::load_hparams,
 * then load_arch_hparams of llama / qwen2 / qwen3), each compared with the model.
 */
function checkHyperparameters(gguf: GgufFile, spec: ModelSpec, arch: string): void {
  const keys = new LlamaCppKeys(gguf);
  const f = Math.fround;
  const same = <T>(key: string, read: Read<T>, want: T, wantShown = show(want as GgufValue)) => {
    if (read.value !== want) throw mismatch(gguf.file, key, read.shown, wantShown);
  };
  const sameLayers = (key: string, read: Read<number[]>, want: number) => {
    const i = read.value.findIndex((v) => v !== want);
    if (i >= 0) throw mismatch(gguf.file, key, `${read.shown}${read.value.length > 1 && i > 0 ? ` (layer ${i}: ${read.value[i]})` : ''}`, `${want} in every layer`);
  };
  const k = (name: string) => `${arch}.${name}`;

  const nLayer = keys.scalar<number>(k('block_count'), GgufValueType.UINT32);
  same(k('block_count'), nLayer, spec.numLayers);
  same(k('context_length'), keys.scalar<number>(k('context_length'), GgufValueType.UINT32), spec.maxPositionEmbeddings);
  const nEmbd = keys.scalar<number>(k('embedding_length'), GgufValueType.UINT32);
  same(k('embedding_length'), nEmbd, spec.hiddenSize);
  // n_ff and n_head are optional to the loader (0 then); the model's graph needs them
  const zeros = (why: string) => ({ value: Array<number>(spec.numLayers).fill(0), why });
  sameLayers(k('feed_forward_length'), keys.perLayer(k('feed_forward_length'), spec.numLayers, zeros('no feed-forward')), spec.intermediateSize);
  const nHead = keys.perLayer(k('attention.head_count'), spec.numLayers, zeros('no attention heads'));
  sameLayers(k('attention.head_count'), nHead, spec.numHeads);
  sameLayers(k('attention.head_count_kv'), keys.perLayer(k('attention.head_count_kv'), spec.numLayers, { value: nHead.value, why: 'head_count' }), spec.numKvHeads);

  // head sizes default to n_embd / n_head (integer division), RoPE's dimensions to the key size
  const headK = keys.scalar<number>(k('attention.key_length'), GgufValueType.UINT32, { value: Math.floor(nEmbd.value / nHead.value[0]), why: 'embedding_length / head_count' });
  same(k('attention.key_length'), headK, spec.headDim);
  same(k('attention.value_length'), keys.scalar<number>(k('attention.value_length'), GgufValueType.UINT32, { value: Math.floor(nEmbd.value / nHead.value[0]), why: 'embedding_length / head_count' }), spec.headDim);
  same(k('rope.dimension_count'), keys.scalar<number>(k('rope.dimension_count'), GgufValueType.UINT32, { value: headK.value, why: 'key_length' }), spec.headDim);

  same(k('rope.freq_base'), keys.scalar<number>(k('rope.freq_base'), GgufValueType.FLOAT32, { value: 10000, why: 'its default' }), f(spec.ropeTheta));
  same(k('attention.layer_norm_rms_epsilon'), keys.scalar<number>(k('attention.layer_norm_rms_epsilon'), GgufValueType.FLOAT32), f(spec.rmsNormEps));

  // RoPE scaling: the type (default "linear") and the factor (rope.scaling.factor, else the old
  // rope.scale_linear, else none) give the position scale llama.cpp applies; type "none" never scales.
  // Llama 3 scaling is not a type there: the file holds rope_freqs instead (checkRopeFreqs).
  const type = keys.scalar<string>(k('rope.scaling.type'), GgufValueType.STRING, { value: 'linear', why: 'its default' });
  const linear = spec.ropeScaling.type === 'linear';
  if (type.value !== 'linear' && (linear || type.value !== 'none')) {
    throw mismatch(gguf.file, k('rope.scaling.type'), type.shown, linear ? '"linear"' : '"linear", "none" or absent');
  }
  const factorKey = !gguf.metadata.has(k('rope.scaling.factor')) && gguf.metadata.has(k('rope.scale_linear')) ? k('rope.scale_linear') : k('rope.scaling.factor');
  const factor = keys.scalar<number>(factorKey, GgufValueType.FLOAT32, { value: 0, why: 'no scaling' });
  const scale = type.value === 'none' || factor.value === 0 ? 1 : f(1 / factor.value);
  const wantScale = linear ? f(1 / f(spec.ropeScaling.factor)) : 1;
  if (scale !== wantScale) throw mismatch(gguf.file, factorKey, `${factor.shown} (positions scaled by ${scale})`, linear ? `${f(spec.ropeScaling.factor)}` : 'no linear scaling (absent)');

  // llama.cpp builds a causal model unless the file says otherwise
  same(k('attention.causal'), keys.scalar<boolean>(k('attention.causal'), GgufValueType.BOOL, { value: true, why: 'its default' }), true);
  // llama's loader reads vocab_size (for the model's size name only); it must still be right
  if (gguf.metadata.has(k('vocab_size'))) same(k('vocab_size'), keys.scalar<number>(k('vocab_size'), GgufValueType.UINT32), spec.vocabSize);
}

function sameValue(a: GgufValue, b: GgufValue): boolean {
  return typeof a === 'bigint' || typeof b === 'bigint' ? BigInt(a as number) === BigInt(b as number) : a === b;
}

/** The tokenizer.* metadata against what a fresh ggufVocab of the model folder gives: same keys, types and values. */
function checkTokenizer(gguf: GgufFile, expected: readonly GgufKv[], configDir: string): void {
  const want = new Map(expected.map((kv) => [kv.key, kv]));
  const from = `${join(configDir, 'tokenizer.json')} and its tokenizer_config.json give`;
  for (const [key, entry] of gguf.metadata) {
    if (key.startsWith('tokenizer.') && !want.has(key)) throw mismatch(gguf.file, key, show(entry.value), 'it absent');
  }
  for (const kv of expected) {
    const e = gguf.metadata.get(kv.key);
    if (!e) throw new GgufFormatError(gguf.file, `has no metadata "${kv.key}"; ${from} ${show(kv.value)} (${WRITER_BUG})`);
    const typeOf = (t: GgufValueType, item?: GgufValueType) => (item === undefined ? GgufValueType[t] : `ARRAY of ${GgufValueType[item]}`);
    const wantItem = kv.type === GgufValueType.ARRAY ? kv.itemType : undefined;
    if (e.type !== kv.type || e.itemType !== wantItem) throw mismatch(gguf.file, `the type of "${kv.key}"`, typeOf(e.type, e.itemType), typeOf(kv.type, wantItem));
    if (!Array.isArray(kv.value)) {
      if (!sameValue(e.value, kv.value)) throw new GgufFormatError(gguf.file, `${kv.key} is ${show(e.value)}; ${from} ${show(kv.value)} (${WRITER_BUG})`);
      continue;
    }
    const got = e.value as GgufValue[];
    const items: GgufValue[] = kv.value;
    if (got.length !== items.length) throw new GgufFormatError(gguf.file, `${kv.key} has ${got.length} entries; ${from} ${items.length} (${WRITER_BUG})`);
    const i = got.findIndex((v, j) => !sameValue(v, items[j]));
    if (i >= 0) throw new GgufFormatError(gguf.file, `${kv.key}[${i}] is ${show(got[i])}; ${from} ${show(items[i])} (${WRITER_BUG})`);
  }
}

/** The file's tensors are exactly the model's (and rope_freqs with Llama 3 RoPE scaling), with the model's shapes. */
function checkTensorSet(gguf: GgufFile, spec: ModelSpec): void {
  const want = new Map(expectedTensors(spec).map(({ name, shape }) => [ggufModelTensorName(name), [...shape].reverse()]));
  if (spec.ropeScaling.type === 'llama3') want.set('rope_freqs.weight', [spec.headDim / 2]);
  const have = new Set(gguf.tensors.map((t) => t.name));
  for (const [name] of want) {
    if (!have.has(name)) throw new GgufFormatError(gguf.file, `has no tensor "${name}"${name === 'rope_freqs.weight' ? ' (the model has Llama 3 RoPE scaling)' : ''} (${WRITER_BUG})`);
  }
  for (const t of gguf.tensors) {
    const dims = want.get(t.name);
    if (!dims) {
      const why = t.name === 'rope_freqs.weight' ? `: llama.cpp would divide RoPE's frequencies by it, and the model's RoPE scaling is ${spec.ropeScaling.type}` : '';
      throw new GgufFormatError(gguf.file, `has tensor "${t.name}", which the model does not have${why} (${WRITER_BUG})`);
    }
    if (t.dims.join() !== dims.join()) throw mismatch(gguf.file, `the shape (ne) of tensor "${t.name}"`, `[${t.dims.join(', ')}]`, `[${dims.join(', ')}]`);
  }
}

/** rope_freqs.weight (Llama 3 RoPE scaling) bit for bit against llama3RopeFactors(spec). */
async function checkRopeFreqs(gguf: GgufFile, spec: ModelSpec): Promise<void> {
  const info = gguf.tensors.find((t) => t.name === 'rope_freqs.weight');
  if (!info) return;
  if (info.type !== GgmlType.F32) throw mismatch(gguf.file, 'the type of tensor "rope_freqs.weight"', GgmlType[info.type], 'F32');
  const got = new Uint32Array((await readGgufTensor(gguf, info)).buffer);
  const wantValues = llama3RopeFactors(spec);
  const want = new Uint32Array(wantValues.buffer);
  const i = got.findIndex((bits, j) => bits !== want[j]);
  if (i >= 0) throw mismatch(gguf.file, `rope_freqs.weight[${i}]`, String(new Float32Array(got.buffer)[i]), `${wantValues[i]} (Llama 3 RoPE scaling of config.json)`);
}

/**
 * Reads a GGUF model back into a Hugging Face folder the engine opens (for the
 * export's reload check), after checking what llama.cpp takes from it against
 * `spec` and the tokenizer of `configDir` (see the top of this file). Every
 * tensor goes through our GGUF reader, dequantized, the q/k permutation
 * undone, stored in a safetensors dtype that holds its values exactly (F32 for
 * Q8_0, whose d·q products need more than 16 bits), with `configDir`'s
 * config.json. One safetensors shard per tensor (and the index naming them),
 * so only one tensor is in memory at a time.
 */
export async function ggufModelToFolder(file: string, spec: ModelSpec, configDir: string, outDir: string, chatTemplate: string | null = null): Promise<void> {
  const gguf = await readGgufHeader(file);
  const arch = new LlamaCppKeys(gguf).scalar<string>('general.architecture', GgufValueType.STRING);
  const expected = llamaCppArchitecture(spec);
  if (arch.value !== expected) throw mismatch(file, 'general.architecture', arch.shown, `"${expected}"`);
  checkHyperparameters(gguf, spec, expected);
  // chatTemplate: one the export carried into the file (carried-chat-template.ts), not in configDir's files
  const vocab = await ggufVocab(configDir, spec.vocabSize);
  checkTokenizer(gguf, ggufTokenizerKvs(expected, chatTemplate === null ? vocab : withChatTemplate(vocab, chatTemplate)), configDir);
  checkTensorSet(gguf, spec);
  await checkRopeFreqs(gguf, spec);

  const byName = new Map(gguf.tensors.map((t) => [t.name, t]));
  await makeFolder(outDir);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  let shard = 0;
  for (const { name: hfName, shape } of expectedTensors(spec)) {
    const info = byName.get(ggufModelTensorName(hfName))!;
    let values = await readGgufTensor(gguf, info);
    const order = ggufRowOrder(spec, expected, hfName);
    if (order) values = scatterRows(values, shape.length === 1 ? 1 : shape[1], order);
    const dtype = info.type === GgmlType.F16 ? 'F16' : info.type === GgmlType.BF16 ? 'BF16' : 'F32';
    const data = dtype === 'F32' ? values : encodeFloatTensor(values, dtype);
    const shardName = `tensor-${String(++shard).padStart(5, '0')}.safetensors`;
    await writeSafetensors(join(outDir, shardName), [[hfName, { dtype, shape, data }]], { format: 'pt' });
    weightMap[hfName] = shardName;
    totalSize += data.byteLength;
  }
  await writeFileAtomic(join(outDir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 1));
  await writeFileAtomic(join(outDir, 'config.json'), await readFile(join(configDir, 'config.json'), 'utf8'));
}
