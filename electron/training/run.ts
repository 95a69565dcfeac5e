// One training run from a resolved configuration to a finished run folder
// (electron/runs/layout.ts describes the folder). The CLI and the app run it
// in a child process through electron/runs/manager.ts; runTraining here runs
// it in the calling process (scripts, the demo) with the same files and events.
import { existsSync } from 'node:fs';
import type { NativeEngine } from '../engine/native.js';
import type { ModelFolder } from '../models/folder.js';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { attachAdapter } from '../session.js';
import { peftTypeOf } from '../adapters/any-adapter.js';
import type { AdapterLayout } from '../adapters/layout.js';
import { encoderHiddenSizeOf } from '../adapters/prompt-config.js';
import { embeddingRowsFromWeights, promptInitTable } from '../adapters/prompt-init.js';
import { checkSeqLenFits, checkStepTokens, trainsLora, type LoraSettings, type TrainConfig, type TrainMethod } from './config.js';
import { countTrainedTokens, type Example } from './data.js';
import { loadDataset, packExamples } from '../data/index.js';
import { splitTrainEval } from './split.js';
import { loadEvalFile } from './eval-file.js';
import { totalSteps } from './trainer.js';
import { settingWarnings, type SettingWarning } from './warnings.js';
import { comparableFingerprint, modelFingerprint } from './model-fingerprint.js';
import { cacheSnapshotIdentity, cacheWeightsProblem } from '../models/cache-snapshot-identity.js';
import { executeRun } from '../runs/execute.js';
import { eventPrinter } from '../runs/print-events.js';
import { summarizeDataset, type RunDataSummary } from '../runs/data-summary.js';
import { countOf } from '../text/plural.js';

/** Where progress and notices go (the CLI passes stderr). */
export interface RunIO {
  stderr(text: string): void;
  /** a terminal: the progress line is rewritten in place */
  stderrIsTTY: boolean;
}

export interface RunSummary {
  out: string;
  method: TrainMethod;
  steps: number;
  train_examples: number;
  eval_examples: number;
  final_loss: number | null;
  final_eval_loss: number | null;
  elapsed_s: number;
  /** --keep-best: the adapter of the lowest eval loss (DIR/best); null or absent: none kept */
  best?: { dir: string; step: number; eval_loss: number } | null;
  /** --early-stop ended the run: why ("stopped early at step 420: ..."); null or absent: it ran to the end */
  stopped_early?: string | null;
}

/** The virtual tokens a run's method puts before the real tokens (prompt and prefix tuning). */
export function runVirtualTokens(config: Pick<TrainConfig, 'method' | 'prompt' | 'prefix'>): number {
  if (config.method === 'prompt') return config.prompt?.numVirtualTokens ?? 0;
  if (config.method === 'prefix') return config.prefix?.numVirtualTokens ?? 0;
  return 0;
}

/** Settings that do not go together, whatever the model. */
export function checkMethodSettings(config: TrainConfig): void {
  if (config.method === 'prompt' && config.pack) {
    // Every document of a packed row would need its own copy of the virtual
    // tokens; PEFT has no such thing, and one shared copy would change the math.
    throw new Error('--pack cannot be used with --method prompt: prompt tuning prepends the virtual tokens to each sequence, so every document needs its own row; drop --pack (prefix tuning and LoRA can pack)');
  }
  if (config.method === 'prompt' && config.prompt === null) throw new Error('--method prompt needs its prompt tuning settings');
  if (config.method === 'prefix' && config.prefix === null) throw new Error('--method prefix needs its prefix tuning settings');
}

