// The initial virtual-token embeddings of prompt tuning, as PEFT's
// PromptEmbedding makes them (peft/tuners/prompt_tuning/model.py):
//   RANDOM        nn.Embedding's default init, N(0, 1) per element (here from
//                 the project's seeded generator, so a run is reproducible);
//   TEXT          tokenizer(init_text)["input_ids"] (special tokens included, as
//                 the tokenizer adds them), repeated or cut to num_virtual_tokens,
//                 and those rows of the model's embedding table copied;
//   SAMPLE_VOCAB  num_virtual_tokens token ids drawn uniformly from
//                 [0, vocab_size) and those rows copied.
import { open } from 'node:fs/promises';
import type { ModelSpec, WeightRef } from '../engine/native.js';
import { Prng } from '../random/prng.js';
import { decodeFloatTensor } from '../safetensors/convert.js';
import type { AdapterPrompt } from './prompt-config.js';

/** Generator streams of the inits (distinct from the data shuffle's stream 0). */
const RANDOM_STREAM = 0x70726f6d; // "prom"
const SAMPLE_VOCAB_STREAM = 0x766f6361; // "voca"

export const EMBEDDING_WEIGHT = 'model.embed_tokens.weight';

/** `count` independent N(0, 1) values (Box-Muller on the seeded generator). */
export function standardNormals(count: number, seed: number): Float32Array {
  const rng = new Prng(seed, RANDOM_STREAM);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = 1 - rng.nextFloat(); // (0, 1]: log stays finite
    const u2 = rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** PEFT's TEXT rule: the text's ids cut to, or repeated up to, numVirtualTokens. */
export function textInitTokenIds(textIds: readonly number[], numVirtualTokens: number): number[] {
  if (textIds.length === 0) throw new Error('--prompt-init-text gives no tokens; give a text the tokenizer turns into at least one token');
  const out: number[] = [];
  while (out.length < numVirtualTokens) out.push(...textIds);
  return out.slice(0, numVirtualTokens);
}

/** SAMPLE_VOCAB: numVirtualTokens ids uniform in [0, vocabSize). */
export function sampleVocabTokenIds(vocabSize: number, numVirtualTokens: number, seed: number): number[] {
  const rng = new Prng(seed, SAMPLE_VOCAB_STREAM);
  return Array.from({ length: numVirtualTokens }, () => rng.nextInt(vocabSize));
}

/** What an init needs from the model: its tokenizer and rows of its embedding table. */
export interface PromptInitSource {
  /** tokenizer(text)["input_ids"]: with the special tokens the tokenizer adds */
  tokenize(text: string): number[];
  /** rows of model.embed_tokens.weight for these ids, as float32, row after row */
  embeddingRows(ids: readonly number[]): Promise<Float32Array>;
}

export interface PromptInit {
  /** [numVirtualTokens * hiddenSize] */
  table: Float32Array;
  /** the token ids whose embeddings were copied (TEXT, SAMPLE_VOCAB); null for RANDOM */
  tokenIds: number[] | null;
}

export async function promptInitTable(prompt: AdapterPrompt, spec: ModelSpec, seed: number, source: PromptInitSource): Promise<PromptInit> {
  const nvt = prompt.numVirtualTokens;
  switch (prompt.init) {
    case 'RANDOM':
      return { table: standardNormals(nvt * spec.hiddenSize, seed), tokenIds: null };
    case 'TEXT': {
      if (prompt.initText === null || prompt.initText === '') throw new Error('--prompt-init text needs --prompt-init-text with the text to start from');
      const ids = textInitTokenIds(source.tokenize(prompt.initText), nvt);
      return { table: await source.embeddingRows(ids), tokenIds: ids };
    }
    case 'SAMPLE_VOCAB': {
      const ids = sampleVocabTokenIds(spec.vocabSize, nvt, seed);
      return { table: await source.embeddingRows(ids), tokenIds: ids };
    }
  }
}

/**
 * Rows of the embedding table read straight from the model's safetensors file
 * (only those rows: the table of a large vocabulary stays on disk), converted
 * to float32 as the engine converts it.
 */
export async function embeddingRowsFromWeights(weights: readonly WeightRef[], spec: ModelSpec, ids: readonly number[]): Promise<Float32Array> {
  const ref = weights.find((w) => w.name === EMBEDDING_WEIGHT);
  if (!ref) throw new Error(`the model has no ${EMBEDDING_WEIGHT}; it cannot give embeddings for the prompt init`);
  if (ref.dtype === 'U8') throw new Error(`${ref.file}: ${EMBEDDING_WEIGHT} is stored quantized; the prompt init needs float embeddings`);
  const bytesPer = ref.dtype === 'F32' ? 4 : 2;
  const rowBytes = spec.hiddenSize * bytesPer;
  const out = new Float32Array(ids.length * spec.hiddenSize);
  const handle = await open(ref.file, 'r');
  try {
    const buf = new Uint8Array(rowBytes);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) throw new Error(`token id ${id} is outside the model's vocabulary (0..${spec.vocabSize - 1})`);
      const { bytesRead } = await handle.read(buf, 0, rowBytes, ref.offset + id * rowBytes);
      if (bytesRead !== rowBytes) throw new Error(`${ref.file}: truncated inside ${EMBEDDING_WEIGHT} (row ${id})`);
      out.set(decodeFloatTensor(buf, ref.dtype), i * spec.hiddenSize);
    }
  } finally {
    await handle.close();
  }
  return out;
}
