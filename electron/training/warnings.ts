// Settings a run accepts but that are almost surely a slip. None of them is
// wrong enough to refuse: the run does what was asked. Each warning names
// the settings it is about (the keys of the app's run form) and is worded
// twice, once per place it is read: for the command line (the "warning:"
// lines of the run's log, naming flags) and for the app's form (shown by the
// fields before Start, naming them by their labels). The two wordings are
// written out rather than derived from each other, so each reads as its own
// sentence; FORM_LABEL holds the form's labels they use.
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { cpuBudget, roundedQuota, type CpuBudget } from '../system/machine.js';
import type { TrainConfig } from './config.js';
import { countOf } from '../text/plural.js';
import { percentWords, runWarmupSteps } from './warmup.js';

/** The run-form settings a warning can be about (keys of the app's RunSettings.hyper). */
export type WarnedSetting = 'evalEvery' | 'evalSplit' | 'warmupSteps' | 'steps' | 'epochs' | 'rank' | 'targets' | 'threads' | 'lr';

/**
 * The app's labels for those settings, as its form shows them
 * (electron/service/hyperparameters.ts; electron/service/service-warnings.test.ts holds the two together).
 */
export const FORM_LABEL: Record<WarnedSetting, string> = {
  evalEvery: 'Evaluate every',
  evalSplit: 'Eval split',
  warmupSteps: 'Warmup steps',
  steps: 'Steps',
  epochs: 'Epochs',
  rank: 'LoRA rank',
  targets: 'Target modules',
  threads: 'CPU threads',
  lr: 'Learning rate',
};

export interface SettingWarning {
  /** the settings it is about, first the one it starts with (the others are what else could fix it) */
  fields: WarnedSetting[];
  /** the command line's words (the run's log line after "warning: ") */
  cli: string;
  /** the app form's words */
  app: string;
}

/** [out, in] of a LoRA target's weight. */
export function targetShape(spec: ModelSpec, target: LoraTarget): [number, number] {
  const h = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const f = spec.intermediateSize;
  switch (target) {
    case 'q_proj': return [q, h];
    case 'k_proj':
    case 'v_proj': return [kv, h];
    case 'o_proj': return [h, q];
    case 'gate_proj':
    case 'up_proj': return [f, h];
    case 'down_proj': return [h, f];
  }
}

/** A learning rate above this is no fine-tuning rate: a slip (1e30 for 1e-3), said before the run starts. */
const LR_FAR_ABOVE = 1;

/**
 * The warnings for a run of `totalSteps` optimizer steps on this model
 * (null: not known, so nothing is said about warmup against it).
 * `cpu` is the machine's threads within a container's CPU quota (machine.ts
 * cpuBudget; a parameter so tests can pin it; a number: that many hardware
 * threads and no quota).
 */
