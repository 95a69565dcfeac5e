// `peft-studio train`: fine-tune a model (LoRA or full) on a JSONL file.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { UsageError, type CommandSpec, type ParsedArgs } from '../args.js';
import type { Command } from '../command.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../../adapters/peft-config.js';
import { resolveTargets, TRAIN_DEFAULTS as D, type TrainConfig } from '../../training/config.js';
import { SCHEDULER_KINDS, type SchedulerKind } from '../../training/schedule.js';
import { runTraining } from '../../training/run.js';

const LORA_ONLY_FLAGS = ['rank', 'alpha', 'dropout', 'targets', 'rslora', 'lora-init', 'layers', 'init-adapter'];
/** Settings an --init-adapter brings with it (its adapter_config.json decides them). */
const FROM_ADAPTER_FLAGS = ['rank', 'alpha', 'targets', 'rslora', 'layers', 'lora-init'];

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune a model on a JSONL data set (LoRA or full fine-tuning).',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)' },
    { name: 'data', kind: 'string', valueName: 'FILE', help: 'JSONL rows {"text": ...} or {"input_ids": [...], "labels": [...]}' },
    { name: 'method', kind: 'string', choices: ['lora', 'full'], help: 'what to train', defaultText: 'lora' },
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'run folder: adapter, metrics.jsonl, run.json, checkpoints/' },
    { name: 'rank', kind: 'int', min: 1, help: 'LoRA rank r', defaultText: String(D.rank) },
    { name: 'alpha', kind: 'number', above: 0, help: 'LoRA alpha (scaling = alpha / r)', defaultText: String(D.alpha) },
    { name: 'dropout', kind: 'number', min: 0, below: 1, help: 'dropout on the LoRA branch input', defaultText: String(D.dropout) },
    { name: 'targets', kind: 'list', choices: [...LORA_TARGETS, 'all-linear'], help: 'modules to adapt', defaultText: PEFT_DEFAULT_TARGETS.join(',') },
    { name: 'rslora', kind: 'boolean', help: 'rank-stabilized LoRA: scaling = alpha / sqrt(r)' },
    { name: 'lora-init', kind: 'string', choices: ['default', 'gaussian'], help: 'LoRA A initialization (B starts at 0)', defaultText: 'default' },
    { name: 'layers', kind: 'list', valueName: '0,1,..', help: 'adapt only these layer indices', defaultText: 'all' },
    { name: 'init-adapter', kind: 'string', valueName: 'DIR', help: 'start from this PEFT adapter (takes its rank, alpha, targets, rslora, layers)' },
    { name: 'lr', kind: 'number', min: 0, help: 'peak learning rate', defaultText: `${D.loraLr} (lora) / ${D.fullLr} (full)` },
    { name: 'optimizer', kind: 'string', choices: ['adamw', 'sgd'], help: 'optimizer (adamw: betas 0.9, 0.999, eps 1e-8)', defaultText: 'adamw' },
    { name: 'weight-decay', kind: 'number', min: 0, help: 'decoupled weight decay', defaultText: String(D.weightDecay) },
    { name: 'scheduler', kind: 'string', choices: SCHEDULER_KINDS, help: 'learning-rate schedule after warmup', defaultText: D.scheduler },
    { name: 'warmup-steps', kind: 'int', min: 0, help: 'linear warmup steps', defaultText: String(D.warmupSteps) },
    { name: 'steps', kind: 'int', min: 0, help: 'optimizer steps (instead of --epochs)' },
    { name: 'epochs', kind: 'int', min: 1, help: 'passes over the training data', defaultText: String(D.epochs) },
    { name: 'batch-size', kind: 'int', min: 1, help: 'examples per micro-batch', defaultText: String(D.batchSize) },
    { name: 'grad-accum', kind: 'int', min: 1, help: 'micro-batches per optimizer step', defaultText: String(D.gradAccum) },
    { name: 'seq-len', kind: 'int', min: 2, help: 'truncate examples to this many tokens', defaultText: String(D.seqLen) },
    { name: 'clip', kind: 'number', min: 0, help: 'max global gradient norm (0 = off)', defaultText: String(D.clip) },
    { name: 'seed', kind: 'int', min: 0, help: 'seed for initialization, shuffling, split and dropout', defaultText: String(D.seed) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'all cores' },
    { name: 'eval-split', kind: 'number', min: 0, below: 1, help: 'fraction of the data held out for evaluation', defaultText: String(D.evalSplit) },
    { name: 'eval-every', kind: 'int', min: 0, help: 'evaluate every N steps (0 = at the end only)', defaultText: String(D.evalEvery) },
    { name: 'save-every', kind: 'int', min: 0, help: 'save a checkpoint every N steps (0 = never)', defaultText: String(D.saveEvery) },
    { name: 'gradient-checkpointing', kind: 'boolean', help: 'recompute activations in backward to save memory' },
    { name: 'ignore-memory-check', kind: 'boolean', help: 'start even when the memory estimate exceeds the available memory' },
  ],
  notes: [
    'Writes to --out: the adapter (lora: adapter_config.json + adapter_model.safetensors;',
    'full: a complete model folder), metrics.jsonl (one row per step), run.json (the settings).',
  ],
};

