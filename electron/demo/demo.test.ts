// The bundled demo: its model folder, its trained tokenizer, the task scorer,
// the BPE trainer on a hand-worked example, the seeded init, and a short demo
// run end to end through the CLI.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { runCli } from '../cli/dispatch.js';
import { fullModelFileBytes } from '../export/model-folder.js';
import { openModelFolder } from '../models/folder.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { corpusParagraphs } from './corpus.js';
import { DEMO_TOKENIZER, documents, PRETRAIN, TASK_EVAL_FRACTION } from './build-model.js';
import { demoSpec, writeInitialWeights } from './model-files.js';
import { bundledDemoFiles } from './paths.js';
import { DEMO_TRAINING } from './run-demo.js';
import { readTaskRows } from './task-data.js';
import { extractAnswer, isCorrect, splitFacts, taskRow } from './task.js';
import { byteSymbols, tokenizerJson, trainByteLevelBpe } from './tokenizer-train.js';
import { makeWorld, worldFacts } from './world.js';

const files = bundledDemoFiles();
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'demo-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

function jsonlTexts(text: string): string[] {
  return text.trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
}

describe('bundled demo model', () => {
  it('is a Llama folder of at most 10 MB that opens with its tokenizer', async () => {
    const folder = await openModelFolder(files.model);
    expect(folder.spec.architecture).toBe('LlamaForCausalLM');
    expect(folder.storedDType).toBe('F16');
    expect(folder.hasTokenizer).toBe(true);
    expect(await folderBytes(files.model)).toBeLessThanOrEqual(10 * 1000 * 1000);
    const tokenizer = await ModelTokenizer.load(files.model);
    // the tokenizer was trained for this model: its ids fill the model's vocabulary exactly
    expect(tokenizer.vocabSize).toBe(folder.spec.vocabSize);
    expect(tokenizer.bosId).toBe(folder.config.bosTokenId);
    expect(folder.config.eosTokenIds).toEqual([tokenizer.eosId]);
  });

  it('its tokenizer round-trips the held-out corpus and the task text, and knows the world words', async () => {
    const tokenizer = await ModelTokenizer.load(files.model);
    const texts = jsonlTexts(await readFile(files.baseSample, 'utf8'));
    const rows = [...(await readTaskRows(files.taskTrain)), ...(await readTaskRows(files.taskEval))];
    for (const text of [...texts, ...rows.map((r) => r.prompt + r.completion)]) {
      expect(tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }))).toBe(text);
    }
    // frequent corpus words became single tokens (merges were learned from the corpus)
    for (const word of [' fox', ' lives', ' Oakvale', ' berries']) expect(tokenizer.encode(word, { addSpecialTokens: false })).toHaveLength(1);
    // far fewer tokens than bytes on corpus text
    const bytes = Buffer.byteLength(texts[0]);
    expect(tokenizer.encode(texts[0], { addSpecialTokens: false }).length).toBeLessThan(bytes / 3);
  });

  it('its tokenizer.json is exactly what the BPE trainer learns from the regenerated corpus', async () => {
    const info = JSON.parse(await readFile(files.buildInfo, 'utf8')) as { seed: number };
    const world = makeWorld(info.seed);
    const docs = documents(corpusParagraphs(world, PRETRAIN.documents * PRETRAIN.paragraphsPerDocument, info.seed), PRETRAIN.paragraphsPerDocument);
    const shipped = JSON.parse(await readFile(join(files.model, 'tokenizer.json'), 'utf8'));
    expect(tokenizerJson(trainByteLevelBpe(docs, DEMO_TOKENIZER))).toEqual(shipped);
  });

  it('the task files hold the world facts, with held-out questions disjoint from training', async () => {
    const info = JSON.parse(await readFile(files.buildInfo, 'utf8')) as { seed: number };
    const world = makeWorld(info.seed);
    const split = splitFacts(worldFacts(world), TASK_EVAL_FRACTION, info.seed);
    expect(await readTaskRows(files.taskTrain)).toEqual(split.train.map(taskRow));
    expect(await readTaskRows(files.taskEval)).toEqual(split.eval.map(taskRow));
    const trainPrompts = new Set(split.train.map((f) => taskRow(f).prompt));
    expect(split.eval.some((f) => trainPrompts.has(taskRow(f).prompt))).toBe(false);
    expect(split.eval.length + split.train.length).toBe(world.animals.length * 3 + world.people.length * 3);
    // the corpus never uses the task's format, and the replay documents are not the measured ones
    const sample = jsonlTexts(await readFile(files.baseSample, 'utf8'));
    const replay = jsonlTexts(await readFile(files.replay, 'utf8'));
    for (const text of [...sample, ...replay]) expect(text).not.toMatch(/Question|Answer/);
    const sampleSet = new Set(sample);
    expect(replay.filter((t) => sampleSet.has(t))).toEqual([]);
  });
});

