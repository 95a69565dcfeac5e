// PEFT LoRA adapter folders: adapter_config.json + adapter_model.safetensors
// (+ README.md), written so that `PeftModel.from_pretrained(base, dir)` loads
// them unchanged, and read back from folders PEFT wrote.
//
// Tensor names: the engine calls a LoRA tensor
//   model.layers.0.self_attn.q_proj.lora_A.weight
// and PEFT saves it as
//   base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
// (older or hand-made files may keep the adapter name: ...lora_A.default.weight).
// lora_A is [r, in_features], lora_B is [out_features, r]. A DoRA adapter
// (use_dora) also holds each adapted module's magnitude, engine name
//   model.layers.0.self_attn.q_proj.lora_magnitude_vector
// saved as base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector
// (no ".weight": PEFT strips it when saving), shape [out_features].

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoraTarget, ModelSpec } from '../engine/native.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { checkAdapterTensorFinite } from './finite-check.js';
import { writeSafetensors, type TensorsToWrite } from '../safetensors/write.js';
import { writeFileAtomic, writeFolderAtomic } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import { fullRunAsAdapterMessage } from '../runs/full-run.js';
import { pathExists } from '../files/exists.js';
import {
  AdapterConfigError,
  buildLoraAdapterConfig,
  LORA_TARGETS,
  loraScaling,
  parseLoraAdapterConfig,
  type AdapterLora,
} from './peft-config.js';
import { pythonJsonDumps, type PyJson } from './python-json.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_README_FILE = 'README.md';

const PEFT_PREFIX = 'base_model.model.';

/** One LoRA tensor under its engine name. */
export interface LoraTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export class AdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterError';
  }
}

/** The last part of a DoRA magnitude's name, engine and PEFT key alike. */
export const DORA_MAGNITUDE = 'lora_magnitude_vector';

/** Whether an engine name (or PEFT key) is a DoRA magnitude. */
export function isDoraMagnitude(name: string): boolean {
  return name.endsWith(`.${DORA_MAGNITUDE}`);
}

/**
 * PEFT key -> engine name ("base_model.model." removed, adapter name "default"
 * dropped; a magnitude as a model's state_dict names it, "...lora_magnitude_vector.default.weight",
 * read as PEFT's loader reads it).
 */
export function peftKeyToEngineName(key: string): string {
  const withoutPrefix = key.startsWith(PEFT_PREFIX) ? key.slice(PEFT_PREFIX.length) : key;
  return withoutPrefix
    .replace(/\.(lora_[AB])\.default\.weight$/, '.$1.weight')
    .replace(new RegExp(`\\.${DORA_MAGNITUDE}(?:\\.default)?(?:\\.weight)?$`), `.${DORA_MAGNITUDE}`);
}

/** Engine name -> the key PEFT saves. */
export function engineNameToPeftKey(name: string): string {
  return PEFT_PREFIX + name;
}

/** [in_features, out_features] of a target projection. */
export function projectionSize(spec: ModelSpec, target: LoraTarget): [number, number] {
  const h = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  switch (target) {
    case 'q_proj': return [h, q];
    case 'k_proj': return [h, kv];
    case 'v_proj': return [h, kv];
    case 'o_proj': return [q, h];
    case 'gate_proj': return [h, spec.intermediateSize];
    case 'up_proj': return [h, spec.intermediateSize];
    case 'down_proj': return [spec.intermediateSize, h];
  }
}

/**
 * Engine names and shapes of every LoRA tensor for these options, ordered by
 * layer, then target (LORA_TARGETS order), then A before B; with DoRA each
 * module's magnitude [out] follows its B (the engine lists its parameters so).
 */
