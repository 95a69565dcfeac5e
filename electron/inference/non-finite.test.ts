// NaN weights end to end (one F16 NaN in layers.0 q_proj, as a damaged
// download holds; a NaN in an adapter's lora_A), and generate's up-front
// prompt checks:
//  - eval exits 1 naming the tensor and its count, not {"loss": null} exit 0
//    (the loss used to come out finite: attention dropped NaN rows);
//  - generate exits 1 with the same diagnosis instead of printing "";
//  - train stops at step 1 blaming the model file, not the learning rate;
//  - an adapter holding a NaN is refused when read, naming the file and tensor;
//  - a prompt token outside the vocabulary and a --max-new-tokens beyond the
//    model's positions are refused with the numbers to use.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeNonFiniteTensors, formatLearningRate } from '../engine/non-finite.js';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { executeRun } from '../runs/execute.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { patchTensorValue } from '../testing/patch-tensor.js';

const Q = 'model.layers.0.self_attn.q_proj.weight';
let clean: string;
let damaged: string;
let data: string;
let work: string;

beforeAll(async () => {
  work = tempDir('non-finite');
  clean = (await tinyModel({ seed: 4, dtype: 'F16' })).dir;
  damaged = join(work, 'nan-model');
  cpSync(clean, damaged, { recursive: true });
  patchTensorValue(join(damaged, 'model.safetensors'), Q, 17, NaN);
  data = writeJsonl(join(work, 'd.jsonl'), cycleRows(6, 12));
});

describe('a NaN in the model file', () => {
  it('eval exits 1 naming the tensor; the clean copy scores a finite loss', async () => {
    const good = await cli(['eval', '--model', clean, '--data', data, '--threads', '2']);
    expect(good.code, good.stderr).toBe(0);
    expect(Number.isFinite(JSON.parse(good.stdout).loss)).toBe(true);
    const bad = await cli(['eval', '--model', damaged, '--data', data, '--threads', '2']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`the evaluation loss on ${data} is NaN or Inf because ${Q} holds 1 NaN (the model file is damaged: ${damaged}; download the model again or restore it from a good copy)`);
  });

  it('generate exits 1 with the diagnosis instead of printing an empty answer', async () => {
    const bad = await cli(['generate', '--model', damaged, '--prompt', 'Hello', '--max-new-tokens', '3', '--threads', '2']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`the model's output (logits) for generated token 1 is NaN or Inf because ${Q} holds 1 NaN (the model file is damaged: ${damaged}`);
  });

  it('train stops at step 1 blaming the file, not the learning rate', async () => {
    const config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', damaged, '--data', data, '--out', join(work, 'run'), '--steps', '2', '--threads', '2', '--eval-split', '0']));
    const end = await executeRun(config, { resume: false, emit: () => {} });
    expect(end).toMatchObject({ type: 'failed', kind: 'non-finite', step: 0, resumable: false });
    const m = (end as { message: string }).message;
    expect(m).toMatch(/^step 1: the (loss|gradient norm) is NaN \(training diverged\): /);
    expect(m).toContain(`${Q} holds 1 NaN (the model file is damaged: ${damaged};`);
    expect(m).toContain('A lower learning rate will not help');
    expect(m).not.toContain('--lr');
  });
});

describe('a run that diverges on finite weights', () => {
  it('keeps the learning-rate advice, the rate printed plainly, and says the weights are finite', async () => {
    // lr 1e38 with 2 warmup steps: step 2's update overflows the LoRA product, step 3's loss is NaN
    const config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', clean, '--data', data, '--out', join(work, 'diverged'), '--steps', '4', '--batch-size', '2',
      '--threads', '2', '--eval-split', '0', '--lr', '1e38', '--scheduler', 'constant', '--warmup-steps', '2', '--save-every', '1']));
    const end = await executeRun(config, { resume: false, emit: () => {} });
    expect(end).toMatchObject({ type: 'failed', kind: 'non-finite', resumable: true });
    const m = (end as { message: string }).message;
    expect(m).toMatch(/(the model's weights are all finite|: training blew the weights up)\. The run stopped without applying the step/);
    expect(m).toMatch(/--lr 1e\+37\./);
    expect(m).not.toContain('damaged');
  });
});

