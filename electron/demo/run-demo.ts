// The demo run: measure the bundled base model, fine-tune it on the task with
// the project's own training path, measure again. The out folder holds
//   data/task-train.tokens.jsonl   the task rows tokenized, prompts masked, and
//                                  the replay documents (whole text trained)
//   run/                           the training run (adapter or full model, metrics)
//   demo.json                      every figure, before and after
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadAddon } from '../engine/load.js';
import { pathExists } from '../files/exists.js';
import { makeFolder } from '../files/make-folder.js';
import { loadJsonl } from '../training/data.js';
import { estimateRun, type RunEstimate } from '../training/memory-check.js';
import { runTraining, type RunIO } from '../training/run.js';
import { openModelWithTokenizer, openSession } from '../session.js';
import { measure, type DemoData, type Figures } from './measure.js';
import type { DemoFiles } from './paths.js';
import { maskedExample, readTaskRows, tokenizedJsonl } from './task-data.js';
import { trainConfig, type TrainFlags } from './train-args.js';

/** dora: LoRA's settings with DoRA on (the same run but for the magnitudes) */
export type DemoMethod = 'lora' | 'dora' | 'full';

const LORA_TRAINING: TrainFlags = { rank: 8, alpha: 16, targets: 'all-linear', lr: 2e-3, steps: 160, 'batch-size': 8, 'seq-len': 128, 'warmup-steps': 10, scheduler: 'linear' };

/** The fine-tuning settings of each method (chosen so that each learns the task in seconds on 2 cores). */
export const DEMO_TRAINING: Record<DemoMethod, TrainFlags> = {
  lora: LORA_TRAINING,
  dora: { ...LORA_TRAINING, dora: true },
  full: { lr: 3e-4, steps: 160, 'batch-size': 8, 'seq-len': 128, 'warmup-steps': 10, scheduler: 'linear' },
};

/** The train --method a demo method runs. */
const TRAIN_METHOD: Record<DemoMethod, 'lora' | 'full'> = { lora: 'lora', dora: 'lora', full: 'full' };

export interface DemoOptions {
  files: DemoFiles;
  /** null: a fresh ./peft-studio-demo-<time> folder */
  out: string | null;
  method: DemoMethod;
  threads: number;
  /** overrides the method's step count (tests run a few steps) */
  steps?: number;
  /** mix the replay documents into the fine-tuning rows (default true) */
  replay?: boolean;
}

export interface DemoReport {
  method: DemoMethod;
  out: string;
  /** where the adapter (lora) or fine-tuned model (full) is */
  result_dir: string;
  model: string;
  threads: number;
  training: { flags: TrainFlags; train_questions: number; replay_documents: number; steps: number; seconds: number; final_loss: number | null };
  before: Figures;
  after: Figures;
  /** bytes of what fine-tuning produced: the adapter file or the full model file */
  result_bytes: number;
  base_model_bytes: number;
  /** (after - before) / before of the base-corpus perplexity */
  perplexity_change: number;
  /** the engine's own estimate for the training run: weights, gradients, optimizer state, activations */
  training_memory: RunEstimate;
  /** peak resident memory of the whole process (Node, tokenizer, engine) */
  peak_rss_bytes: number;
  wall_seconds: number;
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Creates the out folder; an existing path is an error, never overwritten. */
async function createOutFolder(out: string | null): Promise<string> {
  const dir = resolve(out ?? `peft-studio-demo-${timestamp(new Date())}`);
  if (await pathExists(dir)) throw new Error(`${dir}: already exists; the demo writes into a new folder: give another --out (or remove that one)`);
  await makeFolder(dir, '--out'); // refuses /proc, /sys, /dev with one line (Node's recursive mkdir spins forever under /proc)
  return dir;
}

async function fileBytes(path: string): Promise<number> {
  return (await stat(path)).size;
}

export async function runDemo(options: DemoOptions, io: RunIO): Promise<DemoReport> {
  const started = performance.now();
  const log = (line: string) => io.stderr(line + '\n');
  const { files } = options;
  const out = await createOutFolder(options.out);

  // Data: the task rows tokenized with the model's own tokenizer, prompts masked.
  const { folder, tokenizer } = await openModelWithTokenizer(files.model);
  const trainRows = await readTaskRows(files.taskTrain);
  const evalRows = await readTaskRows(files.taskEval);
  const data: DemoData = {
    evalRows,
    evalExamples: evalRows.map((r, i) => maskedExample(r, tokenizer, `${files.taskEval}:${i + 1}`)),
    baseSample: loadJsonl(files.baseSample, tokenizer, { seqLen: folder.spec.maxPositionEmbeddings, vocabSize: folder.spec.vocabSize }),
    sampleIndices: [0, Math.floor(evalRows.length / 2), evalRows.length - 1],
  };
  const trainFile = join(out, 'data', 'task-train.tokens.jsonl');
  await mkdir(join(out, 'data'));
  // Rehearsal: documents like the pretraining ones, trained on whole, keep the
  // adapter from shifting what the model predicts on ordinary text.
  const replay = options.replay === false ? [] : loadJsonl(files.replay, tokenizer, { seqLen: folder.spec.maxPositionEmbeddings, vocabSize: folder.spec.vocabSize });
  const taskExamples = trainRows.map((r, i) => maskedExample(r, tokenizer, `${files.taskTrain}:${i + 1}`));
  await writeFile(trainFile, tokenizedJsonl([...taskExamples, ...replay]));

  log(`measuring the base model (${evalRows.length} held-out questions, ${data.baseSample.length} corpus documents)`);
  const baseSession = await openSession(files.model, { threads: options.threads });
  let before: Figures;
  try {
    before = await measure(baseSession, data);
  } finally {
    baseSession.dispose();
  }

  const flags: TrainFlags = { ...DEMO_TRAINING[options.method], ...(options.steps !== undefined ? { steps: options.steps } : {}) };
  const runDir = join(out, 'run');
  const config = trainConfig({ ...flags, model: files.model, data: trainFile, out: runDir, method: TRAIN_METHOD[options.method], threads: options.threads, seed: 42 });
  // What the engine allocates for this run (the formula that sizes its buffers): the memory cost of the method.
  const memory = estimateRun(loadAddon(), folder, config, config.lora);
  const summary = await runTraining(config, io);

  log('measuring the fine-tuned model');
  const adapterRun = TRAIN_METHOD[options.method] === 'lora';
  const tuned = adapterRun
    ? await openSession(files.model, { threads: options.threads, adapter: runDir })
    : await openSession(runDir, { threads: options.threads });
  let after: Figures;
  try {
    after = await measure(tuned, data);
  } finally {
    tuned.dispose();
  }

  const report: DemoReport = {
    method: options.method,
    out,
    result_dir: runDir,
    model: files.model,
    threads: options.threads,
    training: { flags, train_questions: trainRows.length, replay_documents: replay.length, steps: summary.steps, seconds: summary.elapsed_s, final_loss: summary.final_loss },
    before,
    after,
    result_bytes: await fileBytes(join(runDir, adapterRun ? 'adapter_model.safetensors' : 'model.safetensors')),
    base_model_bytes: await fileBytes(join(files.model, 'model.safetensors')),
    perplexity_change: after.base_perplexity / before.base_perplexity - 1,
    training_memory: memory,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    wall_seconds: (performance.now() - started) / 1000,
  };
  await writeFile(join(out, 'demo.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}
