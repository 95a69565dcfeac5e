// `peft-studio train`: fine-tune a model (LoRA, QLoRA, prompt or prefix tuning,
// or full fine-tuning) on a dataset, in a child process; or continue a run.
import { DATASET_PATH_KINDS } from '../../data/containers/file-types.js';
import { openModelFolder } from '../../models/folder.js';
import { runVirtualTokens } from '../../training/run.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError, type CommandSpec, type ParsedArgs } from '../args.js';
import type { Command } from '../command.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../../adapters/peft-config.js';
import { DATA_FORMATS, TRAIN_DEFAULTS as D, TRAIN_METHODS, trainsAdapter, type TrainConfig } from '../../training/config.js';
import { QUANT_FLAGS } from '../quant-flags.js';
import { DEVICE_FLAG } from '../device-flag.js';
import { PRECISION_FLAG } from '../precision-flag.js';
import { SCHEDULER_KINDS } from '../../training/schedule.js';
import type { RunSummary } from '../../training/run.js';
import { TrainingRun } from '../../runs/manager.js';
import { eventPrinter } from '../../runs/print-events.js';
import { readRunRecord } from '../../runs/run-record.js';
import { ensureStudioHome } from '../../runs/run-index.js';
import type { CliIO } from '../command.js';
import { stopSignalAction } from '../stop-signal.js';
import {
  defaultSeqLenFor, limitsOf, PROMPT_INIT_CHOICES, RESUME_OVERRIDES, resumedConfig, SettingsError, trainConfigFromSettings,
  type SettingField, type TrainSettings,
} from '../../training/settings.js';

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune a model on a dataset (LoRA, QLoRA, prompt or prefix tuning, or full fine-tuning), or continue a run (--resume).',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json), or org/name of a model in the Hugging Face cache' },
    { name: 'data', kind: 'string', valueName: 'DATASET', help: `dataset: ${DATASET_PATH_KINDS}; or org/name of a dataset in the Hugging Face cache; with alpaca, chat, completion, text or pre-tokenized rows (see data inspect)` },
    { name: 'format', kind: 'string', choices: DATA_FORMATS, help: 'how to read the data rows', defaultText: D.dataFormat },
    { name: 'all-tokens', kind: 'boolean', help: 'train on every token (default: completion tokens only; prompt, system and user tokens masked)' },
    { name: 'pack', kind: 'boolean', help: 'pack rows into --seq-len sequences (documents do not attend to each other)' },
    { name: 'method', kind: 'string', choices: TRAIN_METHODS, help: 'what to train (qlora: LoRA on the base held in 4-bit NF4; prompt / prefix: PEFT prompt / prefix tuning)', defaultText: 'lora' },
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'run folder: adapter, metrics.jsonl, run.json, checkpoints/' },
    ...QUANT_FLAGS.map((f) => ({ ...f, help: `${f.help} (${f.name === 'quant' ? '--method prompt or prefix; qlora is always nf4' : '--method qlora, or prompt / prefix with --quant nf4'})` })),
    { name: 'rank', kind: 'int', ...limitsOf('rank'), help: 'LoRA rank r', defaultText: String(D.rank) },
    { name: 'alpha', kind: 'number', ...limitsOf('alpha'), help: 'LoRA alpha (scaling = alpha / r)', defaultText: String(D.alpha) },
    { name: 'dropout', kind: 'number', ...limitsOf('dropout'), help: 'dropout on the LoRA branch input', defaultText: String(D.dropout) },
    { name: 'targets', kind: 'list', choices: [...LORA_TARGETS, 'all-linear'], help: 'modules to adapt', defaultText: PEFT_DEFAULT_TARGETS.join(',') },
    { name: 'rslora', kind: 'boolean', help: 'rank-stabilized LoRA: scaling = alpha / sqrt(r)' },
    { name: 'dora', kind: 'boolean', help: 'DoRA (weight-decomposed LoRA, PEFT use_dora): a trained magnitude per output row; slower per step than LoRA' },
    { name: 'lora-init', kind: 'string', choices: ['default', 'gaussian'], help: 'LoRA A initialization (B starts at 0)', defaultText: 'default' },
    { name: 'layers', kind: 'list', valueName: '0,1,..', help: 'adapt only these layer indices', defaultText: 'all' },
    { name: 'init-adapter', kind: 'string', valueName: 'DIR', help: 'start from this PEFT adapter of the method\'s kind (takes its rank, alpha, targets, rslora, dora, layers / virtual tokens)' },
    { name: 'virtual-tokens', kind: 'int', ...limitsOf('virtualTokens'), help: 'virtual tokens of prompt or prefix tuning (PEFT num_virtual_tokens)', defaultText: String(D.virtualTokens) },
    { name: 'prompt-init', kind: 'string', choices: PROMPT_INIT_CHOICES, help: 'prompt tuning init: N(0,1), the embeddings of --prompt-init-text, or of random vocabulary tokens', defaultText: 'random (text with --prompt-init-text)' },
    { name: 'prompt-init-text', kind: 'string', valueName: 'TEXT', help: 'prompt tuning: start from this text\'s token embeddings (tokenized with special tokens, repeated or cut to --virtual-tokens)' },
    { name: 'prefix-projection', kind: 'boolean', help: 'prefix tuning: train through an MLP (PEFT prefix_projection), folded into the saved table' },
    { name: 'encoder-hidden-size', kind: 'int', ...limitsOf('encoderHiddenSize'), help: 'prefix tuning: hidden size of that MLP (needs --prefix-projection)', defaultText: 'head_dim * kv_heads' },
    { name: 'lr', kind: 'number', ...limitsOf('lr'), help: 'peak learning rate', defaultText: `${D.loraLr} (lora) / ${D.fullLr} (full) / ${D.promptLr} (prompt) / ${D.prefixLr} (prefix)` },
    { name: 'optimizer', kind: 'string', choices: ['adamw', 'sgd'], help: 'optimizer (adamw: betas 0.9, 0.999, eps 1e-8)', defaultText: 'adamw' },
    { name: 'weight-decay', kind: 'number', ...limitsOf('weightDecay'), help: 'decoupled weight decay', defaultText: String(D.weightDecay) },
    { name: 'scheduler', kind: 'string', choices: SCHEDULER_KINDS, help: 'learning-rate schedule after warmup', defaultText: D.scheduler },
    { name: 'warmup-steps', kind: 'int', ...limitsOf('warmupSteps'), help: 'linear warmup steps', defaultText: String(D.warmupSteps),
      // transformers 5 reads a warmup_steps below 1 as a fraction of the run; here that is its own flag
      refusedHint: (raw) => (Number(raw) > 0 && Number(raw) < 1 ? `a fraction of the run is --warmup-ratio ${raw.trim()}` : undefined) },
    { name: 'warmup-ratio', kind: 'number', ...limitsOf('warmupRatio'), valueName: 'R', help: 'warmup as a fraction of the run instead of --warmup-steps: ceil(R x the run\'s optimizer steps), as transformers\' warmup_ratio (0.03: 3%); run.json keeps R and the steps it came to' },
    { name: 'steps', kind: 'int', ...limitsOf('steps'), help: 'optimizer steps (instead of --epochs)' },
    { name: 'epochs', kind: 'int', ...limitsOf('epochs'), help: 'passes over the training data', defaultText: String(D.epochs) },
    { name: 'batch-size', kind: 'int', ...limitsOf('batchSize'), help: 'examples per micro-batch', defaultText: String(D.batchSize) },
    { name: 'grad-accum', kind: 'int', ...limitsOf('gradAccum'), help: 'micro-batches per optimizer step', defaultText: String(D.gradAccum) },
    { name: 'seq-len', kind: 'int', ...limitsOf('seqLen'), help: 'truncate examples to this many tokens', defaultText: `${D.seqLen}, or what the model's positions allow` },
    { name: 'clip', kind: 'number', ...limitsOf('clip'), help: 'max global gradient norm (0 = off)', defaultText: String(D.clip) },
    { name: 'neftune-alpha', kind: 'number', ...limitsOf('neftuneAlpha'), valueName: 'X', help: 'NEFTune: noise on the input embeddings while training, uniform within X / sqrt(sequence length x hidden size) (Hugging Face\'s neftune_noise_alpha; 5 is usual; 0: off; at most 10000)', defaultText: String(D.neftuneAlpha) },
    { name: 'seed', kind: 'int', ...limitsOf('seed'), help: 'seed for initialization, shuffling, split and dropout', defaultText: String(D.seed) },
    { name: 'threads', kind: 'int', ...limitsOf('threads'), help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    DEVICE_FLAG,
    PRECISION_FLAG,
    { name: 'eval-split', kind: 'number', ...limitsOf('evalSplit'), help: 'fraction of the data held out for evaluation', defaultText: String(D.evalSplit) },
    { name: 'eval-data', kind: 'string', valueName: 'DATASET', help: `evaluate on this data instead of an --eval-split (a validation set, read as --data is: same formats, --format, masking, --seq-len, --pack): ${DATASET_PATH_KINDS}; or org/name of a dataset in the Hugging Face cache` },
    { name: 'eval-every', kind: 'int', ...limitsOf('evalEvery'), help: 'evaluate every N steps (0 = at the end only)', defaultText: String(D.evalEvery) },
    { name: 'keep-best', kind: 'boolean', help: 'write the adapter of every new lowest eval loss to --out/best/ (with best.json: step, eval_loss); --out keeps the last step\'s. Needs an eval set and --eval-every; with --method full it is a whole model folder (twice the disk)' },
    { name: 'early-stop', kind: 'int', ...limitsOf('earlyStop'), valueName: 'N', help: 'stop (as finished) after N evaluations in a row without improvement; needs an eval set and --eval-every', defaultText: 'off' },
    { name: 'early-stop-delta', kind: 'number', ...limitsOf('earlyStopDelta'), help: 'an evaluation improves only when lower than the best by more than this (with --early-stop)', defaultText: String(D.earlyStopDelta) },
    { name: 'save-every', kind: 'int', ...limitsOf('saveEvery'), help: 'save a checkpoint every N steps (0 = never)', defaultText: String(D.saveEvery) },
    { name: 'keep-checkpoints', kind: 'int', ...limitsOf('keepCheckpoints'), help: 'keep the newest N checkpoints (0 = all)', defaultText: String(D.keepCheckpoints) },
    { name: 'overwrite', kind: 'boolean', help: 'delete the finished run in --out as soon as the new run starts (its adapter, metrics, checkpoints and run.json are gone even if the new run then fails or is stopped); without it such a folder is refused' },
    { name: 'resume', kind: 'string', valueName: 'RUN_DIR', help: 'continue the run in RUN_DIR from its newest complete checkpoint (its run.json gives the settings)' },
    { name: 'gradient-checkpointing', kind: 'boolean', help: 'recompute activations in backward to save memory' },
    { name: 'ignore-memory-check', kind: 'boolean', help: 'start even when the memory estimate exceeds the available memory' },
    { name: 'ignore-disk-check', kind: 'boolean', help: 'start even when what the run writes (checkpoints, the result) exceeds its disk\'s free space' },
  ],
  notes: [
    'Writes to --out: the adapter (lora, qlora, prompt, prefix: adapter_config.json + adapter_model.safetensors;',
    'full: a complete model folder), metrics.jsonl (one row per step), run.json (settings and status),',
    'checkpoints/step-N/ (with --save-every), best/ (with --keep-best). Training runs in a child process; Ctrl-C stops at the next',
    'step with a checkpoint (press it again to stop at once). With --resume RUN_DIR only --lr, --threads,',
    '--keep-checkpoints, --gradient-checkpointing, --ignore-memory-check, --ignore-disk-check, --device and --precision may be given (without',
    'them the run continues on the device and in the precision run.json recorded; a bf16 run continues on the CPU with',
    '--device cpu --precision fp32), and --model / --data / --eval-data when the model folder, the data file or the',
    'evaluation file moved (checked to be the same files the run started with).',
  ],
};

