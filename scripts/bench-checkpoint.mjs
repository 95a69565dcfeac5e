#!/usr/bin/env node
// npm run bench:checkpoint — what a checkpoint costs against the adapter it
// protects. Real runs through the run manager (a child process, as the CLI
// trains) on a random model with SmolLM2-135M's shape (BF16 weights, made
// once with the test fixture writer and cached in the OS temp folder), with a
// checkpoint after every step: the checkpoint's size (adapter + AdamW moments
// + trainer state) and write time (files, fsync, rename, sha256 marker,
// pruning), against the adapter's size and the time of a training step.
// Needs `npm run build:ts` (imports dist/). Results: bench/results/checkpoint.json and .md.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'electron');
if (!existsSync(join(dist, 'runs', 'manager.js'))) {
  console.error('bench:checkpoint: dist/ is missing; run `npm run build:ts` first.');
  process.exit(1);
}
const { writeTinyModel } = await import(join(dist, 'testing', 'tiny-model.js'));
const { TrainingRun } = await import(join(dist, 'runs', 'manager.js'));
const { trainConfigFromArgs, trainSpec } = await import(join(dist, 'cli', 'commands', 'train.js'));
const { parseArgs } = await import(join(dist, 'cli', 'args.js'));

const threads = Number(process.env.BENCH_THREADS ?? cpus().length);
const SHAPE = { vocab: 49152, hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, tie: true, dtype: 'BF16', maxPosition: 2048, seed: 1 };
const modelDir = join(tmpdir(), 'peft-studio-bench-smollm2-135m-shape');
if (!existsSync(join(modelDir, 'config.json'))) {
  console.error(`making a random SmolLM2-135M-shaped model in ${modelDir} (once, ~30 s)…`);
  await writeTinyModel(modelDir, SHAPE);
}

const work = mkdtempSync(join(tmpdir(), 'ps-bench-ckpt-'));
process.env.PEFT_STUDIO_HOME = join(work, 'home'); // keep the user's run index clean
const seqLen = 64;
const data = join(work, 'data.jsonl');
let seed = 7;
const nextToken = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % (SHAPE.vocab - 3)) + 3;
writeFileSync(data, Array.from({ length: 8 }, () => JSON.stringify({ input_ids: Array.from({ length: seqLen }, nextToken) })).join('\n') + '\n');

const CASES = [
  { name: 'LoRA r=8, q_proj,v_proj (PEFT default)', flags: ['--rank', '8', '--targets', 'q_proj,v_proj'], steps: 4 },
  { name: 'LoRA r=16, all-linear', flags: ['--rank', '16', '--targets', 'all-linear'], steps: 4 },
  { name: 'full fine-tuning', flags: ['--method', 'full', '--lr', '1e-5'], steps: 2 },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const rows = [];
let parameters;
for (const c of CASES) {
  const out = join(work, c.name.replace(/\W+/g, '-'));
  const config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, '--steps', String(c.steps),
    '--batch-size', '1', '--seq-len', String(seqLen), '--save-every', '1', '--keep-checkpoints', '2', '--threads', String(threads), ...c.flags]));
  const run = new TrainingRun({ config });
  const checkpoints = [];
  const stepSeconds = [];
  run.onEvent((e) => {
    if (e.type === 'checkpoint') checkpoints.push(e);
    if (e.type === 'step') stepSeconds.push(e.tokens / e.tokensPerSecond); // the step alone, without the writes
    if (e.type === 'log') console.error(e.message);
  });
  console.error(`${c.name}: ${c.steps} steps, a checkpoint after each…`);
  const end = await run.start().wait();
  if (end.type !== 'finished') throw new Error(`${c.name}: ${end.message}`);
  const last = checkpoints[checkpoints.length - 1];
  const marker = JSON.parse(readFileSync(join(last.dir, 'COMPLETE'), 'utf8'));
  const size = (name) => marker.files[name]?.bytes ?? 0;
  const weightsFile = config.method === 'lora' ? 'adapter_model.safetensors' : 'model.safetensors';
  const adapterBytes = statSync(join(out, weightsFile)).size;
  parameters ??= JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).resolved.parameters;
  const writes = checkpoints.map((k) => k.seconds);
  rows.push({
    case: c.name,
    adapter_file: weightsFile,
    adapter_bytes: adapterBytes,
    checkpoint_bytes: last.bytes,
    optimizer_bytes: size('optimizer.safetensors'),
    trainer_state_bytes: size('trainer_state.json'),
    other_bytes: last.bytes - size(weightsFile) - size('optimizer.safetensors') - size('trainer_state.json'),
    checkpoint_over_adapter: last.bytes / adapterBytes,
    write_seconds_median: median(writes),
    write_seconds_max: Math.max(...writes),
    write_mb_per_s: last.bytes / 1e6 / median(writes),
    writes: writes.length,
    step_seconds_median: median(stepSeconds.slice(1).length ? stepSeconds.slice(1) : stepSeconds),
  });
  rmSync(out, { recursive: true, force: true });
}
rmSync(work, { recursive: true, force: true });

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });
const result = { date: new Date().toISOString(), cpu, threads, node: process.version, model: { shape: SHAPE, parameters, dtype: 'BF16' }, seq_len: seqLen, rows };
writeFileSync(join(results, 'checkpoint.json'), JSON.stringify(result, null, 2) + '\n');

const MB = (b) => (b / 1e6).toFixed(b < 1e7 ? 2 : 1);
const md = [
  `# bench:checkpoint — ${result.date}`,
  '',
  `Checkpoint cost against the adapter, on a random model with SmolLM2-135M's shape (BF16 weights, 30 layers, hidden 576), ` +
    `batch 1 × ${seqLen} tokens, a checkpoint after every step through the run manager (child process), ${threads} thread(s), ${cpu}, Node ${process.version}. ` +
    'A checkpoint is the adapter (full: the F32 model) + AdamW moments (2 × F32 per trainable value) + trainer state, written to a temp folder, ' +
    'fsynced, renamed, and sealed with a sha256 marker. `npm run bench:checkpoint` regenerates this.',
  '',
  '| run | adapter MB | checkpoint MB | of which optimizer MB | checkpoint / adapter | write s (median) | write s (max) | MB/s | step s (median) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.case} | ${MB(r.adapter_bytes)} | ${MB(r.checkpoint_bytes)} | ${MB(r.optimizer_bytes)} | ${r.checkpoint_over_adapter.toFixed(2)} | ` +
    `${r.write_seconds_median.toFixed(3)} | ${r.write_seconds_max.toFixed(3)} | ${r.write_mb_per_s.toFixed(0)} | ${r.step_seconds_median.toFixed(2)} |`),
  '',
  'The ratio is about 3: the optimizer keeps two F32 values per trainable value, the adapter one. ' +
    'For LoRA the checkpoint stays a few MB to a few tens of MB and its write is small next to a training step; ' +
    'for full fine-tuning every checkpoint is three copies of the model, so --save-every should be sparse.',
  '',
];
writeFileSync(join(results, 'checkpoint.md'), md.join('\n'));
console.log(md.join('\n'));
