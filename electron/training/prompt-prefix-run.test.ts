// Prompt tuning and prefix tuning end to end on the real engine and a tiny
// random Llama with grouped-query attention (4 heads, 2 key/value heads):
// training through the CLI learns and writes PEFT's files; an adapter
// exported from an engine and imported by `eval --adapter` gives the same
// loss; greedy generation with an adapter picks the argmax of the training
// forward; the TEXT init copies embedding rows; a killed prefix-projection
// run resumes bit-exactly; inspect's figures match the files.
import { readFileSync, statSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PREFIX_ENCODER_TENSORS, PROMPT_TENSOR } from '../adapters/layout.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';
import { standardNormals } from '../adapters/prompt-init.js';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { loadAddon } from '../engine/load.js';
import type { NativeEngine } from '../engine/native.js';
import { evaluateExamples } from '../inference/eval.js';
import { generate } from '../inference/generate.js';
import { argmax } from '../inference/sampling.js';
import { TrainingRun } from '../runs/manager.js';
import { createEngine, openModelWithTokenizer, openSession } from '../session.js';
import type { TinyModel } from '../testing/tiny-model.js';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { saveAdapterFolder } from './adapter-files.js';
import { makeBatch } from './batches.js';
import { parseJsonl, type Example } from './data.js';
import { setUpMethod } from './run.js';
import type { AdapterLayout } from '../adapters/layout.js';

process.env.PEFT_STUDIO_HOME ??= tempDir('home');
const THREADS = ['--threads', '2'];
/** the tiny model has 512 positions: the default --seq-len 512 leaves no room for virtual tokens */
const SEQ = ['--seq-len', '64'];
const VOCAB = 320;

let model: TinyModel;
let dir: string;
let data: string;
let examples: Example[];

/**
 * The tiny model with its linear layers at torch's scale (std ~ 1/sqrt(fan_in)
 * = 0.125 instead of the fixture's 0.02): a random model whose attention and
 * logits respond to context, as a trained model's do. At 0.02 every output
 * is near-uniform whatever the input, and input-space methods (which only
 * change what the frozen layers see) cannot move the loss: prompt tuning
 * plateaus 0.2 nats below the start, which would test nothing.
 */
async function contextSensitiveModel(): Promise<TinyModel> {
  const m = await tinyModel({ seed: 5, hidden: 64, heads: 4, kvHeads: 2, vocab: VOCAB });
  const scaled: [string, TensorToWrite][] = [...m.tensors].map(([name, t]) => {
    const data = /_proj\.weight$|^lm_head\.weight$/.test(name) ? t.data.map((v) => v * 6) : t.data;
    m.tensors.set(name, { ...t, data });
    return [name, { dtype: 'F32', shape: t.shape, data }];
  });
  expect(m.weightFiles).toEqual(['model.safetensors']);
  await writeSafetensors(join(m.dir, 'model.safetensors'), scaled);
  return m;
}

beforeAll(async () => {
  model = await contextSensitiveModel();
  dir = tempDir('prompt-prefix');
  data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(16, 24));
  const { tokenizer } = await openModelWithTokenizer(model.dir);
  examples = parseJsonl(readFileSync(data, 'utf8'), data, tokenizer, { seqLen: 64, vocabSize: VOCAB });
});

