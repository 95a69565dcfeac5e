// The run form's settings for one method on one model: label, one line of
// help, the default `train` would use (TRAIN_DEFAULTS, the method's learning
// rate, the model's sequence length), limits (the resolver's own) and whether
// it shows by default or behind "advanced".
import { defaultThreads } from '../system/machine.js';
import type { HyperparameterSpec, TrainMethod } from '../api/contract.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../adapters/peft-config.js';
import type { DeviceInfo, ModelSpec } from '../engine/native.js';
import { whyUnusable } from '../engine/device.js';
import { loadAddon } from '../engine/load.js';
import { DEFAULT_NF4 } from '../session.js';
import { PRECISIONS, PRECISION_TRADE_OFF } from '../engine/precision.js';
import { TRAIN_DEFAULTS as D, trainsLora, trainsVirtualTokens } from '../training/config.js';
import { SCHEDULER_KINDS } from '../training/schedule.js';
import { HYPER_LABELS } from './form-labels.js';
import { APP_STEPS_LIMIT, defaultLr, defaultSeqLenFor, SETTING_LIMITS, type LimitedField, type SettingLimit } from '../training/settings.js';

type Key = HyperparameterSpec['key'];

/** What DoRA does and costs, in a user's words (PEFT use_dora; the Export page says why no GGUF LoRA). */
const DORA_HELP = 'DoRA (weight-decomposed LoRA): also learns a magnitude for each output of every adapted layer. ' +
  'Often closer to full fine-tuning at low rank; each step is slower (one more product per layer).';

/** What NEFTune does, in a user's words (Hugging Face neftune_noise_alpha; every method: the noise is on the embeddings). */
const NEFTUNE_HELP = 'Adds small random noise to the input embeddings while training (NEFTune). Often improves instruction-following answers; ' +
  '5 is a common value, 0 turns it off. Nothing changes at evaluation or when the model answers.';

/** The limits for the form, as the resolver holds them: inclusive min / max, exclusive above / below (LoRA alpha > 0). */
function bounds(key: LimitedField): Pick<HyperparameterSpec, 'min' | 'max' | 'above' | 'below'> {
  const { kind: _kind, ...limits } = SETTING_LIMITS[key] as SettingLimit;
  return limits;
}

function num(key: Key & LimitedField, help: string, value: number | null, group: HyperparameterSpec['group'], extra: Partial<HyperparameterSpec> = {}): HyperparameterSpec {
  const kind = SETTING_LIMITS[key].kind === 'int' ? 'int' : 'number';
  return { key, label: HYPER_LABELS[key], help, kind, default: value, ...bounds(key), group, ...extra };
}

/** The device choices: auto, cpu, then 'cuda:N' (its own index) for each GPU the engine can use; deviceHelp says why another is not offered. */
export function deviceChoices(gpus: readonly DeviceInfo[]): string[] {
  return ['auto', 'cpu', ...gpus.filter((g) => whyUnusable(g) === null).map((g) => `cuda:${g.index}`)];
}

/** The device field's help: what auto does, then each GPU of this machine that is not offered, and why. */
export function deviceHelp(gpus: readonly DeviceInfo[]): string {
  const unusable = gpus.map(whyUnusable).filter((why): why is string => why !== null);
  return ['Where to train: auto picks the first NVIDIA GPU when there is one', ...unusable.map((why) => `Not offered: ${why}`)].join('. ');
}

