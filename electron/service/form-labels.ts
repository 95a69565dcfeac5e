// Every run setting as the app's pages name it: the Hyperparameters page's
// field labels (hyperparameters.ts builds the form from them) and the
// controls of the other pages, which say where they are. The app's
// refusals name settings by these (app-wording.ts), never by their keys.
import type { HyperparameterSpec } from '../api/contract.js';
import type { SettingField } from '../training/settings.js';

/** The Hyperparameters page's label of each of its fields. */
export const HYPER_LABELS: Record<HyperparameterSpec['key'], string> = {
  lr: 'Learning rate',
  epochs: 'Epochs',
  steps: 'Steps',
  batchSize: 'Batch size',
  seqLen: 'Sequence length',
  rank: 'LoRA rank',
  alpha: 'LoRA alpha',
  dropout: 'LoRA dropout',
  targets: 'Target modules',
  rslora: 'Rank-stabilized LoRA',
  dora: 'DoRA',
  quantBlocksize: 'NF4 block size',
  doubleQuant: 'Double quantization',
  virtualTokens: 'Virtual tokens',
  promptInitText: 'Start from text',
  prefixProjection: 'Prefix projection',
  gradAccum: 'Gradient accumulation',
  warmupSteps: 'Warmup steps',
  warmupRatio: 'Warmup fraction',
  scheduler: 'Schedule',
  optimizer: 'Optimizer',
  weightDecay: 'Weight decay',
  clip: 'Gradient clipping',
  neftuneAlpha: 'NEFTune noise (alpha)',
  evalSplit: 'Eval split',
  evalEvery: 'Evaluate every',
  keepBest: 'Keep the best adapter',
  earlyStop: 'Early stopping patience',
  earlyStopDelta: 'Early stopping threshold',
  saveEvery: 'Checkpoint every',
  keepCheckpoints: 'Checkpoints kept',
  gradientCheckpointing: 'Gradient checkpointing',
  seed: 'Seed',
  threads: 'CPU threads',
  device: 'Device',
  precision: 'Precision',
};

/**
 * The settings chosen on the other pages, named with the page (a refusal on
 * the Hyperparameters page must say where to change them). `method` stands
 * inside sentences ("applies to the method lora and qlora only").
 */
const PAGE_LABELS: Partial<Record<SettingField, string>> = {
  model: 'the model folder (Model page)',
  method: 'the method',
  data: 'the dataset (Data page)',
  evalData: 'the evaluation file (Data page)',
  dataFormat: 'the data format (Data page)',
  completionOnly: '"Train on answers only" (Data page)',
  pack: '"Pack short rows" (Data page)',
  out: 'the run folder',
};

/** Every name formLabel gives (to find them in a message). */
export const FORM_LABELS: readonly string[] = [...Object.values(HYPER_LABELS), ...Object.values(PAGE_LABELS)];

/** A setting as the app names it: its label, or its key where no page shows it (the CLI-only ones). */
export function formLabel(field: SettingField | string): string {
  return (HYPER_LABELS as Record<string, string>)[field] ?? (PAGE_LABELS as Record<string, string>)[field] ?? field;
}
