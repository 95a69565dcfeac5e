// Evaluation: token-weighted mean cross-entropy over every counted label
// token of a data set (the same number the Hugging Face Trainer reports as
// eval_loss when it sums per-token losses), and its perplexity.
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