/** gpus: what addon.devices() lists (asked now when not given). */
export function hyperparameterSpecs(method: TrainMethod, spec: ModelSpec, gpus: readonly DeviceInfo[] = loadAddon().devices()): HyperparameterSpec[] {
  const virtual = trainsVirtualTokens(method) ? D.virtualTokens : 0;
  const seqLen = defaultSeqLenFor(spec, virtual);
  const out: HyperparameterSpec[] = [
    num('lr', 'Peak step size; the schedule warms up to it and then decays.', defaultLr(method), 'basic'),
    num('epochs', 'Passes over the training rows (ignored when steps is set).', D.epochs, 'basic'),
    num('steps', 'Optimizer steps to run instead of whole epochs; empty: use epochs.', null, 'basic', { min: APP_STEPS_LIMIT.min }),
    num('batchSize', 'Examples per micro-batch; memory grows with it.', D.batchSize, 'basic'),
    num('seqLen', 'Longer examples are truncated to this many tokens; memory grows with it.', seqLen, 'basic', { max: spec.maxPositionEmbeddings - virtual }),
  ];
  if (trainsLora(method)) {
    out.push(
      num('rank', 'Size of the low-rank update: more capacity, a larger adapter.', D.rank, 'basic'),
      num('alpha', 'Scales the update by alpha / rank.', D.alpha, 'basic'),
      num('dropout', 'Dropout on the LoRA branch input, against overfitting small data.', D.dropout, 'advanced'),
      { key: 'targets', label: HYPER_LABELS.targets, help: 'Which linear layers get a LoRA update.', kind: 'list', default: [...PEFT_DEFAULT_TARGETS], choices: [...LORA_TARGETS], group: 'advanced' },
      { key: 'rslora', label: HYPER_LABELS.rslora, help: 'Scale by alpha / sqrt(rank), which keeps high ranks stable.', kind: 'boolean', default: false, group: 'advanced' },
      { key: 'dora', label: HYPER_LABELS.dora, help: DORA_HELP, kind: 'boolean', default: false, group: 'advanced' },
    );
  }
  if (method === 'qlora') {
    out.push(
      num('quantBlocksize', 'Weights per 4-bit scale (a power of two); smaller is more precise and larger.', DEFAULT_NF4.blocksize, 'advanced'),
      { key: 'doubleQuant', label: HYPER_LABELS.doubleQuant, help: 'Quantize the scales too (4.127 instead of 4.5 bits per weight).', kind: 'boolean', default: DEFAULT_NF4.doubleQuant, group: 'advanced' },
    );
  }
  if (trainsVirtualTokens(method)) {
    out.push(num('virtualTokens', 'Learned tokens before every input: more capacity, fewer positions left for text.', D.virtualTokens, 'basic'));
  }
  if (method === 'prompt') {
    out.push({ key: 'promptInitText', label: HYPER_LABELS.promptInitText, help: 'Initialize the virtual tokens from this text\'s token embeddings (repeated or cut to fit); empty: random values, N(0, 1) (PEFT\'s RANDOM init).', kind: 'text', default: null, group: 'advanced' });
  }
  if (method === 'prefix') {
    out.push({ key: 'prefixProjection', label: HYPER_LABELS.prefixProjection, help: 'Train the prefix through a small MLP (often more stable); the saved adapter is the same size.', kind: 'boolean', default: false, group: 'advanced' });
  }
  out.push(
    num('gradAccum', 'Micro-batches per optimizer step: a larger effective batch without more memory.', D.gradAccum, 'advanced'),
    num('warmupSteps', 'Steps of linear warmup from 0 to the learning rate.', D.warmupSteps, 'advanced'),
    // the form shows it with warmupSteps, as the other way to give the warmup (the run refuses both)
    num('warmupRatio', 'Warm up over this fraction of the run\'s optimizer steps, rounded up (Hugging Face warmup_ratio: 0.03 is 3%); empty: use Warmup steps.', D.warmupRatio, 'advanced'),
    { key: 'scheduler', label: HYPER_LABELS.scheduler, help: 'How the learning rate changes after warmup.', kind: 'choice', default: D.scheduler, choices: [...SCHEDULER_KINDS], group: 'advanced' },
    { key: 'optimizer', label: HYPER_LABELS.optimizer, help: 'AdamW (betas 0.9, 0.999) or plain SGD (no optimizer state).', kind: 'choice', default: 'adamw', choices: ['adamw', 'sgd'], group: 'advanced' },
    num('weightDecay', 'Decoupled weight decay of the trained parameters.', D.weightDecay, 'advanced'),
    num('clip', 'Largest global gradient norm; 0 turns clipping off.', D.clip, 'advanced'),
    num('neftuneAlpha', NEFTUNE_HELP, D.neftuneAlpha, 'advanced'),
    num('evalSplit', 'Share of the rows held out to measure eval loss.', D.evalSplit, 'advanced'),
    num('evalEvery', 'Steps between evaluations; 0: at the end only.', D.evalEvery, 'advanced'),
    // judged on the evaluations during the run: the form shows them off (with the reason) until the run evaluates
    { key: 'keepBest', label: HYPER_LABELS.keepBest, help: 'Also save the adapter of the lowest eval loss in the run folder\'s best/ (the run\'s own adapter stays the last step\'s).' +
      (method === 'full' ? ' Full fine-tuning keeps a whole model there: twice the disk.' : ''), kind: 'boolean', default: false, group: 'advanced' },
    num('earlyStop', 'Stop after this many evaluations in a row without improvement; empty: train to the end.', null, 'advanced'),
    num('earlyStopDelta', 'An evaluation counts as an improvement only when lower than the best by more than this.', D.earlyStopDelta, 'advanced'),
    num('saveEvery', 'Steps between checkpoints (a run can resume from them); 0: only when stopped.', D.saveEvery, 'advanced'),
    num('keepCheckpoints', 'Newest checkpoints kept on disk; 0: all.', D.keepCheckpoints, 'advanced'),
    { key: 'gradientCheckpointing', label: HYPER_LABELS.gradientCheckpointing, help: 'Recompute activations in the backward pass: less memory, about a third slower.', kind: 'boolean', default: false, group: 'advanced' },
    num('seed', 'Seeds initialization, shuffling, the eval split and dropout.', D.seed, 'advanced'),
    num('threads', 'Threads the engine uses.', defaultThreads(), 'advanced'),
    { key: 'device', label: HYPER_LABELS.device, help: deviceHelp(gpus), kind: 'choice', default: D.device, choices: deviceChoices(gpus), group: 'advanced' },
    // the form shows it only where it matters (a GPU chosen or found); on the CPU a note says fp32
    { key: 'precision', label: HYPER_LABELS.precision, help: `auto: bf16 on a GPU with bf16 tensor cores, else fp32. ${PRECISION_TRADE_OFF}`, kind: 'choice', default: D.precision, choices: [...PRECISIONS], group: 'advanced' },
  );
  return out;
}