/** Checks that need the model: sizes that must fit it. */
export function checkAgainstModel(config: TrainConfig, folder: ModelFolder, lora: LoraSettings | null): void {
  checkMethodSettings(config);
  // A resumed run whose run.json recorded the model's fingerprint: the folder
  // (at its old path, or a new one given with --model) must hold that model.
  if (config.modelFingerprint && comparableFingerprint(config.modelFingerprint) && modelFingerprint(folder) !== config.modelFingerprint) {
    throw new Error(`${folder.dir}: is not the model this run started with (its config.json, its tensors' names, dtypes or shapes, or its tokenizer files differ from what run.json recorded). ` +
      'Resume with --model set to the folder of the model the run started with');
  }
  // ... and when it came from the Hugging Face cache, the same weights (another revision's blobs differ)
  const otherWeights = config.modelSnapshot ? cacheWeightsProblem(config.modelSnapshot, cacheSnapshotIdentity(folder.dir), folder.dir) : null;
  if (otherWeights) throw new Error(otherWeights);
  checkSeqLenFits(config.seqLen, folder.spec, runVirtualTokens(config));
  checkStepTokens(config, runVirtualTokens(config));
  if (config.initAdapter !== null && !existsSync(config.initAdapter)) {
    throw new Error(`--init-adapter ${config.initAdapter}: no such folder. Give the folder of a PEFT adapter (adapter_config.json and adapter_model.safetensors), such as a finished run's --out`);
  }
  const badLayer = lora?.layers?.find((l) => l >= folder.spec.numLayers);
  if (badLayer !== undefined) {
    throw new Error(`--layers: layer ${badLayer} does not exist; the model has layers 0..${folder.spec.numLayers - 1}`);
  }
}

/** The adapter kind each method trains. */
const ADAPTER_KIND = { lora: 'lora', qlora: 'lora', prompt: 'prompt', prefix: 'prefix' } as const;
const PEFT_TYPE_KIND = { LORA: 'lora', PROMPT_TUNING: 'prompt', PREFIX_TUNING: 'prefix' } as const;

/**
 * Makes the engine trainable for the run's method; returns the adapter layout
 * in effect (null: full fine-tuning). Prompt tuning's init (RANDOM, TEXT,
 * SAMPLE_VOCAB) is computed here, from the run's seed, tokenizer and the
 * model's embedding table.
 */
export async function setUpMethod(engine: NativeEngine, folder: ModelFolder, config: TrainConfig, tokenizer: Pick<ModelTokenizer, 'encode'>): Promise<AdapterLayout | null> {
  const { spec } = folder;
  if (config.method === 'full') {
    engine.setupFull();
    return null;
  }
  if (config.initAdapter !== null) {
    const want = ADAPTER_KIND[config.method];
    const type = await peftTypeOf(config.initAdapter);
    if (PEFT_TYPE_KIND[type] !== want) {
      throw new Error(`--init-adapter ${config.initAdapter}: is a ${type} adapter, but --method ${config.method} trains ${want === 'lora' ? 'a LoRA' : `${want} tuning`}; start from an adapter of the same kind`);
    }
    // The adapter decides its layout; dropout stays a setting of this run.
    const adapter = await attachAdapter(engine, folder, config.initAdapter, config.seed, config.lora?.dropout);
    switch (adapter.kind) {
      case 'lora':
        return { kind: 'lora', lora: { ...adapter.lora, dropout: config.lora!.dropout } };
      case 'prompt':
        return { kind: 'prompt', prompt: adapter.prompt };
      case 'prefix':
        // The saved table is the projection's output: training goes on from the table itself.
        return { kind: 'prefix', prefix: { ...adapter.prefix, projection: false } };
    }
  }
  if (trainsLora(config.method)) {
    engine.setupLora({ ...config.lora!, seed: config.seed });
    return { kind: 'lora', lora: config.lora! };
  }
  if (config.method === 'prompt') {
    const prompt = config.prompt!;
    const init = await promptInitTable(prompt, spec, config.seed, {
      tokenize: (text) => tokenizer.encode(text),
      embeddingRows: (ids) => embeddingRowsFromWeights(folder.weights, spec, ids),
    });
    engine.setupPromptTuning({ numVirtualTokens: prompt.numVirtualTokens, init: init.table });
    return { kind: 'prompt', prompt };
  }
  const prefix = config.prefix!;
  engine.setupPrefixTuning({
    numVirtualTokens: prefix.numVirtualTokens,
    projection: prefix.projection ? { encoderHiddenSize: encoderHiddenSizeOf(prefix, spec) } : null,
    seed: config.seed,
  });
  return { kind: 'prefix', prefix };
}