describe('a NaN in an adapter', () => {
  it('is refused when the adapter is read (eval, merge), naming the file and the tensor', async () => {
    const run = join(work, 'adapter-run');
    const trained = await cli(['train', '--model', clean, '--data', data, '--out', run, '--steps', '1', '--threads', '2', '--eval-split', '0']);
    expect(trained.code, trained.stderr).toBe(0);
    const adapter = join(work, 'nan-adapter');
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) cpSync(join(run, f), join(adapter, f));
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
    const file = join(adapter, 'adapter_model.safetensors');
    patchTensorValue(file, key, 3, NaN);
    const expected = `${file}: tensor "${key}" holds 1 NaN (the first at element 3): the adapter is damaged, or its training diverged.`;
    const ev = await cli(['eval', '--model', clean, '--adapter', adapter, '--data', data, '--threads', '2']);
    expect(ev.code).toBe(1);
    expect(ev.stderr).toContain(expected);
    const merged = await cli(['merge', '--model', clean, '--adapter', adapter, '--out', join(work, 'merged')]);
    expect(merged.code).toBe(1);
    expect(merged.stderr).toContain(expected);
  });
});

describe('generate checks the prompt up front', () => {
  it('a token outside the vocabulary gets the message train uses, not the engine\'s', async () => {
    // a 400-token tokenizer on a 320-token model: its longer merges have ids >= 320
    const bigger = (await tinyModel({ seed: 4, vocab: 400 })).dir;
    const mixed = join(work, 'mixed');
    cpSync(clean, mixed, { recursive: true });
    cpSync(join(bigger, 'tokenizer.json'), join(mixed, 'tokenizer.json'));
    const r = await cli(['generate', '--model', mixed, '--prompt', 'training the adapter and the tokenizer', '--max-new-tokens', '2', '--threads', '2']);
    expect(r.code).toBe(1);
    const m = /the prompt: the tokenizer gave id (\d+), outside the model's vocabulary \[0, 320\); the tokenizer does not belong to this model/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(320);
    expect(r.stderr).not.toContain('decode:');
  });

  it('--max-new-tokens beyond the positions says the most that fits', async () => {
    const r = await cli(['generate', '--model', clean, '--prompt', 'Hello', '--max-new-tokens', '100000', '--threads', '2']);
    expect(r.code).toBe(1);
    const m = /prompt \((\d+) tokens\) \+ --max-new-tokens 100000 exceeds the model's 512 positions; use --max-new-tokens (\d+) or less/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(512);
  });
});

describe('the wording', () => {
  it('learning rates print as people write them', () => {
    expect(formatLearningRate(2e-5 / 10)).toBe('0.000002');
    expect(formatLearningRate(1e-4 / 10)).toBe('0.00001');
    expect(formatLearningRate(5e-7 / 10)).toBe('5e-8');
    expect(formatLearningRate(1e38 / 10)).toBe('1e+37');
  });

  it('names at most 3 tensors, then a count', () => {
    const t = (name: string, nan: number, inf = 0) => ({ name, trainable: false, nan, inf });
    expect(describeNonFiniteTensors([t('a', 1), t('b', 0, 2), t('c', 3, 1), t('d', 1), t('e', 1)], { model: '/m' })).toBe(
      'a holds 1 NaN, b holds 2 Inf, c holds 3 NaN and 1 Inf, and 2 more tensors (the model file is damaged: /m; download the model again or restore it from a good copy)');
    expect(describeNonFiniteTensors([], { model: '/m' })).toBeNull();
  });
});
