// PEFT prompt tuning and prefix tuning adapter folders: adapter_config.json
// (prompt-config.ts) and adapter_model.safetensors holding one tensor,
// "prompt_embeddings" (PEFT's key for every prompt-learning method, no
// "base_model.model." prefix):
//   prompt tuning: [num_virtual_tokens, hidden_size], the virtual token embeddings;
//   prefix tuning: [num_virtual_tokens, num_layers * 2 * head_dim * num_kv_heads],
//     the per-layer keys and values; with prefix_projection it is the MLP's
//     output, so a saved prefix adapter is always the plain table.
import type { ModelSpec } from '../engine/native.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { checkAdapterTensorFinite } from './finite-check.js';
import { ADAPTER_CONFIG_FILE, AdapterError, adapterModelCard, adapterWeightsPath, readAdapterConfigJson, writeAdapterFiles } from './peft.js';
import {
  buildPrefixTuningConfig,
  buildPromptTuningConfig,
  encoderHiddenSizeOf,
  parsePromptLearningConfig,
  promptEmbeddingsShape,
  type AdapterPrefix,
  type AdapterPrompt,
} from './prompt-config.js';

/** PEFT's key of the one tensor of a prompt-learning adapter. */
export const PROMPT_EMBEDDINGS_KEY = 'prompt_embeddings';

export type PromptLearningLayout = { kind: 'prompt'; prompt: AdapterPrompt } | { kind: 'prefix'; prefix: AdapterPrefix };

export function numVirtualTokensOf(layout: PromptLearningLayout): number {
  return layout.kind === 'prompt' ? layout.prompt.numVirtualTokens : layout.prefix.numVirtualTokens;
}

export interface WritePromptAdapterOptions {
  dir: string;
  spec: ModelSpec;
  layout: PromptLearningLayout;
  /** recorded as base_model_name_or_path (and tokenizer_name_or_path for a TEXT init) */
  baseModelNameOrPath: string;
  /** recorded as revision: the base's commit when baseModelNameOrPath is a Hub id (default null) */
  revision?: string | null;
  /** prompt_embeddings, row-major, promptEmbeddingsShape() values */
  table: Float32Array;
  overwrite?: boolean;
  /** write the files into `dir` beside its other files (a run folder, a checkpoint) */
  keepOtherFiles?: boolean;
  modelCardNotes?: string;
}

/** Writes a prompt or prefix tuning adapter folder as PEFT saves one. */
export async function writePromptAdapter(options: WritePromptAdapterOptions): Promise<void> {
  const { spec, layout } = options;
  const nvt = numVirtualTokensOf(layout);
  if (!Number.isSafeInteger(nvt) || nvt <= 0) throw new AdapterError(`the number of virtual tokens must be a positive integer, got ${nvt}.`);
  const shape = promptEmbeddingsShape(layout.kind, nvt, spec);
  if (options.table.length !== shape[0] * shape[1]) {
    throw new AdapterError(`cannot export the adapter: prompt_embeddings has ${options.table.length} values; ${layout.kind} tuning with ${nvt} virtual tokens on this model needs [${shape.join(', ')}] = ${shape[0] * shape[1]}.`);
  }
  const config = layout.kind === 'prompt'
    ? buildPromptTuningConfig(layout.prompt, spec, options.baseModelNameOrPath, options.revision ?? null)
    : buildPrefixTuningConfig(layout.prefix, spec, options.baseModelNameOrPath, options.revision ?? null);
  await writeAdapterFiles(options, [[PROMPT_EMBEDDINGS_KEY, { dtype: 'F32', shape, data: options.table }]], config, modelCard(options, shape));
}

export type PeftPromptAdapter = PromptLearningLayout & {
  dir: string;
  /** adapter_config.json as parsed */
  config: Record<string, unknown>;
  /** prompt_embeddings as float32, [numVirtualTokens, width] */
  table: Float32Array;
  shape: [number, number];
};

