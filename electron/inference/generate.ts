// Autoregressive generation with the engine's KV cache: the prompt is fed
// once, then one token at a time, until an end-of-sequence token or the
// new-token budget.
import type { NativeEngine } from '../engine/native.js';
import { Prng } from '../random/prng.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed: number;
  /** ids that end generation (not included in the output) */
  stopTokenIds: readonly number[];
  /** positions the model supports (max_position_embeddings) */
  maxPositions: number;
}

export interface GenerateResult {
  /** generated ids, without the prompt and without the stop token */
  tokens: number[];
  stoppedBy: 'eos' | 'length';
}

export async function generate(
  engine: NativeEngine,
  promptIds: readonly number[],
  options: GenerateOptions,
  onToken?: (id: number) => void,
): Promise<GenerateResult> {
  if (promptIds.length === 0) throw new Error('the prompt is empty after tokenization; give a prompt with some text');
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1) {
    throw new Error(`max new tokens must be a positive integer, got ${options.maxNewTokens}`);
  }
  const needed = promptIds.length + options.maxNewTokens;
  if (needed > options.maxPositions) {
    throw new Error(
      `prompt (${promptIds.length} tokens) + --max-new-tokens ${options.maxNewTokens} exceeds the model's ` +
        `${options.maxPositions} positions; shorten the prompt or lower --max-new-tokens`,
    );
  }
  const rng = new Prng(options.seed);
  const stop = new Set(options.stopTokenIds);
  engine.resetCache(needed);
  let logits = await engine.decode(Int32Array.from(promptIds));
  const tokens: number[] = [];
  for (;;) {
    const next = sampleToken(logits, options, rng);
    if (stop.has(next)) return { tokens, stoppedBy: 'eos' };
    tokens.push(next);
    onToken?.(next);
    if (tokens.length >= options.maxNewTokens) return { tokens, stoppedBy: 'length' };
    logits = await engine.decode(Int32Array.of(next));
  }
}