/** The TrainSettings field each flag sets (the switches --all-tokens and --no-double-quant set theirs to false). */
const FLAG_OF: Record<SettingField, string> = {
  model: 'model', data: 'data', evalData: 'eval-data', out: 'out', method: 'method', dataFormat: 'format', completionOnly: 'all-tokens', pack: 'pack',
  quant: 'quant', quantBlocksize: 'quant-blocksize', doubleQuant: 'no-double-quant',
  rank: 'rank', alpha: 'alpha', dropout: 'dropout', targets: 'targets', rslora: 'rslora', dora: 'dora', loraInit: 'lora-init', layers: 'layers',
  initAdapter: 'init-adapter', virtualTokens: 'virtual-tokens', promptInit: 'prompt-init', promptInitText: 'prompt-init-text',
  prefixProjection: 'prefix-projection', encoderHiddenSize: 'encoder-hidden-size',
  lr: 'lr', optimizer: 'optimizer', weightDecay: 'weight-decay', scheduler: 'scheduler', warmupSteps: 'warmup-steps', warmupRatio: 'warmup-ratio', steps: 'steps',
  epochs: 'epochs', batchSize: 'batch-size', gradAccum: 'grad-accum', seqLen: 'seq-len', clip: 'clip', neftuneAlpha: 'neftune-alpha', seed: 'seed', threads: 'threads',
  evalSplit: 'eval-split', evalEvery: 'eval-every', saveEvery: 'save-every', keepBest: 'keep-best', earlyStop: 'early-stop', earlyStopDelta: 'early-stop-delta', keepCheckpoints: 'keep-checkpoints',
  gradientCheckpointing: 'gradient-checkpointing', ignoreMemoryCheck: 'ignore-memory-check', ignoreDiskCheck: 'ignore-disk-check', device: 'device', precision: 'precision',
};
const OFF_SWITCHES = ['all-tokens', 'no-double-quant'];
const flagName = (field: SettingField) => `--${FLAG_OF[field]}`;

