// Rebuilds the bundled demo from nothing (scripts/demo/build-demo-model.mjs
// runs it): world -> corpus -> tokenizer -> seeded random init -> pretraining
// with the project's own full fine-tuning path -> the shipped folder:
//   <out>/model/            config.json, model.safetensors (F16), tokenizer.json,
//                           tokenizer_config.json, generation_config.json
//   <out>/task-train.jsonl  {"prompt", "completion"} rows (completion format)
//   <out>/task-eval.jsonl   held-out questions
//   <out>/base-sample.jsonl {"text"} rows of held-out corpus (the forgetting check)
//   <out>/replay-train.jsonl {"text"} rows of fresh corpus documents, mixed into the
//                           fine-tuning rows (rehearsal: keeps the base distribution)
//   <out>/build-info.json   how it was made, and the pretraining figures
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { makeFolder } from '../files/make-folder.js';
import { join } from 'node:path';
import { parameterCount } from '../models/folder.js';
import { runTraining, type RunIO } from '../training/run.js';
import { corpusParagraphs } from './corpus.js';
import { demoSpec, llamaConfigJson, storeWeightsAs, writeInitialWeights, writeJsonFile, type DemoShape } from './model-files.js';
import { splitFacts, taskRow } from './task.js';
import { tokenizerConfigJson, tokenizerJson, trainByteLevelBpe } from './tokenizer-train.js';
import { trainConfig } from './train-args.js';
import { makeWorld, worldFacts } from './world.js';

export interface BuildOptions {
  /** the folder to fill (resources/demo) */
  out: string;
  /** scratch folder for the corpus and the pretraining run */
  work: string;
  threads: number;
  /** pretraining optimizer steps */
  steps: number;
  seed: number;
  io: RunIO;
}

export const DEMO_SHAPE: Omit<DemoShape, 'vocabSize'> = { hidden: 192, intermediate: 512, layers: 4, heads: 6, kvHeads: 2, maxPositions: 256 };
export const DEMO_TOKENIZER = { vocabSize: 1024, minFrequency: 2, special: { bos: '<s>', eos: '</s>', pad: '<pad>' } };
export const PRETRAIN = { documents: 24000, paragraphsPerDocument: 3, batchSize: 16, seqLen: 160, lr: 2e-3, warmupSteps: 60 };
export const BASE_SAMPLE_DOCUMENTS = 120;
export const REPLAY_DOCUMENTS = 111;
export const TASK_EVAL_FRACTION = 1 / 3;

/** Paragraphs grouped into documents of `perDocument`, joined by line breaks. */
export function documents(paragraphs: string[], perDocument: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + perDocument <= paragraphs.length; i += perDocument) out.push(paragraphs.slice(i, i + perDocument).join('\n'));
  return out;
}

function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