const losses = (out: string) => readJsonLines(join(out, 'metrics.jsonl')).filter((m) => 'loss' in m).map((m) => m.loss);
const evalLoss = async (...argv: string[]) => {
  const r = await cli(['eval', '--model', model.dir, '--data', data, '--batch-size', '4', ...THREADS, ...argv]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { loss: number; tokens: number };
};

describe('training through the CLI', () => {
  it('prompt tuning learns the task and saves PEFT\'s PROMPT_TUNING adapter', async () => {
    const out = join(dir, 'prompt');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'prompt', '--virtual-tokens', '8',
      '--prompt-init', 'sample-vocab', '--steps', '40', '--batch-size', '4', '--scheduler', 'constant', ...SEQ, ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const l = losses(out);
    expect(l).toHaveLength(40);
    expect(l[0]).toBeGreaterThan(Math.log(VOCAB) - 0.5);
    expect(l[39]).toBeLessThan(l[0] - 2.5);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 8, token_dim: 64, num_attention_heads: 4, prompt_tuning_init: 'SAMPLE_VOCAB', inference_mode: true });
    // the adapter, imported by eval, scores the task far better than the base
    const base = await evalLoss();
    const tuned = await evalLoss('--adapter', out);
    // PEFT prefixes the labels with num_virtual_tokens x -100, so after the
    // shift the last virtual token predicts each row's first token: one more
    // scored token per row than the base model scores
    expect(tuned.tokens).toBe(base.tokens + examples.length);
    expect(tuned.loss).toBeLessThan(base.loss - 2);
  });

  it('prefix tuning with projection learns, saves the folded table, and checkpoints the MLP', async () => {
    const out = join(dir, 'prefix');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'prefix', '--virtual-tokens', '6',
      '--prefix-projection', '--encoder-hidden-size', '48', '--steps', '40', '--batch-size', '4', '--scheduler', 'constant', '--save-every', '20', ...SEQ, ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const l = losses(out);
    expect(l[39]).toBeLessThan(l[0] - 3);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'PREFIX_TUNING', num_virtual_tokens: 6, token_dim: 32, num_attention_heads: 2, prefix_projection: true, encoder_hidden_size: 48 });
    // [nvt, num_layers * 2 * head_dim * kv_heads] = [6, 2 * 2 * 16 * 2]
    const header = await readSafetensorsHeader(join(out, 'adapter_model.safetensors'));
    expect(header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([['prompt_embeddings', 'F32', [6, 128]]]);
    expect(header.metadata).toEqual({ format: 'pt' });
    // the checkpoint keeps the embedding and the MLP themselves
    const encoder = await readSafetensorsHeader(join(out, 'checkpoints', 'step-20', 'prefix_encoder.safetensors'));
    expect(encoder.tensors.map((t) => t.name).sort()).toEqual([...PREFIX_ENCODER_TENSORS].sort());
    expect(encoder.byName.get('prefix_encoder.transform.2.weight')!.shape).toEqual([128, 48]);
    expect(existsSync(join(out, 'prefix_encoder.safetensors'))).toBe(false); // the final adapter is PEFT's alone
    expect(readdirSync(join(out, 'checkpoints', 'step-20')).sort()).toEqual(['COMPLETE', 'README.md', 'adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'prefix_encoder.safetensors', 'trainer_state.json']);
    const tuned = await evalLoss('--adapter', out);
    expect(tuned.loss).toBeLessThan((await evalLoss()).loss - 3);
    // nothing to merge: the message says why and what to do instead
    const merge = await cli(['merge', '--model', model.dir, '--adapter', out, '--out', join(dir, 'merged-prefix')]);
    expect(merge.code).toBe(1);
    expect(merge.stderr).toContain('a prefix tuning adapter adds virtual tokens, not weight updates, so there is nothing to merge');
  });

  it('prefix tuning packs rows and trains with gradient checkpointing; prompt tuning on a 4-bit base', async () => {
    const packed = join(dir, 'prefix-pack');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', packed, '--method', 'prefix', '--virtual-tokens', '4', '--pack', '--seq-len', '64',
      '--gradient-checkpointing', '--lr', '3e-2', '--steps', '20', '--batch-size', '2', '--scheduler', 'constant', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const l = losses(packed);
    expect(l[19]).toBeLessThan(l[0] - 1);

    const q = join(dir, 'prompt-nf4');
    const rq = await cli(['train', '--model', model.dir, '--data', data, '--out', q, '--method', 'prompt', '--virtual-tokens', '4', '--quant', 'nf4',
      '--steps', '15', '--batch-size', '4', '--scheduler', 'constant', ...SEQ, ...THREADS]);
    expect(rq.code, rq.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(q, 'run.json'), 'utf8')).config.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    const lq = losses(q);
    expect(lq[14]).toBeLessThan(lq[0] - 1);
    // the adapter scores the same on the 4-bit base the run used as the run's own last evaluation would
    const on4bit = await evalLoss('--adapter', q, '--quant', 'nf4');
    // without --quant the adapter's run.json brings the same 4-bit base along
    const auto = await evalLoss('--adapter', q);
    expect(auto.loss).toBe(on4bit.loss);
  });

  it('refuses prompt tuning with --pack, and an --init-adapter of another kind', async () => {
    const pack = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'x'), '--method', 'prompt', '--pack', ...THREADS]);
    expect(pack.code).toBe(2);
    expect(pack.stderr).toContain('--pack cannot be used with --method prompt');
    const wrong = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'y'), '--method', 'prefix', '--init-adapter', join(dir, 'prompt'), '--steps', '1', ...SEQ, ...THREADS]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--init-adapter .*prompt: is a PROMPT_TUNING adapter, but --method prefix trains prefix tuning/);
    // the same kind continues from the adapter's values
    const cont = join(dir, 'prompt-continued');
    const ok = await cli(['train', '--model', model.dir, '--data', data, '--out', cont, '--method', 'prompt', '--init-adapter', join(dir, 'prompt'), '--steps', '1', '--lr', '0', ...SEQ, ...THREADS]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(cont, 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'prompt', 'adapter_model.safetensors')))).toBe(true);
  });
});

