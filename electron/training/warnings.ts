// Settings a run accepts but that are almost surely a slip: each becomes one
// warning line in the run's log (the CLI prints it, the app shows the log).
// None of them is wrong enough to refuse: the run does what was asked.
import { availableParallelism } from 'node:os';
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import type { TrainConfig } from './config.js';
import { countOf } from '../text/plural.js';

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

/**
 * The warnings for a run of `totalSteps` optimizer steps on this model.
 * `hardwareThreads` is the machine's (a parameter so tests can pin it).
 */
export function runWarnings(config: TrainConfig, spec: ModelSpec, totalSteps: number, hardwareThreads = availableParallelism()): string[] {
  const warnings: string[] = [];
  if (config.evalEvery > 0 && config.evalSplit === 0) {
    warnings.push(`--eval-every ${config.evalEvery} has no effect without --eval-split: no rows are held out to evaluate on; add --eval-split (e.g. 0.1), or drop --eval-every`);
  }
  if (config.warmupSteps > 0 && totalSteps > 0 && config.warmupSteps >= totalSteps) {
    warnings.push(`--warmup-steps ${config.warmupSteps} is not below the run's ${countOf(totalSteps, 'step')}: the learning rate rises for the whole run and never reaches --lr ${config.lr}; use fewer warmup steps`);
  }
  if (config.lora) {
    const dims = config.lora.targets.map((t) => ({ t, shape: targetShape(spec, t) }));
    const smallest = dims.reduce((a, b) => (Math.min(...b.shape) < Math.min(...a.shape) ? b : a), dims[0]);
    const limit = smallest ? Math.min(...smallest.shape) : Infinity;
    if (config.lora.rank > limit) {
      warnings.push(`--rank ${config.lora.rank} is larger than the smallest dimension of the adapted layers (${smallest.t} is ${smallest.shape[0]} x ${smallest.shape[1]}): ` +
        `an update there cannot have a rank above ${limit}, so the extra rank only costs memory and time; use --rank ${limit} or less`);
    }
  }
  if (config.threads > hardwareThreads) {
    warnings.push(`--threads ${config.threads} is more than this machine's ${countOf(hardwareThreads, 'hardware thread')}: the extra threads wait on each other and make every step slower; use --threads ${hardwareThreads} or fewer`);
  }
  return warnings;
}