/** The flags given, as the settings they stand for (nothing is defaulted here). */
export function settingsFromArgs(args: ParsedArgs): TrainSettings {
  const settings: Record<string, unknown> = {};
  for (const [field, flag] of Object.entries(FLAG_OF)) {
    if (!args.has(flag)) continue;
    const kind = trainSpec.flags.find((f) => f.name === flag)!.kind;
    settings[field] = kind === 'boolean' ? !OFF_SWITCHES.includes(flag)
      : kind === 'list' ? args.list(flag)
      : kind === 'string' ? args.string(flag)
      : args.number(flag);
  }
  return settings as TrainSettings;
}

/** A SettingsError as the usage error the command line has always printed (naming flags). */
function asUsageError(e: unknown): unknown {
  if (!(e instanceof SettingsError)) return e;
  return new UsageError(e.missing ? `train needs ${flagName(e.field)}` : e.message, 'train');
}

/** Turns the command line into a complete run configuration (model-independent checks only). */
export function trainConfigFromArgs(args: ParsedArgs): TrainConfig {
  try {
    return trainConfigFromSettings(settingsFromArgs(args), flagName);
  } catch (e) {
    throw asUsageError(e);
  }
}

const RESUME_FLAGS = ['resume', ...RESUME_OVERRIDES.map((field) => FLAG_OF[field])];

