// The tiny model the FLOP and time-estimate tests count by hand: hidden 16,
// q 16, kv 8 (1 kv head of 8), intermediate 24, 2 layers, vocabulary 64,
// tied embeddings; and rows of n tokens (all labels trained).
import type { ModelSpec } from '../engine/native.js';
import type { Example } from '../training/data.js';

export const TINY_FLOP_SPEC: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 64, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, numKvHeads: 1,
  headDim: 8, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPosition: 0 },
  maxPositionEmbeddings: 64, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
};

/** A row of n tokens, every one a label. */
export const rowOf = (n: number): Example => ({ inputIds: new Int32Array(n).fill(3), labels: new Int32Array(n).fill(3), source: `x:${n}` });
