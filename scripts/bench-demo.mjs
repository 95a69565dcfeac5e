#!/usr/bin/env node
// npm run bench:demo — runs `peft-studio demo` five times, each in its own
// process (so peak memory is that run's alone): LoRA and --method full, each
// with the replay documents (the demo's default) and with --no-replay (the
// questions alone, which shows the forgetting that rehearsal prevents), and
// --method dora (LoRA's settings with DoRA) with the replay documents.
// Writes bench/results/demo.json and demo.md: accuracy, eval loss and
// base-corpus perplexity before/after, wall time, peak memory and the bytes
// each method leaves on disk. Build first: npx tsc -p tsconfig.json
// BENCH_THREADS (default 2) sets the threads.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });
const threads = Number(process.env.BENCH_THREADS ?? 2);
const scratch = mkdtempSync(join(tmpdir(), 'bench-demo-'));

function runDemo(method, replay) {
  const out = join(scratch, `${method}-${replay ? 'replay' : 'no-replay'}`);
  const started = performance.now();
  const args = ['demo', '--method', method, '--threads', String(threads), '--out', out, ...(replay ? [] : ['--no-replay'])];
  execFileSync(process.execPath, [join(root, 'dist/electron/cli/main.js'), ...args], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const report = JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8'));
  return { ...report, process_wall_seconds: (performance.now() - started) / 1000 };
}

const lora = runDemo('lora', true);
const dora = runDemo('dora', true);
const full = runDemo('full', true);
const loraNoReplay = runDemo('lora', false);
const fullNoReplay = runDemo('full', false);
const build = JSON.parse(readFileSync(join(root, 'resources/demo/build-info.json'), 'utf8'));

const summarize = (r) => ({
  method: r.method,
  replay_documents: r.training.replay_documents,
  train_questions: r.training.train_questions,
  steps: r.training.steps,
  flags: r.training.flags,
  accuracy_before: r.before.accuracy,
  accuracy_after: r.after.accuracy,
  eval_loss_before: r.before.eval_loss,
  eval_loss_after: r.after.eval_loss,
  base_perplexity_before: r.before.base_perplexity,
  base_perplexity_after: r.after.base_perplexity,
  perplexity_change: r.perplexity_change,
  training_seconds: r.training.seconds,
  demo_wall_seconds: r.wall_seconds,
  process_wall_seconds: r.process_wall_seconds,
  peak_rss_bytes: r.peak_rss_bytes,
  training_memory: r.training_memory,
  result_bytes: r.result_bytes,
  base_model_bytes: r.base_model_bytes,
  samples_after: r.after.samples,
});

const data = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? 'unknown',
  threads,
  model: { shape: build.shape, parameters: build.parameters, stored_dtype: build.stored_dtype, pretraining: { steps: build.pretraining.steps, final_loss: build.pretraining.final_loss, seconds: build.pretraining.elapsed_s } },
  lora: summarize(lora),
  dora: summarize(dora),
  full: summarize(full),
  lora_no_replay: summarize(loraNoReplay),
  full_no_replay: summarize(fullNoReplay),
};
writeFileSync(join(results, 'demo.json'), JSON.stringify(data, null, 2) + '\n');

const pct = (x) => `${(100 * x).toFixed(1)}%`;
const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
const kib = (b) => (b < 1024 * 1024 ? `${(b / 1024).toFixed(1)} KiB` : mib(b));
const row = (s) =>
  `| ${s.method}${s.replay_documents ? '' : ', no replay'} | ${pct(s.accuracy_before)} → **${pct(s.accuracy_after)}** | ${s.eval_loss_before.toFixed(3)} → ${s.eval_loss_after.toFixed(3)} | ` +
  `${s.base_perplexity_before.toFixed(3)} → ${s.base_perplexity_after.toFixed(3)} (**${s.perplexity_change >= 0 ? '+' : ''}${pct(s.perplexity_change)}**) | ` +
  `${s.training_seconds.toFixed(1)} s | ${s.demo_wall_seconds.toFixed(1)} s | ${s.training_memory.trainableParams.toLocaleString('en')} | ` +
  `${kib(s.training_memory.gradientBytes + s.training_memory.optimizerBytes)} | ${mib(s.peak_rss_bytes)} | ${kib(s.result_bytes)} |`;
const md = [
  '# Bundled demo: LoRA, DoRA and full fine-tuning',
  '',
  `${data.date}, ${data.cpu}, ${threads} threads. Base model: Llama, ${build.parameters.toLocaleString('en')} parameters ` +
    `(hidden ${build.shape.hidden}, ${build.shape.layers} layers, vocab ${build.shape.vocabSize}), ${mib(lora.base_model_bytes)} in ${build.stored_dtype}, ` +
    `pretrained here for ${build.pretraining.steps} steps (final loss ${build.pretraining.final_loss.toFixed(3)}).`,
  '',
  'Task: one-word answers to held-out questions about facts the corpus states but no training question mentions, scored by exact match.',
  'Forgetting: perplexity of held-out pretraining text with the fine-tuned weights.',
  '',
  '| method | held-out accuracy | task eval loss | base-corpus perplexity | training | whole demo | trained parameters | gradients + optimizer state | peak RSS (process) | saved result |',
  '|---|---|---|---|---|---|---|---|---|---|',
  row(data.lora),
  row(data.dora),
  row(data.full),
  row(data.lora_no_replay),
  row(data.full_no_replay),
  '',
  `Fine-tuning rows: ${lora.training.train_questions} questions (prompt masked) + ${lora.training.replay_documents} replay documents like the pretraining ones (the default), ` +
    'or the questions alone (no replay). ' +
    `LoRA: ${JSON.stringify(lora.training.flags)}; DoRA: the same with "dora": true; full: ${JSON.stringify(full.training.flags)}.`,
  '',
  'Gradients + optimizer state: the engine\'s own estimate (the formula that sizes its buffers). Peak RSS is the whole demo process ' +
    '(Node, the tokenizer, data, the engine); at this model size the runtime dominates it.',
  '',
  `Storage: the LoRA adapter is ${kib(lora.result_bytes)}, the full fine-tune writes a whole F32 model of ${kib(full.result_bytes)} ` +
    `(${(full.result_bytes / lora.result_bytes).toFixed(0)}× the adapter).`,
  '',
  'Reproduce: `npx tsc -p tsconfig.json && npm run bench:demo`.',
  '',
].join('\n');
writeFileSync(join(results, 'demo.md'), md);
rmSync(scratch, { recursive: true, force: true });
console.log(md);