export function settingWarnings(config: TrainConfig, spec: ModelSpec, totalSteps: number | null, cpu: CpuBudget | number = cpuBudget()): SettingWarning[] {
  const L = FORM_LABEL;
  const warnings: SettingWarning[] = [];
  // an evaluation file (--eval-data) is rows to evaluate on without a split
  if (config.evalEvery > 0 && config.evalSplit === 0 && !config.evalData) {
    warnings.push({
      fields: ['evalEvery', 'evalSplit'],
      cli: `--eval-every ${config.evalEvery} has no effect without --eval-split: no rows are held out to evaluate on; add --eval-split (e.g. 0.1), or drop --eval-every`,
      app: `${L.evalEvery} ${config.evalEvery} has no effect while ${L.evalSplit} is 0: no rows are held out to evaluate on; set ${L.evalSplit} (e.g. 0.1), or set ${L.evalEvery} back to 0`,
    });
  }
  const warmup = totalSteps === null ? 0 : runWarmupSteps(config, totalSteps);
  if (warmup > 0 && totalSteps !== null && totalSteps > 0 && warmup >= totalSteps) {
    // the run's length comes from Steps when set, else from Epochs (and the data)
    const length: WarnedSetting = config.steps !== null ? 'steps' : 'epochs';
    const never = `the learning rate rises for the whole run and never reaches`;
    const ratio = config.warmupRatio ?? null;
    // a fraction below 1 comes to the whole run only in a short one (the count is rounded up to it)
    warnings.push(ratio === null ? {
      fields: ['warmupSteps', length],
      cli: `--warmup-steps ${warmup} is not below the run's ${countOf(totalSteps, 'step')}: ${never} --lr ${config.lr}; use fewer warmup steps`,
      app: `${L.warmupSteps} ${warmup} is not below the run's ${countOf(totalSteps, 'step')}: ${never} the ${L.lr} (${config.lr}); ` +
        `use fewer warmup steps${length === 'steps' ? `, or more ${L.steps}` : ''}`,
    } : {
      // the app's warmup field is one, in steps or as a fraction of the run (its key: warmupSteps)
      fields: ['warmupSteps', length],
      cli: `--warmup-ratio ${ratio} comes to ${countOf(warmup, 'warmup step')} (${percentWords(ratio)} of the run's ${countOf(totalSteps, 'step')}, rounded up), as many as the run has: ` +
        `${never} --lr ${config.lr}; use a smaller --warmup-ratio${length === 'steps' ? ', or more --steps' : ''}`,
      app: `${L.warmupSteps}: ${percentWords(ratio)} of the run's ${countOf(totalSteps, 'step')} comes to ${countOf(warmup, 'step')} (rounded up), as many as the run has: ` +
        `${never} the ${L.lr} (${config.lr}); use a smaller fraction${length === 'steps' ? `, or more ${L.steps}` : ''}`,
    });
  }
  if (config.lora) {
    const dims = config.lora.targets.map((t) => ({ t, shape: targetShape(spec, t) }));
    const smallest = dims.reduce((a, b) => (Math.min(...b.shape) < Math.min(...a.shape) ? b : a), dims[0]);
    const limit = smallest ? Math.min(...smallest.shape) : Infinity;
    if (config.lora.rank > limit) {
      const why = `(${smallest.t} is ${smallest.shape[0]} x ${smallest.shape[1]}): an update there cannot have a rank above ${limit}, so the extra rank only costs memory and time`;
      warnings.push({
        fields: ['rank', 'targets'],
        cli: `--rank ${config.lora.rank} is larger than the smallest dimension of the adapted layers ${why}; use --rank ${limit} or less`,
        app: `${L.rank} ${config.lora.rank} is larger than the smallest dimension of the adapted layers ${why}; use a ${L.rank} of ${limit} or less`,
      });
    }
  }
  if (config.lr > LR_FAR_ABOVE) {
    const why = `is far above any fine-tuning rate (1e-6 to 1e-1; full fine-tuning about 1e-5, LoRA 1e-4 to 1e-3, prompt tuning 3e-2): the first steps throw the weights out of range, and the run diverges or ends with an adapter that only produces garbage`;
    warnings.push({
      fields: ['lr'],
      cli: `--lr ${config.lr} ${why}; use --lr 1e-4 (the default for LoRA) or another rate in that range`,
      app: `${L.lr} ${config.lr} ${why}; use 1e-4 (the default for LoRA) or another rate in that range`,
    });
  }
  const budget = typeof cpu === 'number' ? { threads: cpu, hostThreads: cpu, quota: null } : cpu;
  if (config.threads > budget.threads) {
    const max = budget.threads;
    // a quota that holds the threads below the machine's is what to name: the machine has the threads, the container not the time
    const why = budget.quota !== null && max < budget.hostThreads
      ? `is more than this container's CPU quota allows (${countOf(roundedQuota(budget.quota), 'CPU')} of the machine's ${countOf(budget.hostThreads, 'hardware thread')}): ` +
        'the extra threads get no CPU time of their own, they wait on the quota and on each other and make every step slower'
      : `is more than this machine's ${countOf(max, 'hardware thread')}: the extra threads wait on each other and make every step slower`;
    warnings.push({
      fields: ['threads'],
      cli: `--threads ${config.threads} ${why}; use --threads ${max} or fewer`,
      app: `${L.threads} ${config.threads} ${why}; use ${max} or fewer`,
    });
  }
  return warnings;
}

