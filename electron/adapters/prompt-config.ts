// adapter_config.json of PEFT's two input-space methods, PROMPT_TUNING and
// PREFIX_TUNING, built with every field PEFT 0.20 writes for a causal LM and
// read back (from here or from PEFT) with checks against the model.
//
// Where the values come from in PEFT (so a saved file matches PEFT's):
// - PeftConfigMixin: task_type, peft_type, auto_mapping, peft_version;
//   PeftConfig: base_model_name_or_path, revision, inference_mode (true once saved);
//   PromptLearningConfig: num_virtual_tokens, token_dim, num_transformer_submodules,
//   num_attention_heads, num_layers, modules_to_save.
// - PromptTuningConfig adds prompt_tuning_init, prompt_tuning_init_text,
//   tokenizer_name_or_path, tokenizer_kwargs; PrefixTuningConfig adds
//   encoder_hidden_size, prefix_projection, init_weights.
// - get_peft_model fills the model-dependent fields (_prepare_prompt_learning_config):
//   num_layers = num_hidden_layers, token_dim = hidden_size, num_attention_heads =
//   num_attention_heads; for PREFIX_TUNING on a model with num_key_value_heads
//   (every Llama-family config) token_dim = head_dim * num_key_value_heads and
//   num_attention_heads = num_key_value_heads; encoder_hidden_size, when unset,
//   becomes that token_dim. num_transformer_submodules is 1 for a causal LM.

import type { ModelSpec } from '../engine/native.js';
import { adapterConfigFields, PEFT_VERSION } from './peft-config.js';
import type { PyJson } from './python-json.js';

/** PEFT's PromptTuningInit values. */
export const PROMPT_INITS = ['RANDOM', 'TEXT', 'SAMPLE_VOCAB'] as const;
export type PromptInit = (typeof PROMPT_INITS)[number];

/** Prompt tuning settings an adapter records. */
export interface AdapterPrompt {
  numVirtualTokens: number;
  init: PromptInit;
  /** the init text (TEXT only) */
  initText: string | null;
}

/** Prefix tuning settings an adapter records. */
export interface AdapterPrefix {
  numVirtualTokens: number;
  /** PEFT prefix_projection: the MLP reparameterisation used while training */
  projection: boolean;
  /** hidden size of that MLP; null = PEFT's default, token_dim */
  encoderHiddenSize: number | null;
}

/** The token_dim PEFT records for prompt tuning: the model's hidden size. */
export function promptTokenDim(spec: ModelSpec): number {
  return spec.hiddenSize;
}

/** The token_dim PEFT records for prefix tuning: one layer's keys (or values) per position, head_dim * num_key_value_heads. */
export function prefixTokenDim(spec: ModelSpec): number {
  return spec.headDim * spec.numKvHeads;
}

/** Width of the prefix table: num_layers * 2 * token_dim (keys and values of every layer). */
export function prefixTableWidth(spec: ModelSpec): number {
  return spec.numLayers * 2 * prefixTokenDim(spec);
}

/** encoder_hidden_size in effect (PEFT fills token_dim in when it is unset). */
export function encoderHiddenSizeOf(prefix: AdapterPrefix, spec: ModelSpec): number {
  return prefix.encoderHiddenSize ?? prefixTokenDim(spec);
}

/** Shape of the one saved tensor, `prompt_embeddings`. */
export function promptEmbeddingsShape(kind: 'prompt' | 'prefix', numVirtualTokens: number, spec: ModelSpec): [number, number] {
  return [numVirtualTokens, kind === 'prompt' ? promptTokenDim(spec) : prefixTableWidth(spec)];
}

function commonFields(spec: ModelSpec, numVirtualTokens: number, base: string | null, revision: string | null): { [key: string]: PyJson } {
  return {
    auto_mapping: null,
    base_model_name_or_path: base,
    inference_mode: true,
    modules_to_save: null,
    num_layers: spec.numLayers,
    num_transformer_submodules: 1,
    num_virtual_tokens: numVirtualTokens,
    peft_version: PEFT_VERSION,
    revision,
    task_type: 'CAUSAL_LM',
  };
}

/**
 * adapter_config.json content of a prompt tuning adapter, as PEFT saves it.
 * tokenizer_name_or_path is the base model for TEXT (PEFT requires one there;
 * it is where the init text was tokenized), else null.
 */
export function buildPromptTuningConfig(prompt: AdapterPrompt, spec: ModelSpec, base: string | null, revision: string | null = null): { [key: string]: PyJson } {
  return {
    ...commonFields(spec, prompt.numVirtualTokens, base, revision),
    num_attention_heads: spec.numHeads,
    peft_type: 'PROMPT_TUNING',
    prompt_tuning_init: prompt.init,
    prompt_tuning_init_text: prompt.init === 'TEXT' ? prompt.initText : null,
    token_dim: promptTokenDim(spec),
    tokenizer_kwargs: null,
    tokenizer_name_or_path: prompt.init === 'TEXT' ? base : null,
  };
}

/** adapter_config.json content of a prefix tuning adapter, as PEFT saves it (GQA-aware token_dim and heads). */
export function buildPrefixTuningConfig(prefix: AdapterPrefix, spec: ModelSpec, base: string | null, revision: string | null = null): { [key: string]: PyJson } {
  return {
    ...commonFields(spec, prefix.numVirtualTokens, base, revision),
    encoder_hidden_size: encoderHiddenSizeOf(prefix, spec),
    init_weights: null,
    num_attention_heads: spec.numKvHeads,
    peft_type: 'PREFIX_TUNING',
    prefix_projection: prefix.projection,
    token_dim: prefixTokenDim(spec),
  };
}

