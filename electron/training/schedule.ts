// Learning-rate schedules with linear warmup, with the same multipliers as
// transformers' get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup
// (num_cycles = 0.5). As in the Hugging Face Trainer, the multiplier for
// optimizer step k (0-based: k optimizer steps have already been taken) is
// lambda(k), so with warmup the very first update uses lr 0.

export type SchedulerKind = 'constant' | 'linear' | 'cosine';

export const SCHEDULER_KINDS: readonly SchedulerKind[] = ['constant', 'linear', 'cosine'];

export interface ScheduleOptions {
  kind: SchedulerKind;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

function warmupFactor(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

/** The multiplier lambda(step) of the base learning rate. */
export function lrMultiplier(kind: SchedulerKind, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return warmupFactor(step, warmupSteps);
  switch (kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      const numCycles = 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
  }
}

/** Learning rate used by the optimizer step that follows `stepsTaken` earlier steps. */
export function learningRate(options: ScheduleOptions, stepsTaken: number): number {
  return options.baseLr * lrMultiplier(options.kind, stepsTaken, options.warmupSteps, options.totalSteps);
}