/** The adapter settings a run records in run.json once its method is set up. */
export function configWithLayout(config: TrainConfig, layout: AdapterLayout | null): TrainConfig {
  if (layout === null) return config;
  switch (layout.kind) {
    case 'lora': return { ...config, lora: layout.lora };
    case 'prompt': return { ...config, prompt: layout.prompt };
    case 'prefix': return { ...config, prefix: layout.prefix };
  }
}

export interface RunData {
  train: Example[];
  eval: Example[];
  /** notices for the log (rows skipped, settings not applied; "warning: " lines for settings that look like a slip) */
  notes: string[];
  /**
   * the settings that look like a slip, structured (the fields, the CLI's and
   * the app's words): the "warning: " lines of `notes` are their CLI words;
   * the started event and run.json carry them for the app
   */
  warnings: SettingWarning[];
  /** the dataset report, compact: run.json and the started event carry it */
  summary: RunDataSummary;
  /** the evaluation file's report, compact (null: no --eval-data) */
  evalSummary: RunDataSummary | null;
}

/**
 * THE place a run reads its data: file -> rows in their format (electron/data)
 * -> examples (masked, truncated) -> seeded train/eval split -> packing of
 * each part (after the split, so evaluation scores whole documents the same
 * way in every run) -> rows with something to learn. With --eval-data the
 * eval rows are that file's, read the same way (eval-file.ts), and all of
 * --data is trained on (the settings refuse an eval split beside it).
 */
export async function loadRunData(config: TrainConfig, tokenizer: ModelTokenizer, folder: ModelFolder): Promise<RunData> {
  // the model folder's notices first (tensors config.json does not use...): the run's log is where a run's user reads them
  const notes: string[] = folder.notices.map((n) => `note: ${n}`);
  const { examples, report } = await loadDataset(config.data, tokenizer, {
    format: config.dataFormat,
    seqLen: config.seqLen,
    completionOnly: config.completionOnly,
    pack: false,
    vocabSize: folder.spec.vocabSize,
    suggestEvalSplit: config.evalData === null,
  });
  for (const notice of report.notices) notes.push(`note: ${notice}`);
  if (report.truncation.rows > 0) notes.push(`note: ${countOf(report.truncation.rows, 'row')} truncated to --seq-len ${config.seqLen} (${countOf(report.truncation.tokensDropped, 'token')} dropped)`);
  const split = splitTrainEval(examples, config.evalSplit, config.seed);
  const evalFile = config.evalData ? await loadEvalFile(config.evalData, config, tokenizer, folder) : null;
  if (evalFile) notes.push(...evalFile.notes);
  const pack = (rows: Example[]) => (config.pack ? packExamples(rows, config.seqLen) : rows);
  const trainRows = pack(split.train);
  // A row with no label token after the shift adds nothing to any gradient.
  const train = trainRows.filter((e) => countTrainedTokens(e.labels, e.segments) > 0);
  if (train.length === 0) throw new Error(`${config.data}: no training example has a token to learn (rows of one token, or every label masked); give rows of two or more tokens, or train on every token with --all-tokens`);
  if (train.length < trainRows.length) notes.push(`note: skipping ${countOf(trainRows.length - train.length, 'training row')} with no label token to learn`);
  const steps = totalSteps(train.length, { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum });
  const warnings = settingWarnings(config, folder.spec, steps);
  for (const warning of warnings) notes.push(`warning: ${warning.cli}`);
  return { train, eval: pack(evalFile ? evalFile.examples : split.eval), notes, warnings, summary: summarizeDataset(report), evalSummary: evalFile?.summary ?? null };
}

/**
 * Runs training in this process, printing progress to io.stderr. Resolves
 * with the summary when the run finishes; a failed or cancelled run throws
 * with its message (the run folder says where it stopped). A finished run
 * in config.out is replaced only with options.overwrite.
 */
export async function runTraining(config: TrainConfig, io: RunIO, options: { resume?: boolean; overwrite?: boolean } = {}): Promise<RunSummary> {
  const print = eventPrinter({ write: (text: string) => io.stderr(text), isTTY: io.stderrIsTTY });
  const end = await executeRun(config, { resume: options.resume ?? false, overwrite: options.overwrite ?? false, emit: print });
  if (end.type === 'finished') return end.summary;
  throw new Error(end.message);
}