describe('chat template', () => {
  it('renders a user/assistant exchange as the task prompt and completion', async () => {
    const tokenizer = await ModelTokenizer.load(files.model);
    const [row] = await readTaskRows(files.taskEval);
    const question = row.prompt.replace(/^Question: /, '').replace(/\nAnswer:$/, '');
    const text = new Template(tokenizer.chatTemplate!).render({
      messages: [{ role: 'user', content: question }, { role: 'assistant', content: row.completion.trim() }],
      bos_token: tokenizer.bosToken, eos_token: tokenizer.eosToken,
    });
    expect(text).toBe(`${tokenizer.bosToken}${row.prompt}${row.completion}${tokenizer.eosToken}`);
  });
});

describe('task scorer', () => {
  it('takes the first line, trimmed, without a final full stop, and matches exactly', () => {
    expect(extractAnswer(' forest\nQuestion: x')).toBe('forest');
    expect(isCorrect(' forest', ' forest')).toBe(true);
    expect(isCorrect(' forest.', 'forest')).toBe(true);
    expect(isCorrect(' Oakvale\n', ' Oakvale')).toBe(true);
    expect(isCorrect(' oakvale', ' Oakvale')).toBe(false);
    expect(isCorrect(' forests', ' forest')).toBe(false);
    expect(isCorrect(' the forest', ' forest')).toBe(false);
    expect(isCorrect('', ' forest')).toBe(false);
    expect(isCorrect(' The fox lives in the forest.', ' forest')).toBe(false);
  });
});