/** An engine with an adapter of this layout and non-trivial values, as training leaves it. */
async function engineWith(layout: AdapterLayout): Promise<{ engine: NativeEngine; dispose(): void }> {
  const { folder } = await openModelWithTokenizer(model.dir);
  const engine = createEngine(loadAddon(), folder, { threads: 2 });
  if (layout.kind === 'prompt') {
    engine.setupPromptTuning({ numVirtualTokens: layout.prompt.numVirtualTokens, init: standardNormals(layout.prompt.numVirtualTokens * 64, 7) });
  } else if (layout.kind === 'prefix') {
    const { numVirtualTokens, projection, encoderHiddenSize } = layout.prefix;
    engine.setupPrefixTuning({ numVirtualTokens, projection: projection ? { encoderHiddenSize: encoderHiddenSize ?? 32 } : null, seed: 3 });
  }
  return { engine, dispose: () => engine.dispose() };
}

const LAYOUTS: [string, AdapterLayout][] = [
  ['prompt', { kind: 'prompt', prompt: { numVirtualTokens: 5, init: 'RANDOM', initText: null } }],
  ['prefix', { kind: 'prefix', prefix: { numVirtualTokens: 5, projection: false, encoderHiddenSize: null } }],
  ['prefix-projection', { kind: 'prefix', prefix: { numVirtualTokens: 5, projection: true, encoderHiddenSize: 40 } }],
];

describe('export -> import', () => {
  it.each(LAYOUTS)('%s: eval --adapter gives the loss the engine had before the export', async (name, layout) => {
    const { engine, dispose } = await engineWith(layout);
    try {
      const before = await evaluateExamples(engine, examples, 4);
      const { folder } = await openModelWithTokenizer(model.dir);
      await saveAdapterFolder(join(dir, `export-${name}`), { engine, spec: folder.spec, layout, baseModel: model.dir });
      const base = await evalLoss();
      expect(Math.abs(before.loss - base.loss)).toBeGreaterThan(1e-3); // the adapter matters
      const after = await evalLoss('--adapter', join(dir, `export-${name}`));
      expect(after.tokens).toBe(before.tokens);
      if (name === 'prefix-projection') {
        // the MLP's output is stored; the forward from the stored table may round differently
        expect(Math.abs(after.loss - before.loss)).toBeLessThan(1e-5 * before.loss);
      } else {
        expect(after.loss).toBe(before.loss);
      }
    } finally {
      dispose();
    }
  });
});