export function loraTensorShapes(spec: ModelSpec, lora: Pick<AdapterLora, 'rank' | 'targets' | 'layers' | 'dora'>): { name: string; shape: number[] }[] {
  const layers = lora.layers === null ? [...Array(spec.numLayers).keys()] : [...new Set(lora.layers)].sort((a, b) => a - b);
  const targets = LORA_TARGETS.filter((t) => lora.targets.includes(t));
  const out: { name: string; shape: number[] }[] = [];
  for (const i of layers) {
    for (const t of targets) {
      const [inF, outF] = projectionSize(spec, t);
      const module = `model.layers.${i}.${t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? 'mlp' : 'self_attn'}.${t}`;
      out.push({ name: `${module}.lora_A.weight`, shape: [lora.rank, inF] });
      out.push({ name: `${module}.lora_B.weight`, shape: [outF, lora.rank] });
      if (lora.dora === true) out.push({ name: `${module}.${DORA_MAGNITUDE}`, shape: [outF] });
    }
  }
  return out;
}

export interface WritePeftAdapterOptions {
  dir: string;
  spec: ModelSpec;
  lora: AdapterLora;
  /** recorded as base_model_name_or_path (a Hub id or the local folder the base was loaded from) */
  baseModelNameOrPath: string;
  /** recorded as revision: the base's commit when baseModelNameOrPath is a Hub id (default null) */
  revision?: string | null;
  /** the LoRA tensors (with DoRA also the magnitudes) under engine names; exactly the set loraTensorShapes() lists */
  tensors: Iterable<LoraTensor>;
  /** replace an existing non-empty folder (default: refuse) */
  overwrite?: boolean;
  /**
   * Write the adapter files into `dir` (created if missing) one by one, each
   * replacing its older copy atomically, and keep the folder's other files
   * (a training run folder's metrics.jsonl, checkpoints/). `overwrite` does
   * not apply: the caller owns the folder.
   */
  keepOtherFiles?: boolean;
  /** extra Markdown appended to README.md (e.g. dataset and training summary) */
  modelCardNotes?: string;
}

/** Writes a PEFT LoRA (or DoRA) adapter folder atomically (or its files, with keepOtherFiles). */
export async function writePeftAdapter(options: WritePeftAdapterOptions): Promise<void> {
  const { spec, lora } = options;
  validateLora(lora, spec);
  const given = new Map<string, LoraTensor>();
  for (const t of options.tensors) {
    if (given.has(t.name)) throw new AdapterError(`LoRA tensor "${t.name}" is given twice.`);
    given.set(t.name, t);
  }
  const expected = loraTensorShapes(spec, lora);
  const weights: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
  for (const { name, shape } of expected) {
    const t = given.get(name);
    if (!t) throw new AdapterError(`cannot export the adapter: LoRA tensor "${name}" is missing.`);
    const elements = elementCount(shape);
    if (!sameShape(t.shape, shape) || t.data.length !== elements) {
      throw new AdapterError(`cannot export the adapter: LoRA tensor "${name}" has shape [${t.shape.join(', ')}] with ${t.data.length} values; expected [${shape.join(', ')}].`);
    }
    weights.push([engineNameToPeftKey(name), { dtype: 'F32', shape, data: t.data }]);
    given.delete(name);
  }
  if (given.size > 0) {
    const extra = [...given.keys()][0];
    throw new AdapterError(isDoraMagnitude(extra)
      ? `cannot export the adapter: tensor "${extra}" is a DoRA magnitude, but the adapter's settings are a plain LoRA (dora is not set).`
      : `cannot export the adapter: tensor "${extra}" is not part of a rank-${lora.rank} ${lora.dora === true ? 'DoRA' : 'LoRA'} on ${lora.targets.join(', ')}.`);
  }

  const config = buildLoraAdapterConfig(lora, options.baseModelNameOrPath, options.revision ?? null);
  const parameters = expected.reduce((a, t) => a + elementCount(t.shape), 0);
  await writeAdapterFiles(options, weights, config, modelCard(options, parameters));
}

/** Where an adapter folder goes: the folder and how an existing one is treated. */
export interface AdapterFolderTarget {
  dir: string;
  /** replace an existing non-empty folder (default: refuse) */
  overwrite?: boolean;
  /** write the files into `dir` one by one beside its other files (a run folder, a checkpoint); `overwrite` does not apply */
  keepOtherFiles?: boolean;
}