function parseLayers(items: string[] | undefined): number[] | null {
  if (items === undefined) return null;
  const layers = items.map((s) => {
    if (!/^\d+$/.test(s)) throw new UsageError(`--layers expects non-negative layer indices, got '${s}'`, 'train');
    return Number(s);
  });
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** Turns the command line into a complete run configuration (model-independent checks only). */
export function trainConfigFromArgs(args: ParsedArgs): TrainConfig {
  const method = (args.string('method') ?? 'lora') as 'lora' | 'full';
  if (method === 'full') {
    const misplaced = LORA_ONLY_FLAGS.filter((f) => args.has(f));
    if (misplaced.length) throw new UsageError(`--${misplaced[0]} applies to --method lora only`, 'train');
  }
  const initAdapter = args.string('init-adapter') ?? null;
  if (initAdapter !== null) {
    const clash = FROM_ADAPTER_FLAGS.find((f) => args.has(f));
    if (clash) throw new UsageError(`--${clash} cannot be combined with --init-adapter: the adapter's adapter_config.json decides it`, 'train');
  }
  if (args.has('steps') && args.has('epochs')) throw new UsageError('give either --steps or --epochs, not both', 'train');
  let targets;
  try {
    targets = resolveTargets(args.list('targets') ?? [...PEFT_DEFAULT_TARGETS]);
  } catch (e) {
    throw new UsageError((e as Error).message, 'train');
  }
  const num = (name: string, fallback: number) => args.number(name) ?? fallback;
  return {
    model: resolve(args.requireString('model')),
    data: resolve(args.requireString('data')),
    out: resolve(args.requireString('out')),
    method,
    lora: method === 'lora'
      ? {
        rank: num('rank', D.rank),
        alpha: num('alpha', D.alpha),
        dropout: num('dropout', D.dropout),
        targets,
        rslora: args.boolean('rslora'),
        init: (args.string('lora-init') ?? 'default') as 'default' | 'gaussian',
        layers: parseLayers(args.list('layers')),
      }
      : null,
    initAdapter: initAdapter === null ? null : resolve(initAdapter),
    optimizer: (args.string('optimizer') ?? 'adamw') as 'adamw' | 'sgd',
    lr: num('lr', method === 'lora' ? D.loraLr : D.fullLr),
    adamBeta1: D.adamBeta1,
    adamBeta2: D.adamBeta2,
    adamEpsilon: D.adamEpsilon,
    weightDecay: num('weight-decay', D.weightDecay),
    scheduler: (args.string('scheduler') ?? D.scheduler) as SchedulerKind,
    warmupSteps: num('warmup-steps', D.warmupSteps),
    steps: args.number('steps') ?? null,
    epochs: num('epochs', D.epochs),
    batchSize: num('batch-size', D.batchSize),
    gradAccum: num('grad-accum', D.gradAccum),
    seqLen: num('seq-len', D.seqLen),
    clip: num('clip', D.clip),
    seed: num('seed', D.seed),
    threads: num('threads', availableParallelism()),
    evalSplit: num('eval-split', D.evalSplit),
    evalEvery: num('eval-every', D.evalEvery),
    saveEvery: num('save-every', D.saveEvery),
    gradientCheckpointing: args.boolean('gradient-checkpointing'),
    ignoreMemoryCheck: args.boolean('ignore-memory-check'),
  };
}

export const trainCommand: Command = {
  spec: trainSpec,
  async run(args, io) {
    const config = trainConfigFromArgs(args);
    const summary = await runTraining(config, io);
    io.stdout(JSON.stringify(summary) + '\n');
  },
};