describe('byte-level BPE trainer', () => {
  it('learns the merges of a hand-worked example and the library applies them', () => {
    // pre-tokens: "ab" x1, " ab" x2, " abc" x1. Pair counts: (a,b) 4, (Ġ,a) 3, (b,c) 1 -> merge a+b;
    // then (Ġ,ab) 3, (ab,c) 1 -> merge Ġ+ab; then (Ġab,c) 1 < minFrequency 2 -> stop.
    const bpe = trainByteLevelBpe(['ab ab ab abc'], { vocabSize: 1000, minFrequency: 2, special: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
    expect(bpe.merges).toEqual([['a', 'b'], ['Ġ', 'ab']]);
    expect(bpe.vocab.size).toBe(3 + 256 + 2);
    expect(bpe.vocab.get('Ġab')).toBe(260);
    const tok = new Tokenizer(tokenizerJson(bpe), {});
    expect(tok.encode('abc ab').tokens).toEqual(['<s>', 'ab', 'c', 'Ġab']);
    expect(tok.encode('abc ab').ids).toEqual([0, 259, 3 + 'c'.charCodeAt(0), 260]);
  });

  it('stops at the vocabulary size and maps every byte to a distinct visible symbol', () => {
    const bpe = trainByteLevelBpe(corpusParagraphs(makeWorld(3), 50, 3), { vocabSize: 270, minFrequency: 2, special: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
    expect(bpe.vocab.size).toBe(270);
    const symbols = byteSymbols();
    expect(new Set(symbols).size).toBe(256);
    expect(symbols[' '.charCodeAt(0)]).toBe('Ġ');
    expect(symbols['\n'.charCodeAt(0)]).toBe('Ċ');
    expect(symbols['a'.charCodeAt(0)]).toBe('a');
  });
});

describe('seeded initialization', () => {
  it('draws linear and embedding weights from normal(0, 0.02) and sets norms to 1', async () => {
    const spec = demoSpec({ vocabSize: 300, hidden: 64, intermediate: 128, layers: 1, heads: 4, kvHeads: 2, maxPositions: 64 });
    const dir = join(scratch, 'init');
    await writeInitialWeights(dir, spec, 7);
    const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
    const { data } = await readTensorAsFloat32(header, 'model.layers.0.mlp.gate_proj.weight');
    let sum = 0;
    let sq = 0;
    for (const x of data) {
      sum += x;
      sq += x * x;
    }
    const mean = sum / data.length;
    const std = Math.sqrt(sq / data.length - mean * mean);
    // 8192 draws: the standard error of the mean is 0.02/90, of the std about 0.02/128
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.0006);
    expect([...(await readTensorAsFloat32(header, 'model.norm.weight')).data].every((x) => x === 1)).toBe(true);
    // same seed, same bytes
    const again = join(scratch, 'init-again');
    await writeInitialWeights(again, spec, 7);
    expect(Buffer.compare(await readFile(join(dir, 'model.safetensors')), await readFile(join(again, 'model.safetensors')))).toBe(0);
  });
});

describe('peft-studio demo', () => {
  it('meets its targets (held-out accuracy from ~0 to >= 80%, base perplexity within 5%), writes demo.json and the adapter; never reuses a folder', async () => {
    const out = join(scratch, 'demo-run');
    let stdout = '';
    let stderr = '';
    const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), stderrIsTTY: false };
    // the demo exactly as `npm run demo` runs it (its default 160 steps, about 20 s on 2 cores)
    const code = await runCli(['demo', '--out', out, '--threads', '2'], io);
    expect(stderr).not.toMatch(/peft-studio: /);
    expect(code).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8'));
    expect(report.method).toBe('lora');
    expect(report.training.steps).toBe(160);
    const evalRows = await readTaskRows(files.taskEval);
    for (const key of ['before', 'after']) {
      expect(report[key].questions).toBe(evalRows.length);
      expect(report[key].samples).toHaveLength(3);
      expect(report[key].base_perplexity).toBeGreaterThan(1);
      expect(report[key].eval_loss).toBeGreaterThan(0);
    }
    // the base model does not know the format
    expect(report.before.accuracy).toBeLessThan(0.1);
    // the targets: the task is learned, the base knowledge is kept
    expect(report.after.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(report.after.eval_loss).toBeLessThan(report.before.eval_loss);
    expect(Math.abs(report.after.base_perplexity / report.before.base_perplexity - 1)).toBeLessThanOrEqual(0.05);
    expect((await stat(join(out, 'run', 'adapter_model.safetensors'))).size).toBe(report.result_bytes);
    expect(stdout).toContain(join(out, 'run'));
    expect(stdout).toContain('base-corpus perplexity');

    const again = await runCli(['demo', '--out', out, '--steps', '1', '--threads', '2'], io);
    expect(again).toBe(1);
    expect(stderr).toMatch(/already exists/);
  });

  it('--method full --no-replay trains every weight on the questions alone and saves a whole F32 model', async () => {
    const out = join(scratch, 'demo-full');
    const io = { stdout: () => undefined, stderr: () => undefined, stderrIsTTY: false };
    expect(await runCli(['demo', '--out', out, '--method', 'full', '--no-replay', '--steps', '2', '--threads', '2'], io)).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8'));
    const folder = await openModelFolder(files.model);
    expect(report.training.replay_documents).toBe(0);
    expect(report.training_memory.trainableParams).toBe(folder.parameterCount);
    expect(report.result_bytes).toBe(fullModelFileBytes(folder.spec));
    expect((await openModelFolder(join(out, 'run'))).storedDType).toBe('F32');
    const rows = (await readFile(join(out, 'data', 'task-train.tokens.jsonl'), 'utf8')).trim().split('\n');
    expect(rows).toHaveLength((await readTaskRows(files.taskTrain)).length);
  });

  it('--method dora trains LoRA\'s settings with DoRA: a PEFT DoRA adapter with a magnitude per adapted output', async () => {
    const out = join(scratch, 'demo-dora');
    const io = { stdout: () => undefined, stderr: () => undefined, stderrIsTTY: false };
    expect(await runCli(['demo', '--out', out, '--method', 'dora', '--steps', '2', '--threads', '2'], io)).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8'));
    expect(report.method).toBe('dora');
    expect(report.training.flags).toEqual({ ...DEMO_TRAINING.lora, dora: true, steps: 2 });
    const config = JSON.parse(await readFile(join(out, 'run', 'adapter_config.json'), 'utf8'));
    expect(config.use_dora).toBe(true);
    // LoRA's trainable count plus one magnitude per output of each adapted linear (all seven, every layer)
    const spec = (await openModelFolder(files.model)).spec;
    const outs = spec.numLayers * (spec.numHeads * spec.headDim + 2 * spec.numKvHeads * spec.headDim + spec.hiddenSize + 2 * spec.intermediateSize + spec.hiddenSize);
    const ins = spec.numLayers * (3 * spec.hiddenSize + spec.numHeads * spec.headDim + 2 * spec.hiddenSize + spec.intermediateSize);
    expect(report.training_memory.trainableParams).toBe(8 * (ins + outs) + outs);
  });
});