export type ParsedPromptLearningConfig =
  | { kind: 'prompt'; prompt: AdapterPrompt; raw: Record<string, unknown> }
  | { kind: 'prefix'; prefix: AdapterPrefix; raw: Record<string, unknown> };

/**
 * Reads a PROMPT_TUNING or PREFIX_TUNING adapter_config.json for a model with
 * this spec; every field that decides a tensor shape must fit the model.
 */
export function parsePromptLearningConfig(json: unknown, file: string, spec: ModelSpec): ParsedPromptLearningConfig {
  const { c, fail } = adapterConfigFields(json, file, 'Fix adapter_config.json, or use an adapter trained for this model.');
  const kind = c.peft_type === 'PROMPT_TUNING' ? 'prompt' : c.peft_type === 'PREFIX_TUNING' ? 'prefix' : null;
  if (kind === null) return fail('peft_type', `is ${JSON.stringify(c.peft_type)}, not "PROMPT_TUNING" or "PREFIX_TUNING"`, 'Only LoRA, prompt tuning and prefix tuning adapters are supported.');
  if (c.task_type !== undefined && c.task_type !== null && c.task_type !== 'CAUSAL_LM') {
    fail('task_type', `is ${JSON.stringify(c.task_type)}; only causal language models ("CAUSAL_LM") are supported`);
  }
  const nvt = c.num_virtual_tokens;
  if (!Number.isSafeInteger(nvt) || (nvt as number) <= 0) fail('num_virtual_tokens', `must be a positive integer (found ${JSON.stringify(nvt)})`);
  const submodules = c.num_transformer_submodules ?? 1;
  if (submodules !== 1) fail('num_transformer_submodules', `is ${JSON.stringify(submodules)}; a causal LM has 1 (2 is for encoder-decoder models)`);
  if (c.num_layers !== undefined && c.num_layers !== null && c.num_layers !== spec.numLayers) {
    fail('num_layers', `is ${JSON.stringify(c.num_layers)} but the model has ${spec.numLayers} layers`, 'Use an adapter trained for this model.');
  }
  const modules = c.modules_to_save;
  if (modules !== undefined && modules !== null && !(Array.isArray(modules) && modules.length === 0)) {
    fail('modules_to_save', `is ${JSON.stringify(modules)}: adapters that also save fully trained modules are not supported`, 'This adapter cannot be used here.');
  }
  const tokenDim = c.token_dim;
  if (kind === 'prompt') {
    if (tokenDim !== undefined && tokenDim !== null && tokenDim !== promptTokenDim(spec)) {
      fail('token_dim', `is ${JSON.stringify(tokenDim)} but this model's hidden size is ${promptTokenDim(spec)}`, 'Use an adapter trained for this model.');
    }
    const init = c.prompt_tuning_init ?? 'RANDOM';
    if (!PROMPT_INITS.includes(init as PromptInit)) fail('prompt_tuning_init', `is ${JSON.stringify(init)}; PEFT knows ${PROMPT_INITS.join(', ')}`);
    const text = c.prompt_tuning_init_text ?? null;
    if (text !== null && typeof text !== 'string') fail('prompt_tuning_init_text', `must be a string or null (found ${JSON.stringify(text)})`);
    return { kind, prompt: { numVirtualTokens: nvt as number, init: init as PromptInit, initText: text as string | null }, raw: c };
  }
  if (tokenDim !== undefined && tokenDim !== null && tokenDim !== prefixTokenDim(spec)) {
    const gqaHint = tokenDim === spec.hiddenSize && spec.numKvHeads !== spec.numHeads
      ? ` (the hidden size: a PEFT release older than its grouped-query-attention fix wrote that, and such an adapter does not fit the model's ${spec.numKvHeads} key/value heads)`
      : '';
    fail('token_dim', `is ${JSON.stringify(tokenDim)} but prefix tuning on this model needs head_dim * num_key_value_heads = ${spec.headDim} * ${spec.numKvHeads} = ${prefixTokenDim(spec)}${gqaHint}`, 'Use an adapter trained for this model with PEFT 0.12 or newer.');
  }
  const heads = c.num_attention_heads;
  if (heads !== undefined && heads !== null && heads !== spec.numKvHeads) {
    fail('num_attention_heads', `is ${JSON.stringify(heads)} but prefix tuning on this model lays the prefix out over its ${spec.numKvHeads} key/value heads`, 'Use an adapter trained for this model.');
  }
  const projection = c.prefix_projection ?? false;
  if (typeof projection !== 'boolean') fail('prefix_projection', `must be true or false (found ${JSON.stringify(projection)})`);
  const ehs = c.encoder_hidden_size ?? null;
  if (ehs !== null && (!Number.isSafeInteger(ehs) || (ehs as number) <= 0)) fail('encoder_hidden_size', `must be a positive integer or null (found ${JSON.stringify(ehs)})`);
  return { kind, prefix: { numVirtualTokens: nvt as number, projection: projection as boolean, encoderHiddenSize: ehs as number | null }, raw: c };
}
