// Autoregressive generation with the engine's KV cache: the prompt is fed
// once, then one token at a time, until an end-of-sequence token, the
// new-token budget, or a stop asked for between tokens. Each token is chosen
// as transformers' generate() chooses it: the repetition penalty over the
// prompt and the tokens so far, then the n-gram ban (its processors, in its
// order), then greedy argmax or a sampled draw.
import type { NativeEngine } from '../engine/native.js';
import { Prng } from '../random/prng.js';
import { hasNonFinite, NonFiniteOutputError } from './non-finite-output.js';
import { positionLimitProblem } from './position-limit.js';
import { NoRepeatNGram } from './no-repeat-ngram.js';
import { RepetitionPenalty } from './repetition-penalty.js';
import { sampleToken, samplingOptionsProblem, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** transformers' repetition_penalty (> 0); absent or 1: none */
  repetitionPenalty?: number;
  /** transformers' no_repeat_ngram_size: no n-gram of this size twice in the prompt and answer; absent or 0: none */
  noRepeatNgramSize?: number;
  maxNewTokens: number;
  seed: number;
  /** ids that end generation (not included in the output) */
  stopTokenIds: readonly number[];
  /** positions the model supports (max_position_embeddings) */
  maxPositions: number;
  /** the model's vocabulary size: prompt ids outside [0, vocabSize) are refused before the engine sees them */
  vocabSize?: number;
  /** asked between tokens: true ends the answer where it is (the user pressed Stop) */
  shouldStop?: () => boolean;
}

export interface GenerateResult {
  /** generated ids, without the prompt and without the stop token */
  tokens: number[];
  /** an end-of-sequence token, the new-token budget, or shouldStop */
  stoppedBy: 'eos' | 'length' | 'stopped';
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
  if (options.vocabSize !== undefined) {
    // as train's data check says it (data/prepare-row.ts), not the engine's "decode: token N is not a token id"
    const outside = promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= options.vocabSize!);
    if (outside !== undefined) {
      throw new Error(`the prompt: the tokenizer gave id ${outside}, outside the model's vocabulary [0, ${options.vocabSize}); the tokenizer does not belong to this model (compare its tokenizer.json with config.json's vocab_size)`);
    }
  }
  // the callers say it in their own words first (the CLI's flag, the Try page's field)
  const limit = positionLimitProblem(promptIds.length, options.maxNewTokens, options.maxPositions, null);
  if (limit) throw new Error(limit.message);
  const needed = promptIds.length + options.maxNewTokens;
  // refused before the prompt is fed, not at the first token
  const problem = samplingOptionsProblem(options);
  if (problem) throw new Error(problem);
  const rng = new Prng(options.seed);
  const penalty = new RepetitionPenalty(options.repetitionPenalty ?? 1, promptIds);
  const ngrams = new NoRepeatNGram(options.noRepeatNgramSize ?? 0, promptIds);
  const stop = new Set(options.stopTokenIds);
  if (options.shouldStop?.()) return { tokens: [], stoppedBy: 'stopped' };
  engine.resetCache(needed);
  let logits = await engine.decode(Int32Array.from(promptIds));
  const tokens: number[] = [];
  for (;;) {
    // NaN logits would sample an arbitrary token (or none): refuse them (the caller explains why).
    if (hasNonFinite(logits)) throw new NonFiniteOutputError(`the model's output (logits) for generated token ${tokens.length + 1}`);
    penalty.apply(logits);
    ngrams.apply(logits);
    // every token banned (a small vocabulary, n = 1): transformers would pick a -inf token (greedy) or fail (sampled)
    if (ngrams.banned().size >= logits.length) {
      throw new Error(`no repeated ${ngrams.size}-grams (no_repeat_ngram_size ${ngrams.size}) leaves no token for generated token ${tokens.length + 1}: each one would repeat an n-gram of the prompt or the answer; use a larger size, or 0 for none`);
    }
    const next = sampleToken(logits, options, rng);
    if (stop.has(next)) return { tokens, stoppedBy: 'eos' };
    penalty.add(next);
    ngrams.add(next);
    tokens.push(next);
    onToken?.(next);
    if (tokens.length >= options.maxNewTokens) return { tokens, stoppedBy: 'length' };
    if (options.shouldStop?.()) return { tokens, stoppedBy: 'stopped' };
    logits = await engine.decode(Int32Array.of(next));
  }
}
