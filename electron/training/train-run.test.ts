// End-to-end training through the CLI on tiny random models (real engine,
// real files): learning, determinism, gradient accumulation, continuing from
// an adapter, full fine-tuning.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import type { TinyModel } from '../testing/tiny-model.js';
import { cli, cycleRows, readJsonLines, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { maxAbs, maxAbsDiff } from '../testing/compare.js';

const THREADS = ['--threads', '2'];

async function evalLoss(model: string, data: string, adapter?: string): Promise<{ loss: number; perplexity: number; tokens: number }> {
  const r = await cli(['eval', '--model', model, '--data', data, ...(adapter ? ['--adapter', adapter] : []), '--batch-size', '4', ...THREADS]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

async function adapterTensors(dir: string): Promise<Map<string, Float32Array>> {
  const header = await readSafetensorsHeader(join(dir, 'adapter_model.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const t of header.tensors) out.set(t.name, (await readTensorAsFloat32(header, t.name)).data);
  return out;
}

describe('train (LoRA) end to end', () => {
  let model: TinyModel;
  let data: string;
  let dir: string;

  beforeAll(async () => {
    model = await tinyModel({ seed: 3 });
    dir = tempDir('train');
    data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(16, 24));
  });

  it('learns a repeated pattern: the loss falls far below chance', async () => {
    // LoRA cannot touch lm_head, so with N(0, 0.02) weights the best logit is
    // about |h| * |w| = sqrt(H) * 0.02 * sqrt(H) = 0.02 H; hidden 256 allows
    // ~5 nats of margin (loss floor ~1.1), where hidden 64 would stop at ~4.4.
    const wide = await tinyModel({ seed: 3, hidden: 256, intermediate: 512 });
    const out = join(dir, 'learn');
    const r = await cli(['train', '--model', wide.dir, '--data', data, '--out', out, '--targets', 'all-linear', '--rank', '8',
      '--lr', '1e-2', '--steps', '40', '--batch-size', '4', '--scheduler', 'constant', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.steps).toBe(40);

    const rows = readJsonLines(join(out, 'metrics.jsonl'));
    expect(rows).toHaveLength(40);
    expect(Object.keys(rows[0]).sort()).toEqual(['elapsed_s', 'grad_norm', 'input_tokens', 'input_tokens_per_s', 'loss', 'lr', 'step', 'tokens', 'tokens_per_s']);
    expect(rows.map((m) => m.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(rows.every((m) => m.lr === 1e-2)).toBe(true);
    // A random N(0, 0.02) model is near-uniform: the first loss is about ln(vocab).
    expect(rows[0].loss).toBeGreaterThan(Math.log(320) - 0.3);
    expect(rows[0].loss).toBeLessThan(Math.log(320) + 0.3);
    expect(rows[39].loss).toBeLessThan(1.5);

    const base = await evalLoss(wide.dir, data);
    const tuned = await evalLoss(wide.dir, data, out);
    expect(base.tokens).toBe(tuned.tokens);
    expect(base.loss).toBeGreaterThan(5);
    expect(tuned.loss).toBeLessThan(base.loss / 3);
    expect(tuned.perplexity).toBeCloseTo(Math.exp(tuned.loss), 10);

    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config.lora).toEqual({ rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false, dora: false, init: 'default', layers: null });
    expect(run.resolved.total_steps).toBe(40);
    const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, task_type: 'CAUSAL_LM' });
  });

  it('is deterministic: same seed and threads give identical adapter bytes', async () => {
    const args = (out: string, seed: string) => ['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '6', '--batch-size', '2',
      '--dropout', '0.1', '--eval-split', '0.25', '--eval-every', '3', '--lr', '5e-3', '--seed', seed, ...THREADS];
    for (const [name, seed] of [['a', '7'], ['b', '7'], ['c', '8']]) expect((await cli(args(join(dir, `det-${name}`), seed))).code).toBe(0);
    const bytes = (n: string) => readFileSync(join(dir, `det-${n}`, 'adapter_model.safetensors'));
    expect(bytes('a').equals(bytes('b'))).toBe(true);
    expect(bytes('a').equals(bytes('c'))).toBe(false);
    const strip = (rows: Record<string, number>[]) => rows.map(({ step, loss, eval_loss, grad_norm }) => ({ step, loss, eval_loss, grad_norm }));
    expect(strip(readJsonLines(join(dir, 'det-a', 'metrics.jsonl')))).toEqual(strip(readJsonLines(join(dir, 'det-b', 'metrics.jsonl'))));
    // eval rows at steps 3 and 6
    expect(readJsonLines(join(dir, 'det-a', 'metrics.jsonl')).filter((m) => 'eval_loss' in m).map((m) => m.step)).toEqual([3, 6]);
  });

  it('gradient checkpointing recomputes exactly: same adapter bytes, dropout included', async () => {
    const args = (out: string) => ['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '4', '--lr', '1e-2',
      '--dropout', '0.1', '--targets', 'all-linear', '--batch-size', '3', ...THREADS];
    expect((await cli(args(join(dir, 'gc-off')))).code).toBe(0);
    expect((await cli([...args(join(dir, 'gc-on')), '--gradient-checkpointing'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'gc-on', 'run.json'), 'utf8')).config.gradientCheckpointing).toBe(true);
    expect(readFileSync(join(dir, 'gc-on', 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'gc-off', 'adapter_model.safetensors')))).toBe(true);
  });

  it('gradient accumulation 2 x 1 equals one batch of 2 (loss and adapter)', async () => {
    // SGD, not AdamW: the two runs sum the same gradients in a different order
    // (one GEMM over 2 rows vs two over 1), and AdamW's g / sqrt(v) would blow
    // those last-bit differences up for near-zero gradient elements.
    const common = ['--model', model.dir, '--data', data, '--steps', '5', '--optimizer', 'sgd', '--lr', '2', '--targets', 'q_proj,v_proj,down_proj', '--seed', '5', ...THREADS];
    const outA = join(dir, 'accum');
    const outB = join(dir, 'batch');
    expect((await cli(['train', ...common, '--out', outA, '--batch-size', '1', '--grad-accum', '2'])).code).toBe(0);
    expect((await cli(['train', ...common, '--out', outB, '--batch-size', '2', '--grad-accum', '1'])).code).toBe(0);
    const mA = readJsonLines(join(outA, 'metrics.jsonl'));
    const mB = readJsonLines(join(outB, 'metrics.jsonl'));
    for (let i = 0; i < 5; i++) {
      expect(mA[i].tokens).toBe(mB[i].tokens);
      expect(Math.abs(mA[i].loss - mB[i].loss)).toBeLessThan(1e-6 * mB[i].loss);
    }
    const a = await adapterTensors(outA);
    const b = await adapterTensors(outB);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [name, t] of a) {
      const scale = Math.max(maxAbs(b.get(name)!), 1e-3);
      expect(maxAbsDiff(t, b.get(name)!) / scale, name).toBeLessThan(1e-5);
    }
    // the run did move B away from zero, so the comparison means something
    expect(maxAbs(b.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!)).toBeGreaterThan(1e-3);
  });

  it('a fresh adapter (B = 0, no steps) scores exactly the base loss', async () => {
    const out = join(dir, 'zero');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '0', '--lora-init', 'gaussian', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const B = (await adapterTensors(out)).get('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight')!;
    expect(maxAbs(B)).toBe(0);
    expect(await evalLoss(model.dir, data, out)).toEqual(await evalLoss(model.dir, data));
  });

  it('--init-adapter continues from an adapter and takes its rank, alpha, targets and rslora', async () => {
    const first = join(dir, 'first');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', first, '--rank', '4', '--alpha', '8', '--rslora',
      '--targets', 'k_proj,o_proj,up_proj', '--layers', '1', '--steps', '10', '--lr', '1e-2', '--batch-size', '4', ...THREADS])).code).toBe(0);
    // 0 more steps: the adapter comes back unchanged, with the same settings
    const same = join(dir, 'same');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', same, '--init-adapter', first, '--steps', '0', ...THREADS])).code).toBe(0);
    expect(readFileSync(join(same, 'adapter_model.safetensors')).equals(readFileSync(join(first, 'adapter_model.safetensors')))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(same, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ r: 4, lora_alpha: 8, use_rslora: true, target_modules: ['k_proj', 'o_proj', 'up_proj'], layers_to_transform: [1] });
    // more steps start where the first run ended: the first step's loss is the trained one, not the base one
    const more = join(dir, 'more');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', more, '--init-adapter', first, '--steps', '2', '--lr', '1e-2', '--batch-size', '16', ...THREADS])).code).toBe(0);
    const trained = await evalLoss(model.dir, data, first);
    const firstStep = readJsonLines(join(more, 'metrics.jsonl'))[0];
    expect(Math.abs(firstStep.loss - trained.loss)).toBeLessThan(1e-5 * trained.loss); // same 16 rows, same weights
    expect(trained.loss).toBeLessThan((await evalLoss(model.dir, data)).loss - 0.5);
  });

  it('saves checkpoints every --save-every steps', async () => {
    const out = join(dir, 'ckpt');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '4', '--save-every', '2', ...THREADS])).code).toBe(0);
    for (const step of [2, 4]) {
      expect(readFileSync(join(out, 'checkpoints', `step-${step}`, 'adapter_config.json'), 'utf8')).toContain('"peft_type": "LORA"');
    }
    expect(readFileSync(join(out, 'checkpoints', 'step-4', 'adapter_model.safetensors')).equals(readFileSync(join(out, 'adapter_model.safetensors')))).toBe(true);
  });
});

