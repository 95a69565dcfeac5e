// An adapter folder of any supported PEFT type, read by what its
// adapter_config.json says it is (peft_type): LORA, PROMPT_TUNING or PREFIX_TUNING.
import type { ModelSpec } from '../engine/native.js';
import { AdapterConfigError } from './peft-config.js';
import { readAdapterConfigJson, readPeftAdapter, type PeftLoraAdapter } from './peft.js';
import { readPromptAdapter, type PeftPromptAdapter } from './prompt-adapter.js';

export const SUPPORTED_PEFT_TYPES = ['LORA', 'PROMPT_TUNING', 'PREFIX_TUNING'] as const;

export type AnyPeftAdapter = ({ kind: 'lora' } & PeftLoraAdapter) | PeftPromptAdapter;

/** The peft_type of an adapter folder, checked to be one this app reads. */
export async function peftTypeOf(dir: string): Promise<(typeof SUPPORTED_PEFT_TYPES)[number]> {
  const { json, configPath } = await readAdapterConfigJson(dir);
  const type = json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>).peft_type : undefined;
  if (!SUPPORTED_PEFT_TYPES.includes(type as (typeof SUPPORTED_PEFT_TYPES)[number])) {
    throw new AdapterConfigError(configPath, 'peft_type', `is ${JSON.stringify(type)}, which this app does not support`,
      `Supported adapter types: ${SUPPORTED_PEFT_TYPES.join(', ')}.`);
  }
  return type as (typeof SUPPORTED_PEFT_TYPES)[number];
}

/** Reads a LoRA, prompt tuning or prefix tuning adapter folder for a model with this spec. */
export async function readAnyAdapter(dir: string, spec: ModelSpec): Promise<AnyPeftAdapter> {
  const type = await peftTypeOf(dir);
  if (type === 'LORA') return { kind: 'lora', ...(await readPeftAdapter(dir, spec)) };
  return readPromptAdapter(dir, spec);
}
