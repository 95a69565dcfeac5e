// `peft-studio train`: fine-tune a model (LoRA, QLoRA, prompt or prefix tuning,
// or full fine-tuning) on a dataset, in a child process; or continue a run.
import { openModelFolder } from '../../models/folder.js';
import { runVirtualTokens } from '../../training/run.js';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { UsageError, type CommandSpec, type ParsedArgs } from '../args.js';
import type { Command } from '../command.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../../adapters/peft-config.js';
import { DATA_FORMATS, resolveTargets, TRAIN_DEFAULTS as D, TRAIN_METHODS, trainsAdapter, trainsLora, type DataFormat, type TrainConfig, type TrainMethod } from '../../training/config.js';
import type { AdapterPrefix, AdapterPrompt, PromptInit } from '../../adapters/prompt-config.js';
import { QUANT_FLAGS, quantizationFromArgs } from '../quant-flags.js';
import { SCHEDULER_KINDS, type SchedulerKind } from '../../training/schedule.js';
import type { RunSummary } from '../../training/run.js';
import { TrainingRun } from '../../runs/manager.js';
import { eventPrinter } from '../../runs/print-events.js';
import { readRunRecord } from '../../runs/run-record.js';
import type { CliIO } from '../command.js';

const LORA_ONLY_FLAGS = ['rank', 'alpha', 'dropout', 'targets', 'rslora', 'lora-init', 'layers'];
const PROMPT_ONLY_FLAGS = ['prompt-init', 'prompt-init-text'];
const PREFIX_ONLY_FLAGS = ['prefix-projection', 'encoder-hidden-size'];
/** Settings an --init-adapter brings with it (its adapter_config.json decides them). */
const FROM_ADAPTER_FLAGS = ['rank', 'alpha', 'targets', 'rslora', 'layers', 'lora-init', 'virtual-tokens', ...PROMPT_ONLY_FLAGS, ...PREFIX_ONLY_FLAGS];
const PROMPT_INIT_CHOICES = ['random', 'text', 'sample-vocab'] as const;
const PROMPT_INIT_OF: Record<(typeof PROMPT_INIT_CHOICES)[number], PromptInit> = { random: 'RANDOM', text: 'TEXT', 'sample-vocab': 'SAMPLE_VOCAB' };

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune a model on a dataset (LoRA, QLoRA, prompt or prefix tuning, or full fine-tuning), or continue a run (--resume).',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)' },
    { name: 'data', kind: 'string', valueName: 'FILE', help: 'dataset: .jsonl, .json, .csv, .tsv or .txt with alpaca, chat, completion, text or pre-tokenized rows (see data inspect)' },
    { name: 'format', kind: 'string', choices: DATA_FORMATS, help: 'how to read the data rows', defaultText: D.dataFormat },
    { name: 'all-tokens', kind: 'boolean', help: 'train on every token (default: completion tokens only; prompt, system and user tokens masked)' },
    { name: 'pack', kind: 'boolean', help: 'pack rows into --seq-len sequences (documents do not attend to each other)' },
    { name: 'method', kind: 'string', choices: TRAIN_METHODS, help: 'what to train (qlora: LoRA on the base held in 4-bit NF4; prompt / prefix: PEFT prompt / prefix tuning)', defaultText: 'lora' },
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'run folder: adapter, metrics.jsonl, run.json, checkpoints/' },
    ...QUANT_FLAGS.map((f) => ({ ...f, help: `${f.help} (${f.name === 'quant' ? '--method prompt or prefix; qlora is always nf4' : '--method qlora, or prompt / prefix with --quant nf4'})` })),
    { name: 'rank', kind: 'int', min: 1, help: 'LoRA rank r', defaultText: String(D.rank) },
    { name: 'alpha', kind: 'number', above: 0, help: 'LoRA alpha (scaling = alpha / r)', defaultText: String(D.alpha) },
    { name: 'dropout', kind: 'number', min: 0, below: 1, help: 'dropout on the LoRA branch input', defaultText: String(D.dropout) },
    { name: 'targets', kind: 'list', choices: [...LORA_TARGETS, 'all-linear'], help: 'modules to adapt', defaultText: PEFT_DEFAULT_TARGETS.join(',') },
    { name: 'rslora', kind: 'boolean', help: 'rank-stabilized LoRA: scaling = alpha / sqrt(r)' },
    { name: 'lora-init', kind: 'string', choices: ['default', 'gaussian'], help: 'LoRA A initialization (B starts at 0)', defaultText: 'default' },
    { name: 'layers', kind: 'list', valueName: '0,1,..', help: 'adapt only these layer indices', defaultText: 'all' },
    { name: 'init-adapter', kind: 'string', valueName: 'DIR', help: 'start from this PEFT adapter of the method\'s kind (takes its rank, alpha, targets, rslora, layers / virtual tokens)' },
    { name: 'virtual-tokens', kind: 'int', min: 1, help: 'virtual tokens of prompt or prefix tuning (PEFT num_virtual_tokens)', defaultText: String(D.virtualTokens) },
    { name: 'prompt-init', kind: 'string', choices: PROMPT_INIT_CHOICES, help: 'prompt tuning init: N(0,1), the embeddings of --prompt-init-text, or of random vocabulary tokens', defaultText: 'random (text with --prompt-init-text)' },
    { name: 'prompt-init-text', kind: 'string', valueName: 'TEXT', help: 'prompt tuning: start from this text\'s token embeddings (tokenized with special tokens, repeated or cut to --virtual-tokens)' },
    { name: 'prefix-projection', kind: 'boolean', help: 'prefix tuning: train through an MLP (PEFT prefix_projection), folded into the saved table' },
    { name: 'encoder-hidden-size', kind: 'int', min: 1, help: 'prefix tuning: hidden size of that MLP (needs --prefix-projection)', defaultText: 'head_dim * kv_heads' },
    { name: 'lr', kind: 'number', min: 0, help: 'peak learning rate', defaultText: `${D.loraLr} (lora) / ${D.fullLr} (full) / ${D.promptLr} (prompt) / ${D.prefixLr} (prefix)` },
    { name: 'optimizer', kind: 'string', choices: ['adamw', 'sgd'], help: 'optimizer (adamw: betas 0.9, 0.999, eps 1e-8)', defaultText: 'adamw' },
    { name: 'weight-decay', kind: 'number', min: 0, help: 'decoupled weight decay', defaultText: String(D.weightDecay) },
    { name: 'scheduler', kind: 'string', choices: SCHEDULER_KINDS, help: 'learning-rate schedule after warmup', defaultText: D.scheduler },
    { name: 'warmup-steps', kind: 'int', min: 0, help: 'linear warmup steps', defaultText: String(D.warmupSteps) },
    { name: 'steps', kind: 'int', min: 0, help: 'optimizer steps (instead of --epochs)' },
    { name: 'epochs', kind: 'int', min: 1, help: 'passes over the training data', defaultText: String(D.epochs) },
    { name: 'batch-size', kind: 'int', min: 1, help: 'examples per micro-batch', defaultText: String(D.batchSize) },
    { name: 'grad-accum', kind: 'int', min: 1, help: 'micro-batches per optimizer step', defaultText: String(D.gradAccum) },
    { name: 'seq-len', kind: 'int', min: 2, help: 'truncate examples to this many tokens', defaultText: `${D.seqLen}, or what the model's positions allow` },
    { name: 'clip', kind: 'number', min: 0, help: 'max global gradient norm (0 = off)', defaultText: String(D.clip) },
    { name: 'seed', kind: 'int', min: 0, help: 'seed for initialization, shuffling, split and dropout', defaultText: String(D.seed) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'all cores' },
    { name: 'eval-split', kind: 'number', min: 0, below: 1, help: 'fraction of the data held out for evaluation', defaultText: String(D.evalSplit) },
    { name: 'eval-every', kind: 'int', min: 0, help: 'evaluate every N steps (0 = at the end only)', defaultText: String(D.evalEvery) },
    { name: 'save-every', kind: 'int', min: 0, help: 'save a checkpoint every N steps (0 = never)', defaultText: String(D.saveEvery) },
    { name: 'keep-checkpoints', kind: 'int', min: 0, help: 'keep the newest N checkpoints (0 = all)', defaultText: String(D.keepCheckpoints) },
    { name: 'overwrite', kind: 'boolean', help: 'replace the finished run in --out (its adapter, metrics and run.json); without it such a folder is refused' },
    { name: 'resume', kind: 'string', valueName: 'RUN_DIR', help: 'continue the run in RUN_DIR from its newest complete checkpoint (its run.json gives the settings)' },
    { name: 'gradient-checkpointing', kind: 'boolean', help: 'recompute activations in backward to save memory' },
    { name: 'ignore-memory-check', kind: 'boolean', help: 'start even when the memory estimate exceeds the available memory' },
  ],
  notes: [
    'Writes to --out: the adapter (lora, qlora, prompt, prefix: adapter_config.json + adapter_model.safetensors;',
    'full: a complete model folder), metrics.jsonl (one row per step), run.json (settings and status),',
    'checkpoints/step-N/ (with --save-every). Training runs in a child process; Ctrl-C stops at the next',
    'step with a checkpoint (press it again to stop at once). With --resume RUN_DIR only --lr, --threads,',
    '--keep-checkpoints, --gradient-checkpointing and --ignore-memory-check may be given.',
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

function refuseFlags(args: ParsedArgs, flags: string[], applies: string): void {
  const misplaced = flags.find((f) => args.has(f));
  if (misplaced) throw new UsageError(`--${misplaced} applies to ${applies} only`, 'train');
}

function promptSettings(args: ParsedArgs): AdapterPrompt {
  const text = args.string('prompt-init-text') ?? null;
  const choice = (args.string('prompt-init') ?? (text !== null ? 'text' : 'random')) as (typeof PROMPT_INIT_CHOICES)[number];
  if (choice === 'text' && (text === null || text === '')) throw new UsageError('--prompt-init text needs --prompt-init-text with the text to start from', 'train');
  if (choice !== 'text' && text !== null) throw new UsageError(`--prompt-init-text applies to --prompt-init text, not ${choice}`, 'train');
  return { numVirtualTokens: args.number('virtual-tokens') ?? D.virtualTokens, init: PROMPT_INIT_OF[choice], initText: text };
}

function prefixSettings(args: ParsedArgs): AdapterPrefix {
  const projection = args.boolean('prefix-projection');
  if (args.has('encoder-hidden-size') && !projection) throw new UsageError('--encoder-hidden-size needs --prefix-projection (it sizes the projection\'s MLP)', 'train');
  return { numVirtualTokens: args.number('virtual-tokens') ?? D.virtualTokens, projection, encoderHiddenSize: args.number('encoder-hidden-size') ?? null };
}

function defaultLr(method: TrainMethod): number {
  switch (method) {
    case 'full': return D.fullLr;
    case 'prompt': return D.promptLr;
    case 'prefix': return D.prefixLr;
    default: return D.loraLr;
  }
}

/** Turns the command line into a complete run configuration (model-independent checks only). */
export function trainConfigFromArgs(args: ParsedArgs): TrainConfig {
  const method = (args.string('method') ?? 'lora') as TrainMethod;
  const virtual = method === 'prompt' || method === 'prefix';
  if (!trainsLora(method)) refuseFlags(args, LORA_ONLY_FLAGS, '--method lora and qlora');
  if (method === 'full') refuseFlags(args, ['init-adapter'], '--method lora, qlora, prompt and prefix');
  if (!virtual) refuseFlags(args, ['virtual-tokens'], '--method prompt and prefix');
  if (method !== 'prompt') refuseFlags(args, PROMPT_ONLY_FLAGS, '--method prompt');
  if (method !== 'prefix') refuseFlags(args, PREFIX_ONLY_FLAGS, '--method prefix');
  if (args.has('quant') && !virtual && method !== 'qlora') {
    throw new UsageError(`--quant applies to --method prompt and prefix (for LoRA on a 4-bit base use --method qlora${method === 'full' ? '; full fine-tuning cannot train 4-bit weights' : ''})`, 'train');
  }
  if (method !== 'qlora' && !(virtual && args.has('quant'))) {
    const misplaced = ['quant-blocksize', 'no-double-quant'].find((f) => args.has(f));
    if (misplaced) throw new UsageError(`--${misplaced} applies to --method qlora only (or to prompt / prefix with --quant nf4)`, 'train');
  }
  if (method === 'prompt' && args.boolean('pack')) {
    throw new UsageError('--pack cannot be used with --method prompt: prompt tuning prepends the virtual tokens to each sequence, so every document needs its own row (prefix tuning and LoRA can pack)', 'train');
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
    quantization: method === 'qlora' ? quantizationFromArgs(args, true) : virtual ? quantizationFromArgs(args) : null,
    lora: trainsLora(method)
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
    prompt: method === 'prompt' ? promptSettings(args) : null,
    prefix: method === 'prefix' ? prefixSettings(args) : null,
    initAdapter: initAdapter === null ? null : resolve(initAdapter),
    optimizer: (args.string('optimizer') ?? 'adamw') as 'adamw' | 'sgd',
    lr: num('lr', defaultLr(method)),
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
    dataFormat: (args.string('format') ?? D.dataFormat) as DataFormat,
    completionOnly: !args.boolean('all-tokens'),
    pack: args.boolean('pack'),
    keepCheckpoints: num('keep-checkpoints', D.keepCheckpoints),
  };
}

/** Flags a resumed run may change: none of them alters what the run computes, except --lr (on purpose, e.g. after a NaN stop). */
const RESUME_OVERRIDES = ['resume', 'lr', 'threads', 'keep-checkpoints', 'gradient-checkpointing', 'ignore-memory-check'];

/** The configuration of a resumed run: its run.json, with the few overrides the command line may give. */
export function resumeConfig(stored: TrainConfig, dir: string, args: ParsedArgs): TrainConfig {
  const other = trainSpec.flags.map((f) => f.name).find((name) => args.has(name) && !RESUME_OVERRIDES.includes(name));
  if (other) {
    throw new UsageError(`--${other} cannot be given with --resume: the run continues with the settings in its run.json (only ${RESUME_OVERRIDES.slice(1).map((f) => `--${f}`).join(', ')} may change)`, 'train');
  }
  return {
    ...stored,
    out: dir, // the folder may have moved since the run started
    lr: args.number('lr') ?? stored.lr,
    threads: args.number('threads') ?? stored.threads,
    keepCheckpoints: args.number('keep-checkpoints') ?? stored.keepCheckpoints,
    gradientCheckpointing: stored.gradientCheckpointing || args.boolean('gradient-checkpointing'),
    ignoreMemoryCheck: stored.ignoreMemoryCheck || args.boolean('ignore-memory-check'),
  };
}

/**
 * Trains in a child process, printing its events; SIGINT/SIGTERM cancel it
 * (a checkpoint at the next step), a second one kills it at once.
 */
async function trainInChild(config: TrainConfig, resume: boolean, io: CliIO, overwrite = false): Promise<RunSummary> {
  const run = new TrainingRun({ config, resume, overwrite });
  run.onEvent(eventPrinter({ write: (text: string) => io.stderr(text), isTTY: io.stderrIsTTY }));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.stderr(`\n${signal}: stopping after the current step with a checkpoint (again to stop at once)\n`);
      run.cancel();
    } else {
      run.kill('SIGKILL');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    run.start();
    const end = await run.wait();
    if (end.type === 'finished') return end.summary;
    throw new Error(end.message);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const trainCommand: Command = {
  spec: trainSpec,
  async run(args, io) {
    const resumeDir = args.string('resume');
    if (resumeDir === undefined) {
      const config = trainConfigFromArgs(args);
      // The default --seq-len shrinks to what the model (and the virtual tokens) allow; an explicit one is checked.
      if (!args.has('seq-len')) {
        const { spec } = await openModelFolder(config.model);
        config.seqLen = Math.max(2, Math.min(config.seqLen, spec.maxPositionEmbeddings - runVirtualTokens(config)));
      }
      const summary = await trainInChild(config, false, io, args.boolean('overwrite'));
      io.stdout(JSON.stringify(summary) + '\n');
      return;
    }
    const dir = resolve(resumeDir);
    const record = await readRunRecord(dir);
    if (!record) throw new Error(`${dir}: has no run.json, so it is not a run folder (give the --out of a run)`);
    const config = resumeConfig(record.config, dir, args);
    if (record.status === 'finished') {
      // Nothing to do is not an error: scripts may resume unconditionally.
      io.stderr(`${dir}: the run already finished (${record.steps_done} of ${record.total_steps ?? record.steps_done} steps); nothing to resume. The ${trainsAdapter(config.method) ? 'adapter' : 'model'} is in ${dir}.\n`);
      if (record.summary) io.stdout(JSON.stringify(record.summary) + '\n');
      return;
    }
    const summary = await trainInChild(config, true, io);
    io.stdout(JSON.stringify(summary) + '\n');
  },
};
