// The cases of the PyTorch cross-check: tiny models of every supported
// architecture, a LoRA adapter of ours on each, and one batch. The same
// definitions build the files that scripts/reference/pytorch_check.py reads on
// a machine with PyTorch + transformers + peft, and the test that compares our
// engine with what PyTorch computed (electron/testing/fixtures/pytorch/).
import type { AdapterLora } from '../adapters/peft-config.js';
import type { LoraTarget } from '../engine/native.js';
import type { TinyModelOptions } from './tiny-model.js';

export interface PytorchCase {
  name: string;
  model: TinyModelOptions;
  /** our adapter (written by scripts/reference/prepare.mjs) */
  lora: AdapterLora;
  /** the adapter PEFT itself creates and saves for the import check */
  peftLora: { rank: number; alpha: number; targets: LoraTarget[]; rslora: boolean; layers: number[] | null };
}

const ALL: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export const PYTORCH_CASES: PytorchCase[] = [
  {
    name: 'llama-gqa-llama3rope',
    model: { arch: 'LlamaForCausalLM', seed: 11, heads: 4, kvHeads: 2, tie: false,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 64 }, ropeTheta: 500000 },
    lora: { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ALL, layers: null, init: 'default' },
    peftLora: { rank: 4, alpha: 16, targets: ALL, rslora: false, layers: null },
  },
  {
    name: 'mistral-rslora-qv',
    model: { arch: 'MistralForCausalLM', seed: 12, heads: 4, kvHeads: 1, tie: false },
    lora: { rank: 8, alpha: 16, dropout: 0, rslora: true, targets: ['q_proj', 'v_proj'], layers: null, init: 'gaussian' },
    peftLora: { rank: 8, alpha: 8, targets: ['q_proj', 'v_proj'], rslora: true, layers: null },
  },
  {
    name: 'qwen2-bias-tied-layer1',
    model: { arch: 'Qwen2ForCausalLM', seed: 13, heads: 4, kvHeads: 2, tie: true },
    lora: { rank: 4, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], layers: [1], init: 'default' },
    peftLora: { rank: 2, alpha: 4, targets: ['k_proj', 'o_proj', 'up_proj'], rslora: false, layers: [0] },
  },
  {
    name: 'qwen3-qknorm-headdim-linearrope',
    model: { arch: 'Qwen3ForCausalLM', seed: 14, heads: 4, kvHeads: 2, headDim: 32, tie: true, ropeScaling: { type: 'linear', factor: 2 } },
    lora: { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ALL, layers: null, init: 'default' },
    peftLora: { rank: 4, alpha: 8, targets: ['q_proj', 'gate_proj'], rslora: false, layers: null },
  },
  {
    name: 'llama-bf16-sharded',
    model: { arch: 'LlamaForCausalLM', seed: 15, heads: 4, kvHeads: 4, tie: false, dtype: 'BF16', sharded: true },
    lora: { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'up_proj'], layers: null, init: 'default' },
    peftLora: { rank: 4, alpha: 8, targets: ['v_proj'], rslora: false, layers: null },
  },
];

/**
 * One right-padded batch of two rows: row 0 has 12 tokens, its first three
 * labels masked (a prompt); row 1 has 8 real tokens then padding.
 */
export const PYTORCH_BATCH = {
  inputIds: [
    [0, 72, 101, 108, 108, 111, 35, 119, 111, 114, 108, 100],
    [0, 84, 104, 101, 32, 99, 97, 116, 2, 2, 2, 2],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
  ],
  labels: [
    [-100, -100, -100, 108, 108, 111, 35, 119, 111, 114, 108, 100],
    [0, 84, 104, 101, 32, 99, 97, 116, -100, -100, -100, -100],
  ],
};

/** A prompt whose last-token logits (after it is fed whole) are compared. */
export const PYTORCH_PROMPT = [0, 87, 104, 121, 32, 105, 115];
