// The evaluations a run does, counted before it starts, for the time
// estimate (time-estimate.ts). trainer.ts evaluates the eval rows (the
// --eval-split part or --eval-data) after every --eval-every-th optimizer
// step, and once more after the last step unless that step was just
// evaluated; without eval rows, never. One evaluation is evaluateExamples
// (inference/eval.ts): the rows in file order, in batches of --batch-size
// each padded to its longest row (sequentialBatches), forward only
// (step-flops.ts evalBatchFlops). --keep-best and --early-stop judge these
// same evaluations and add none; an early stop may end the run sooner, which
// no estimate made before the start can know: like the training part, this
// counts the whole run.
import type { ModelSpec } from '../engine/native.js';
import { chunkIntoMicroBatches } from './batches.js';
import type { Example } from './data.js';
import { evalBatchFlops, microBatchShapeOf, type FlopSettings } from './step-flops.js';

/** How many times a run of `totalSteps` evaluates (trainer.ts: every `evalEvery` steps, 0 = only at the end, and the last step once). */
export function evaluationCount(totalSteps: number, evalEvery: number, evalRows: number): number {
  if (evalRows === 0) return 0;
  const periodic = evalEvery > 0 ? Math.floor(totalSteps / evalEvery) : 0;
  const lastWasEvaluated = evalEvery > 0 && totalSteps > 0 && totalSteps % evalEvery === 0;
  return periodic + (lastWasEvaluated ? 0 : 1);
}

/** What a run's evaluations compute, all of them together. */
export interface EvalWork {
  evaluations: number;
  /** eval rows one evaluation goes through */
  rows: number;
  /** real (not padding) tokens all evaluations read */
  tokens: number;
  /** forward FLOPs of all evaluations */
  flops: number;
}

export const NO_EVAL_WORK: EvalWork = { evaluations: 0, rows: 0, tokens: 0, flops: 0 };

/** The run's evaluation work: one evaluation's batches, as evaluateExamples forms them, times the evaluations. */
export function evalWork(spec: ModelSpec, s: FlopSettings, evalRows: readonly Example[],
  o: { totalSteps: number; evalEvery: number; batchSize: number }): EvalWork {
  const evaluations = evaluationCount(o.totalSteps, o.evalEvery, evalRows.length);
  if (evaluations === 0) return NO_EVAL_WORK;
  const fileOrder = Array.from({ length: evalRows.length }, (_, i) => i);
  let flops = 0, tokens = 0;
  for (const rows of chunkIntoMicroBatches(evalRows, fileOrder, o.batchSize)) {
    flops += evalBatchFlops(spec, s, microBatchShapeOf(rows, s.method));
    tokens += rows.reduce((n, r) => n + r.inputIds.length, 0);
  }
  // rows as the data has them: a packed row holds several documents
  const rows = evalRows.reduce((n, r) => n + (r.documents?.length ?? 1), 0);
  return { evaluations, rows, tokens: tokens * evaluations, flops: flops * evaluations };
}
