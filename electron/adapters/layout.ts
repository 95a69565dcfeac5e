// What an adapter is, independent of where it lives: a LoRA with its layout,
// or a prompt-learning adapter (prompt tuning, prefix tuning) with its settings.
import type { AdapterLora } from './peft-config.js';
import type { PromptLearningLayout } from './prompt-adapter.js';

/** Engine names of the prompt-learning tensors (electron/engine/native.ts's contract). */
export const PROMPT_TENSOR = 'prompt_embeddings';
/** prefix tuning without projection, and any prefix adapter loaded for use */
export const PREFIX_TENSOR = 'prefix_embeddings';
/** prefix tuning with projection: the embedding and the MLP, in the order the engine lists them */
export const PREFIX_ENCODER_TENSORS = [
  'prefix_encoder.embedding.weight',
  'prefix_encoder.transform.0.weight',
  'prefix_encoder.transform.0.bias',
  'prefix_encoder.transform.2.weight',
  'prefix_encoder.transform.2.bias',
] as const;

export type AdapterLayout = { kind: 'lora'; lora: AdapterLora } | PromptLearningLayout;

/** Words for messages: "LoRA rank 8 on q_proj,v_proj", "prompt tuning, 20 virtual tokens". */
export function describeLayout(layout: AdapterLayout): string {
  switch (layout.kind) {
    case 'lora':
      return `${layout.lora.dora === true ? 'DoRA' : 'LoRA'} rank ${layout.lora.rank} on ${layout.lora.targets.join(',')}`;
    case 'prompt':
      return `prompt tuning with ${layout.prompt.numVirtualTokens} virtual tokens`;
    case 'prefix':
      return `prefix tuning with ${layout.prefix.numVirtualTokens} virtual tokens${layout.prefix.projection ? ' and a projection' : ''}`;
  }
}