/**
 * Writes an adapter folder's three files, whatever the method: weights before
 * config, so a reader that finds adapter_config.json in a folder being filled
 * file by file finds weights beside it; the whole folder atomically, or with
 * keepOtherFiles each file replacing its older copy atomically.
 */
export async function writeAdapterFiles(
  target: AdapterFolderTarget,
  weights: TensorsToWrite,
  config: { [key: string]: PyJson },
  readme: string,
): Promise<void> {
  const writeFiles = async (dir: string) => {
    await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), weights, { format: 'pt' });
    await writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), pythonJsonDumps(config));
    await writeFileAtomic(join(dir, ADAPTER_README_FILE), readme);
  };
  if (target.keepOtherFiles) {
    await makeFolder(target.dir);
    await writeFiles(target.dir);
  } else {
    await writeFolderAtomic(target.dir, writeFiles, { overwrite: target.overwrite });
  }
}

export interface PeftLoraAdapter {
  dir: string;
  lora: AdapterLora;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA */
  scaling: number;
  baseModelNameOrPath: string | null;
  revision: string | null;
  peftVersion: string | null;
  /** adapter_config.json as parsed */
  config: Record<string, unknown>;
  /** engine-named tensors, in loraTensorShapes() order, converted to float32 */
  tensors: LoraTensor[];
}

/**
 * adapter_config.json of an adapter folder as parsed JSON (Python's NaN /
 * Infinity read as null), with errors that say what the folder lacks.
 */
export async function readAdapterConfigJson(dir: string): Promise<{ json: unknown; configPath: string }> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (!existsSync(dir)) throw new AdapterError(`${dir}: no such folder. Give the folder of a PEFT adapter (adapter_config.json + adapter_model.safetensors), e.g. a run's --out`);
      // a full fine-tuning run is a whole model, not an adapter: say how to use it
      const full = await fullRunAsAdapterMessage(dir);
      if (full) throw new AdapterError(full);
    }
    throw new AdapterError(code === 'ENOENT'
      ? `${dir}: has no ${ADAPTER_CONFIG_FILE}; this is not a PEFT adapter folder. Pick the folder that holds adapter_config.json and adapter_model.safetensors.`
      : `${configPath}: cannot be read (${code ?? String(err)}). Check its permissions.`);
  }
  try {
    return { json: JSON.parse(text), configPath };
  } catch (err) {
    try {
      // Python's json writes NaN / Infinity for such floats; JSON.parse does not read them.
      return { json: JSON.parse(text.replace(/\bNaN\b|-?\bInfinity\b/g, 'null')), configPath };
    } catch {
      throw new AdapterConfigError(configPath, null, `is not valid JSON (${(err as Error).message})`, 'Export the adapter again.');
    }
  }
}

/** adapter_model.safetensors of an adapter folder; a folder without it gets an error that says why. */
export async function adapterWeightsPath(dir: string): Promise<string> {
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!(await pathExists(weightsPath))) {
    const hasBin = await pathExists(join(dir, 'adapter_model.bin'));
    throw new AdapterError(hasBin
      ? `${dir}: holds adapter_model.bin (PyTorch pickle), which is not supported. Save the adapter with safetensors (PEFT's default, safe_serialization=True).`
      : `${dir}: has no ${ADAPTER_WEIGHTS_FILE}. The adapter folder is incomplete: export or download it again.`);
  }
  return weightsPath;
}

/**
 * Reads a PEFT LoRA adapter folder for a model with this spec: the config,
 * and every tensor checked against the modules the config selects.
 */