describe('generation with an adapter', () => {
  it.each(LAYOUTS.slice(0, 2))('%s: greedy tokens are the argmax of the training forward at every step', async (name) => {
    const session = await openSession(model.dir, { threads: 2, adapter: join(dir, `export-${name}`) });
    try {
      const prompt = session.tokenizer.encode('the cat');
      const { tokens } = await generate(session.engine, prompt, { temperature: 0, topP: 1, seed: 0, stopTokenIds: [], maxPositions: 512 - 5, maxNewTokens: 5 });
      expect(tokens).toHaveLength(5);
      for (let k = 0; k < tokens.length; k++) {
        const context = [...prompt, ...tokens.slice(0, k)];
        // -log p(c | context) from the training forward (evaluate), for every candidate c
        const nll = new Float64Array(VOCAB);
        for (let c = 0; c < VOCAB; c++) {
          const labels = new Array(context.length + 1).fill(-100);
          labels[context.length] = c;
          const r = await session.engine.evaluate(makeBatch([{ inputIds: [...context, c], labels }]));
          nll[c] = r.lossSum;
        }
        let best = 0;
        for (let c = 1; c < VOCAB; c++) if (nll[c] < nll[best]) best = c;
        expect(best, `step ${k}`).toBe(tokens[k]);
        // and the cached decode gives the same distribution
        session.engine.resetCache(context.length + 1);
        const logits = await session.engine.decode(Int32Array.from(context));
        expect(argmax(logits)).toBe(tokens[k]);
        const max = Math.max(...logits);
        const logZ = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
        expect(Math.abs(logZ - logits[tokens[k]] - nll[tokens[k]])).toBeLessThan(1e-4);
      }
      const r = await cli(['generate', '--model', model.dir, '--adapter', join(dir, `export-${name}`), '--prompt', 'the cat', '--max-new-tokens', '5', '--temperature', '0', ...THREADS]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(session.tokenizer.decode(tokens, { skipSpecialTokens: true }) + '\n');
    } finally {
      session.dispose();
    }
  });
});

describe('the Node-side init through the engine', () => {
  it('TEXT puts exactly the embedding rows of tokenizer(text)["input_ids"] into prompt_embeddings', async () => {
    const { folder, tokenizer } = await openModelWithTokenizer(model.dir);
    const engine = createEngine(loadAddon(), folder, { threads: 2 });
    try {
      const config = { ...trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', join(dir, 'unused'), '--method', 'prompt', '--virtual-tokens', '7', '--prompt-init-text', 'Sort:'])) };
      const layout = await setUpMethod(engine, folder, config, tokenizer);
      expect(layout).toEqual({ kind: 'prompt', prompt: { numVirtualTokens: 7, init: 'TEXT', initText: 'Sort:' } });
      const ids = tokenizer.encode('Sort:');
      const table = engine.getTensor(PROMPT_TENSOR);
      const embed = model.tensors.get('model.embed_tokens.weight')!.data;
      for (let v = 0; v < 7; v++) {
        const id = ids[v % ids.length];
        expect(table.subarray(v * 64, (v + 1) * 64)).toEqual(embed.subarray(id * 64, (id + 1) * 64));
      }
      expect(engine.parameters().filter((p) => p.trainable)).toEqual([{ name: PROMPT_TENSOR, shape: [7, 64], trainable: true }]);
    } finally {
      engine.dispose();
    }
  });
});

describe('resume', () => {
  it.each([
    ['prompt', ['--method', 'prompt', '--prompt-init', 'sample-vocab']],
    ['prefix', ['--method', 'prefix']],
    ['prefix-projection', ['--method', 'prefix', '--prefix-projection']],
  ])('a killed %s run resumes bit-exactly (with projection the MLP comes back from prefix_encoder.safetensors)', async (name, method) => {
    const flags = [...method, '--virtual-tokens', '4', '--steps', '8', '--batch-size', '2', '--save-every', '2', '--seq-len', '64', '--threads', '2'];
    const configFor = (out: string) => trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', out, ...flags]));
    const runOnce = async (out: string, options: { resume?: boolean; crashAt?: string } = {}) => {
      const env = options.crashAt ? { ...process.env, PEFT_STUDIO_CRASH_AT: options.crashAt } : undefined;
      const run = new TrainingRun({ config: configFor(out), resume: options.resume, fork: env ? { env } : undefined });
      let startStep: number | null = null;
      run.onEvent((e) => {
        if (e.type === 'started') startStep = e.startStep;
      });
      run.start();
      const end = await run.wait();
      return { type: end.type, startStep };
    };
    const baseline = join(dir, `resume-baseline-${name}`);
    expect((await runOnce(baseline)).type).toBe('finished');
    const killed = join(dir, `resume-killed-${name}`);
    expect((await runOnce(killed, { crashAt: 'step-start@6' })).type).toBe('failed');
    expect(readdirSync(join(killed, 'checkpoints'))).toContain('step-4');
    // it continues from step-4's tensors (a restart from 0 would also end bit-exact, so check where it began)
    expect(await runOnce(killed, { resume: true })).toEqual({ type: 'finished', startStep: 4 });
    expect(readFileSync(join(killed, 'adapter_model.safetensors')).equals(readFileSync(join(baseline, 'adapter_model.safetensors')))).toBe(true);
    expect(losses(killed)).toEqual(losses(baseline));
  });
});

describe('inspect', () => {
  it('lists prompt and prefix tuning: trainable parameters, their state and the adapter file size', async () => {
    const r = await cli(['inspect', model.dir, '--virtual-tokens', '8', '--encoder-hidden-size', '48']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout).memory;
    const width = 2 * 2 * 16 * 2;
    // PEFT's PrefixEncoder with projection: Embedding(nvt, token_dim) -> Linear(token_dim, enc) -> tanh -> Linear(enc, width), token_dim = head_dim * kv_heads = 32
    const params = { prompt: 8 * 64, prefix: 8 * width, prefix_projection: 8 * 32 + 32 * 48 + 48 + 48 * width + width };
    for (const [row, n] of Object.entries(params)) {
      expect(m[row].trainable_params, row).toBe(n);
      expect(m[row].gradients, row).toBe(4 * n);
      expect(m[row].optimizer_state, row).toBe(8 * n);
    }
    // the saved file: the prompt run above has 8 virtual tokens
    expect(m.prompt.adapter_bytes).toBe(statSync(join(dir, 'prompt', 'adapter_model.safetensors')).size);
    expect(m.prefix.adapter_bytes).toBe(m.prefix_projection.adapter_bytes);
  });
});