export async function buildDemo(options: BuildOptions): Promise<Record<string, unknown>> {
  const log = (line: string) => options.io.stderr(line + '\n');
  const world = makeWorld(options.seed);
  await makeFolder(options.work);

  // Corpus: pretraining documents, and a held-out sample from another stream.
  const docs = documents(corpusParagraphs(world, PRETRAIN.documents * PRETRAIN.paragraphsPerDocument, options.seed), PRETRAIN.paragraphsPerDocument);
  const sample = documents(corpusParagraphs(world, BASE_SAMPLE_DOCUMENTS * PRETRAIN.paragraphsPerDocument, options.seed + 1000), PRETRAIN.paragraphsPerDocument);
  const replay = documents(corpusParagraphs(world, REPLAY_DOCUMENTS * PRETRAIN.paragraphsPerDocument, options.seed + 2000), PRETRAIN.paragraphsPerDocument);
  const corpusFile = join(options.work, 'corpus.jsonl');
  await writeFile(corpusFile, jsonl(docs.map((text) => ({ text }))));
  log(`corpus: ${docs.length} documents, ${docs.reduce((n, d) => n + d.length, 0)} characters`);

  // Tokenizer trained on the pretraining corpus.
  const bpe = trainByteLevelBpe(docs, DEMO_TOKENIZER);
  const spec = demoSpec({ ...DEMO_SHAPE, vocabSize: bpe.vocab.size });
  const ids = { bos: bpe.vocab.get(DEMO_TOKENIZER.special.bos)!, eos: bpe.vocab.get(DEMO_TOKENIZER.special.eos)!, pad: bpe.vocab.get(DEMO_TOKENIZER.special.pad)! };
  log(`tokenizer: ${bpe.vocab.size} tokens (${bpe.merges.length} merges)`);

  // Random init, F32, with the tokenizer beside it.
  const initDir = join(options.work, 'init');
  await rm(initDir, { recursive: true, force: true });
  await writeInitialWeights(initDir, spec, options.seed);
  await writeJsonFile(join(initDir, 'config.json'), llamaConfigJson(spec, ids, 'F32'));
  await writeJsonFile(join(initDir, 'tokenizer.json'), tokenizerJson(bpe));
  await writeJsonFile(join(initDir, 'tokenizer_config.json'), tokenizerConfigJson(bpe, spec.maxPositionEmbeddings));
  await writeJsonFile(join(initDir, 'generation_config.json'), { bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad });

  // Pretraining: full fine-tuning of every weight from the random init.
  const runDir = join(options.work, 'pretrain');
  await rm(runDir, { recursive: true, force: true });
  const config = trainConfig({
    model: initDir, data: corpusFile, out: runDir, method: 'full',
    steps: options.steps, 'batch-size': PRETRAIN.batchSize, 'seq-len': PRETRAIN.seqLen,
    lr: PRETRAIN.lr, 'warmup-steps': PRETRAIN.warmupSteps, scheduler: 'cosine', 'weight-decay': 0.01,
    seed: options.seed, threads: options.threads,
  });
  const summary = await runTraining(config, options.io);
  log(`pretraining: ${summary.steps} steps, final loss ${summary.final_loss?.toFixed(4)}, ${summary.elapsed_s.toFixed(0)} s`);

  // The shipped folder: 16-bit weights, the pretrained run's side files.
  const modelDir = join(options.out, 'model');
  await rm(modelDir, { recursive: true, force: true });
  await storeWeightsAs(runDir, modelDir, spec, 'F16');
  await writeJsonFile(join(modelDir, 'config.json'), llamaConfigJson(spec, ids, 'F16'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(join(initDir, f), join(modelDir, f));

  const split = splitFacts(worldFacts(world), TASK_EVAL_FRACTION, options.seed);
  await writeFile(join(options.out, 'task-train.jsonl'), jsonl(split.train.map(taskRow)));
  await writeFile(join(options.out, 'task-eval.jsonl'), jsonl(split.eval.map(taskRow)));
  await writeFile(join(options.out, 'base-sample.jsonl'), jsonl(sample.map((text) => ({ text }))));
  await writeFile(join(options.out, 'replay-train.jsonl'), jsonl(replay.map((text) => ({ text }))));

  const metrics = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
  const info = {
    seed: options.seed,
    architecture: spec.architecture,
    shape: { ...DEMO_SHAPE, vocabSize: spec.vocabSize, headDim: spec.headDim },
    parameters: parameterCount(spec),
    stored_dtype: 'F16',
    tokenizer: { vocab_size: bpe.vocab.size, merges: bpe.merges.length, min_frequency: DEMO_TOKENIZER.minFrequency },
    corpus: { documents: docs.length, characters: docs.reduce((n, d) => n + d.length, 0), animals: world.animals.length, people: world.people.length },
    pretraining: {
      ...PRETRAIN, threads: options.threads, steps: summary.steps, final_loss: summary.final_loss, elapsed_s: summary.elapsed_s,
      loss_curve: metrics.filter((m) => m.loss !== undefined && (m.step % 50 === 0 || m.step === 1)).map((m) => [m.step, m.loss]),
    },
    task: { train_questions: split.train.length, eval_questions: split.eval.length, replay_documents: replay.length, base_sample_documents: sample.length },
  };
  await writeJsonFile(join(options.out, 'build-info.json'), info);
  return info;
}
