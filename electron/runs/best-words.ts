// The best adapter a run kept (train --keep-best: DIR/best/, best-adapter.ts)
// as data and in words; no Node imports, so the renderer says it the same way.

export interface BestAdapter {
  /** DIR/best */
  dir: string;
  step: number;
  eval_loss: number;
}

/** "best eval loss 1.2340 at step 300: DIR/best" */
export function describeBest(best: BestAdapter): string {
  return `best eval loss ${best.eval_loss.toFixed(4)} at step ${best.step}: ${best.dir}`;
}