export async function readPeftAdapter(dir: string, spec: ModelSpec): Promise<PeftLoraAdapter> {
  const { json, configPath } = await readAdapterConfigJson(dir);
  const parsed = parseLoraAdapterConfig(json, configPath, spec);
  const weightsPath = await adapterWeightsPath(dir);
  const header = await readSafetensorsHeader(weightsPath);
  const byEngineName = new Map<string, string>();
  for (const info of header.tensors) {
    const engineName = peftKeyToEngineName(info.name);
    if (byEngineName.has(engineName)) {
      throw new AdapterError(`${weightsPath}: tensors "${byEngineName.get(engineName)}" and "${info.name}" are the same LoRA tensor. Export the adapter again.`);
    }
    byEngineName.set(engineName, info.name);
  }

  const tensors: LoraTensor[] = [];
  for (const { name, shape } of loraTensorShapes(spec, parsed.lora)) {
    const key = byEngineName.get(name);
    const magnitude = isDoraMagnitude(name);
    if (key === undefined) {
      throw new AdapterError(magnitude
        ? `${weightsPath}: has no tensor "${engineNameToPeftKey(name)}", the DoRA magnitude that ${ADAPTER_CONFIG_FILE}'s "use_dora": true implies for every adapted module. The adapter is incomplete: export it again (PEFT saves the magnitudes with use_dora=True).`
        : `${weightsPath}: has no tensor "${engineNameToPeftKey(name)}", which ${ADAPTER_CONFIG_FILE} implies (rank ${parsed.lora.rank} on ${parsed.lora.targets.join(', ')}). The adapter is incomplete or was trained for another model.`);
    }
    const info = header.byName.get(key)!;
    if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
      throw new AdapterError(`${weightsPath}: tensor "${key}" is stored as ${info.dtype}; adapters must be F32, F16 or BF16.`);
    }
    if (!sameShape(info.shape, shape)) {
      throw new AdapterError(magnitude
        ? `${weightsPath}: tensor "${key}" has shape [${info.shape.join(', ')}] but a DoRA magnitude of this module needs [${shape.join(', ')}] (one value per output row). The adapter was trained for another model or its weights are damaged.`
        : `${weightsPath}: tensor "${key}" has shape [${info.shape.join(', ')}] but this model and r = ${parsed.lora.rank} need [${shape.join(', ')}]. The adapter was trained for another model or its config does not match its weights.`);
    }
    const { data } = await readTensorAsFloat32(header, key);
    checkAdapterTensorFinite(weightsPath, key, data);
    tensors.push({ name, shape: [...shape], data });
    byEngineName.delete(name);
  }
  if (byEngineName.size > 0) {
    const [extraName, extra] = [...byEngineName.entries()][0];
    if (isDoraMagnitude(extraName) && parsed.lora.dora !== true) {
      // the magnitudes change the model's output: loading the factors alone would be another model
      throw new AdapterError(`${weightsPath}: holds the DoRA magnitude "${extra}", but ${configPath} does not set "use_dora": true, so it is read as a plain LoRA that has no place for it. ` +
        `If the adapter was trained with DoRA, set "use_dora": true in ${ADAPTER_CONFIG_FILE}; otherwise export it again.`);
    }
    throw new AdapterError(`${weightsPath}: holds tensor "${extra}", which ${ADAPTER_CONFIG_FILE} does not account for (biases, embeddings and per-layer target sets are not supported). Export the adapter again, or use a plain LoRA adapter.`);
  }

  return {
    dir,
    lora: parsed.lora,
    scaling: loraScaling(parsed.lora),
    baseModelNameOrPath: parsed.baseModelNameOrPath,
    revision: parsed.revision,
    peftVersion: parsed.peftVersion,
    config: parsed.raw,
    tensors,
  };
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function validateLora(lora: AdapterLora, spec: ModelSpec): void {
  if (!Number.isSafeInteger(lora.rank) || lora.rank <= 0) throw new AdapterError(`LoRA rank must be a positive integer, got ${lora.rank}.`);
  if (!Number.isFinite(lora.alpha) || lora.alpha <= 0) throw new AdapterError(`LoRA alpha must be a positive number, got ${lora.alpha}.`);
  if (!(lora.dropout >= 0 && lora.dropout < 1)) throw new AdapterError(`LoRA dropout must be in [0, 1), got ${lora.dropout}.`);
  if (lora.targets.length === 0) throw new AdapterError('LoRA needs at least one target module.');
  for (const t of lora.targets) {
    if (!LORA_TARGETS.includes(t)) throw new AdapterError(`unknown LoRA target "${t}"; targets are ${LORA_TARGETS.join(', ')}.`);
  }
  if (lora.layers !== null) {
    if (lora.layers.length === 0) throw new AdapterError('LoRA layers must be null (all layers) or a non-empty list.');
    for (const l of lora.layers) {
      if (!Number.isSafeInteger(l) || l < 0 || l >= spec.numLayers) throw new AdapterError(`LoRA layer ${l} does not exist; the model has layers 0..${spec.numLayers - 1}.`);
    }
  }
}

