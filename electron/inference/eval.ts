// Evaluation: token-weighted mean cross-entropy over every counted label
// token of a data set, and its perplexity. It does not depend on the batch
// size, and it is the training loss's definition (a step's mean over its
// tokens). The Hugging Face Trainer's eval_loss is a mean of per-batch means
// (each batch's token mean, weighted by the eval batch size), which differs
// where short and long rows score differently.
import type { NativeEngine } from '../engine/native.js';
import type { Example } from '../training/data.js';
import { sequentialBatches } from '../training/batches.js';

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
}

export async function evaluateExamples(engine: NativeEngine, examples: readonly Example[], batchSize: number): Promise<EvalResult> {
  let lossSum = 0;
  let tokens = 0;
  for (const batch of sequentialBatches(examples, batchSize)) {
    const r = await engine.evaluate(batch);
    lossSum += r.lossSum;
    tokens += r.tokens;
  }
  if (tokens === 0) {
    const file = examples[0]?.source.replace(/:\d+$/, '') ?? 'the evaluation data';
    throw new Error(`${file}: no label tokens to score (every label is -100, or rows are 1 token long); give rows of two or more tokens with labels other than -100`);
  }
  const loss = lossSum / tokens;
  return { loss, perplexity: Math.exp(loss), tokens };
}
