// Keeping track of the best evaluation, and stopping when evaluation stops
// improving: Hugging Face's EarlyStoppingCallback semantics. The best eval
// loss moves on every strictly lower loss (that is the adapter --keep-best
// keeps); the patience count resets only on a loss lower than the best so far
// by more than `delta` (early_stopping_threshold), and the run stops once it
// reaches `patience` (early_stopping_patience) evaluations in a row.
// Both live in the trainer's position, so a checkpoint keeps them and a
// resumed run stops at the same step as one that never stopped.

export interface EarlyStopOptions {
  /** evaluations in a row without improvement that end the run (>= 1) */
  patience: number;
  /** an evaluation improves only when lower than the best by more than this (>= 0) */
  delta: number;
}

/** How a run that stopped early ended. */
export interface EarlyStopEnd {
  /** the step of the evaluation that ended it (the run's last step) */
  step: number;
  /** evaluations in a row without improvement (the patience) */
  evaluations: number;
  bestEvalStep: number;
  bestEvalLoss: number;
}

/** The part of the trainer's position this file moves. */
export interface EvalTrack {
  bestEvalLoss: number | null;
  bestEvalStep: number;
  evalsWithoutImprovement: number;
}

/** The position after an evaluation of `loss` at `step`; `newBest`: strictly lower than every earlier one. */
export function judgeEvaluation(track: EvalTrack, loss: number, step: number, delta: number): { position: EvalTrack; newBest: boolean } {
  const best = track.bestEvalLoss;
  const newBest = best === null || loss < best;
  const improved = best === null || best - loss > delta;
  return {
    newBest,
    position: {
      bestEvalLoss: newBest ? loss : best,
      bestEvalStep: newBest ? step : track.bestEvalStep,
      evalsWithoutImprovement: improved ? 0 : track.evalsWithoutImprovement + 1,
    },
  };
}

export function shouldStopEarly(track: EvalTrack, options: EarlyStopOptions): boolean {
  return track.evalsWithoutImprovement >= options.patience;
}

/** "stopped early at step 420: the eval loss did not improve for 3 evaluations; best 1.234 at step 300" */
export function earlyStopReason(end: EarlyStopEnd, delta: number): string {
  const by = delta > 0 ? ` by more than ${delta}` : '';
  const best = end.bestEvalStep >= 0 ? `best ${formatLoss(end.bestEvalLoss)} at step ${end.bestEvalStep}` : `best ${formatLoss(end.bestEvalLoss)}`;
  return `stopped early at step ${end.step}: the eval loss did not improve${by} for ${end.evaluations} evaluation${end.evaluations === 1 ? '' : 's'}; ${best}`;
}

/** Four decimals, as the progress lines print losses. */
export function formatLoss(loss: number): string {
  return loss.toFixed(4);
}