describe('train (full fine-tuning) end to end', () => {
  it('lowers the loss and writes a model folder that loads again', async () => {
    const model = await tinyModel({ seed: 4, dtype: 'BF16' });
    const dir = tempDir('full');
    const data = writeJsonl(join(dir, 'cycle.jsonl'), cycleRows(12, 20));
    const out = join(dir, 'out');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--method', 'full', '--lr', '1e-2',
      '--steps', '20', '--batch-size', '4', '--scheduler', 'cosine', '--warmup-steps', '2', ...THREADS]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readJsonLines(join(out, 'metrics.jsonl'));
    expect(rows[0].lr).toBe(0); // warmup starts at 0, as in transformers
    expect(rows[1].lr).toBeCloseTo(5e-3, 12);
    expect(rows[2].lr).toBeCloseTo(1e-2, 12);
    expect(rows[19].lr).toBeCloseTo(1e-2 * 0.5 * (1 + Math.cos((Math.PI * 17) / 18)), 12);
    const base = await evalLoss(model.dir, data);
    const tuned = await evalLoss(out, data);
    expect(tuned.loss).toBeLessThan(base.loss / 5);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.torch_dtype).toBe('float32');
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config.lr).toBe(1e-2);
    expect(run.config.lora).toBeNull();
    expect(run.resolved.trainable_parameters).toBe(run.resolved.parameters);
  });
});