function modelCard(options: WritePeftAdapterOptions, parameters: number): string {
  const { lora } = options;
  const layers = lora.layers === null ? 'all' : [...new Set(lora.layers)].sort((a, b) => a - b).join(', ');
  const dora = lora.dora === true;
  return adapterModelCard({
    base: options.baseModelNameOrPath,
    tag: 'lora',
    title: dora ? 'DoRA' : 'LoRA',
    name: dora ? 'DoRA (weight-decomposed LoRA)' : 'LoRA',
    settingsHeading: true,
    settings: [
      ['rank (r)', String(lora.rank)],
      ['lora_alpha', String(lora.alpha)],
      ['scaling', `${loraScaling(lora)}${lora.rslora ? ' (rsLoRA: alpha / sqrt(r))' : ' (alpha / r)'}`],
      ['target modules', [...new Set(lora.targets)].sort().join(', ')],
      ['layers', layers],
      ['dropout', String(lora.dropout)],
      ...(dora ? [['use_dora', 'true: a trained magnitude per output row of every adapted module'] as [string, string]] : []),
      ['trainable parameters', parameters.toLocaleString('en-US')],
    ],
    notes: options.modelCardNotes,
  });
}

/** What an adapter's README.md (its Hub model card) says. */
export interface AdapterCard {
  /** base_model_name_or_path */
  base: string;
  /** the method's Hub tag: "lora", "prompt-tuning", "prefix-tuning" */
  tag: string;
  /** the method's name starting a heading ("Prompt tuning") and inside a sentence ("prompt tuning") */
  title: string;
  name: string;
  /** the settings table under its own "## Settings" heading, or straight after the summary */
  settingsHeading: boolean;
  settings: [string, string][];
  /** extra Markdown appended at the end */
  notes?: string;
}

/** README.md of an adapter folder: YAML front matter for the Hub, the settings, and how to load it with PEFT. */
export function adapterModelCard(card: AdapterCard): string {
  const { base } = card;
  const yamlBase = JSON.stringify(base); // a JSON string is a valid YAML scalar
  const lines = [
    '---',
    `base_model: ${yamlBase}`,
    'library_name: peft',
    'pipeline_tag: text-generation',
    'tags:',
    `- ${card.tag}`,
    '- peft',
    '- peft-studio',
    '---',
    '',
    `# ${card.title} adapter for ${base}`,
    '',
    `A ${card.name} adapter trained with PEFT Studio, saved in the Hugging Face PEFT format.`,
    '',
    ...(card.settingsHeading ? ['## Settings', ''] : []),
    '| setting | value |',
    '| --- | --- |',
    ...card.settings.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '## Use with PEFT',
    '',
    '```python',
    'from transformers import AutoModelForCausalLM',
    'from peft import PeftModel',
    '',
    `base = AutoModelForCausalLM.from_pretrained(${yamlBase})`,
    'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
    '```',
    '',
  ];
  if (card.notes) lines.push(card.notes.trimEnd(), '');
  return lines.join('\n');
}