/** The configuration of a resumed run: its run.json, with the few overrides the command line may give. */
export function resumeConfig(stored: TrainConfig, dir: string, args: ParsedArgs): TrainConfig {
  const other = trainSpec.flags.map((f) => f.name).find((name) => args.has(name) && !RESUME_FLAGS.includes(name));
  if (other) {
    throw new UsageError(`--${other} cannot be given with --resume: the run continues with the settings in its run.json (only ${RESUME_FLAGS.slice(1).map((f) => `--${f}`).join(', ')} may change)`, 'train');
  }
  try {
    return resumedConfig(stored, dir, settingsFromArgs(args), flagName);
  } catch (e) {
    throw asUsageError(e);
  }
}

/**
 * Trains in a child process, printing its events; SIGINT/SIGTERM cancel it
 * (a checkpoint at the next step), a second one kills it at once.
 */
async function trainInChild(config: TrainConfig, resume: boolean, io: CliIO, overwrite = false): Promise<RunSummary> {
  const run = new TrainingRun({ config, resume, overwrite });
  run.onEvent(eventPrinter({ write: (text: string) => io.stderr(text), isTTY: io.stderrIsTTY }));
  let signals = 0;
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const action = stopSignalAction(signals + 1, Date.now() - firstAt);
    if (action === 'ignore') return;
    signals++;
    if (action === 'cancel') {
      firstAt = Date.now();
      io.stderr(`\n${signal}: stopping after the current step with a checkpoint (again to stop at once)\n`);
      // Ctrl-C is the user's; SIGTERM is the system (a shutdown, a service manager) stopping it
      run.cancel(signal === 'SIGTERM' ? 'shutdown' : 'user');
    } else {
      io.stderr(`\n${signal} again: stopping at once, without a checkpoint\n`);
      run.stopNow(signal === 'SIGTERM' ? 'shutdown' : 'user'); // reported as that stop (crash-report.ts), not as memory
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
    // The run index lives there: a bad PEFT_STUDIO_HOME fails now, not inside the training process.
    await ensureStudioHome();
    const resumeDir = args.string('resume');
    if (resumeDir === undefined) {
      const config = trainConfigFromArgs(args);
      // The default --seq-len shrinks to what the model (and the virtual tokens) allow; an explicit one is checked.
      if (!args.has('seq-len')) config.seqLen = defaultSeqLenFor((await openModelFolder(config.model)).spec, runVirtualTokens(config));
      const summary = await trainInChild(config, false, io, args.boolean('overwrite'));
      io.stdout(JSON.stringify(summary) + '\n');
      return;
    }
    const dir = resolve(resumeDir);
    const record = await readRunRecord(dir);
    if (!record) {
      if (!existsSync(dir)) throw new Error(`${dir}: no such folder (give the --out of a run; peft-studio runs lists them)`);
      throw new Error(`${dir}: has no run.json, so it is not a run folder (give the --out of a run)`);
    }
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