/** Reads a PROMPT_TUNING or PREFIX_TUNING adapter folder for a model with this spec. */
export async function readPromptAdapter(dir: string, spec: ModelSpec): Promise<PeftPromptAdapter> {
  const { json, configPath } = await readAdapterConfigJson(dir);
  const parsed = parsePromptLearningConfig(json, configPath, spec);
  const layout: PromptLearningLayout = parsed.kind === 'prompt' ? { kind: 'prompt', prompt: parsed.prompt } : { kind: 'prefix', prefix: parsed.prefix };
  const weightsPath = await adapterWeightsPath(dir);
  const header = await readSafetensorsHeader(weightsPath);
  const info = header.byName.get(PROMPT_EMBEDDINGS_KEY);
  if (!info) {
    const found = header.tensors.map((t) => `"${t.name}"`).slice(0, 3).join(', ') || 'no tensors';
    throw new AdapterError(`${weightsPath}: has no tensor "${PROMPT_EMBEDDINGS_KEY}" (found ${found}); a ${parsed.kind} tuning adapter holds exactly that one tensor. Export the adapter again.`);
  }
  const extra = header.tensors.find((t) => t.name !== PROMPT_EMBEDDINGS_KEY);
  if (extra) throw new AdapterError(`${weightsPath}: holds tensor "${extra.name}" besides "${PROMPT_EMBEDDINGS_KEY}", which ${ADAPTER_CONFIG_FILE} (${parsed.raw.peft_type}) does not account for. Export the adapter again.`);
  if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
    throw new AdapterError(`${weightsPath}: tensor "${PROMPT_EMBEDDINGS_KEY}" is stored as ${info.dtype}; adapters must be F32, F16 or BF16.`);
  }
  const shape = promptEmbeddingsShape(parsed.kind, numVirtualTokensOf(layout), spec);
  if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) {
    const what = parsed.kind === 'prompt'
      ? `num_virtual_tokens x hidden_size = [${shape.join(', ')}]`
      : `num_virtual_tokens x (num_layers * 2 * head_dim * num_key_value_heads) = [${shape.join(', ')}]`;
    throw new AdapterError(`${weightsPath}: tensor "${PROMPT_EMBEDDINGS_KEY}" has shape [${info.shape.join(', ')}] but ${ADAPTER_CONFIG_FILE} and this model need ${what}. The adapter was trained for another model or its config does not match its weights.`);
  }
  const { data } = await readTensorAsFloat32(header, PROMPT_EMBEDDINGS_KEY);
  checkAdapterTensorFinite(weightsPath, PROMPT_EMBEDDINGS_KEY, data);
  return { ...layout, dir, config: parsed.raw, table: data, shape };
}

function modelCard(options: WritePromptAdapterOptions, shape: [number, number]): string {
  const { layout, baseModelNameOrPath: base, spec } = options;
  const rows: [string, string][] = [['virtual tokens', String(numVirtualTokensOf(layout))]];
  if (layout.kind === 'prompt') {
    rows.push(['init', layout.prompt.init + (layout.prompt.init === 'TEXT' ? ` (${JSON.stringify(layout.prompt.initText)})` : '')]);
  } else {
    rows.push(['prefix projection', layout.prefix.projection ? `yes, encoder_hidden_size ${encoderHiddenSizeOf(layout.prefix, spec)} (folded into the saved table)` : 'no']);
  }
  rows.push(['prompt_embeddings', `[${shape.join(', ')}]`], ['parameters saved', (shape[0] * shape[1]).toLocaleString('en-US')]);
  const title = layout.kind === 'prompt' ? 'Prompt tuning' : 'Prefix tuning';
  return adapterModelCard({
    base,
    tag: layout.kind === 'prompt' ? 'prompt-tuning' : 'prefix-tuning',
    title,
    name: title.toLowerCase(),
    settingsHeading: false,
    settings: rows,
    notes: options.modelCardNotes,
  });
}
