// adapter_config.json of a PEFT LoRA adapter: building it exactly as PEFT 0.20
// saves it, and reading one PEFT (any recent version) saved, including which
// modules its target_modules / layers_to_transform / exclude_modules select,
// decided the way PEFT decides it (check_target_module_exists in
// peft/tuners/tuners_utils.py) against the model's module names.

import type { LoraOptions, LoraTarget, ModelSpec } from '../engine/native.js';
import { PyFloat, type PyJson } from './python-json.js';

/** The PEFT release whose adapter_config.json layout we write. */
export const PEFT_VERSION = '0.20.0';

export const LORA_TARGETS: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/**
 * PEFT's default target_modules for the four supported model types: what an
 * adapter_config.json without target_modules means, and the CLI's default.
 */
export const PEFT_DEFAULT_TARGETS: readonly LoraTarget[] = ['q_proj', 'v_proj'];

export class AdapterConfigError extends Error {
  constructor(readonly file: string, readonly field: string | null, problem: string, advice: string) {
    super(`${file}${field === null ? '' : `: field "${field}"`}: ${problem}. ${advice}`);
    this.name = 'AdapterConfigError';
  }
}

/**
 * The start of every adapter_config.json parser: the content as an object
 * (anything else is refused), and `fail`, which throws an AdapterConfigError
 * naming the file and field, with `defaultAdvice` unless the caller gives its own.
 */
export function adapterConfigFields(json: unknown, file: string, defaultAdvice: string): {
  c: Record<string, unknown>;
  fail: (field: string, problem: string, advice?: string) => never;
} {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new AdapterConfigError(file, null, 'is not a JSON object', 'Export the adapter again.');
  }
  const fail = (field: string, problem: string, advice = defaultAdvice): never => {
    throw new AdapterConfigError(file, field, problem, advice);
  };
  return { c: json as Record<string, unknown>, fail };
}

/** The LoRA settings the adapter format records (LoraOptions without the seed; dora absent: plain LoRA). */
export type AdapterLora = Omit<LoraOptions, 'seed'>;

/**
 * adapter_config.json content with every field PEFT 0.20 writes for a LoRA
 * adapter of a causal LM (keys are sorted when dumped).
 */
export function buildLoraAdapterConfig(lora: AdapterLora, baseModelNameOrPath: string | null, revision: string | null = null): { [key: string]: PyJson } {
  const targets = [...new Set(lora.targets)].sort();
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: lora.init === 'gaussian' ? 'gaussian' : true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: lora.layers === null ? null : [...new Set(lora.layers)].sort((a, b) => a - b),
    loftq_config: {},
    lora_alpha: Number.isInteger(lora.alpha) ? lora.alpha : new PyFloat(lora.alpha),
    lora_bias: false,
    lora_dropout: new PyFloat(lora.dropout),
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: lora.rank,
    rank_pattern: {},
    revision,
    target_modules: targets,
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: lora.dora === true,
    use_qalora: false,
    use_rslora: lora.rslora,
    velora_config: null,
  };
}

/** LoRA scaling: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(lora: Pick<LoraOptions, 'rank' | 'alpha' | 'rslora'>): number {
  return lora.rslora ? lora.alpha / Math.sqrt(lora.rank) : lora.alpha / lora.rank;
}

export interface ParsedAdapterConfig {
  lora: AdapterLora;
  baseModelNameOrPath: string | null;
  revision: string | null;
  peftVersion: string | null;
  raw: Record<string, unknown>;
}

/** A module of the transformers model, as named by model.named_modules(). */
interface ModelModule {
  name: string;
  kind: 'linear' | 'embedding' | 'other';
  layer: number | null;
  target: LoraTarget | null;
}

/** Every module of a Llama-family causal LM with this spec. */
export function modelModules(spec: ModelSpec): ModelModule[] {
  const out: ModelModule[] = [
    { name: 'model', kind: 'other', layer: null, target: null },
    { name: 'model.embed_tokens', kind: 'embedding', layer: null, target: null },
    { name: 'model.layers', kind: 'other', layer: null, target: null },
  ];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = (sub: string, target: LoraTarget) => out.push({ name: `${p}.${sub}.${target}`, kind: 'linear', layer: i, target });
    const other = (name: string) => out.push({ name, kind: 'other', layer: i, target: null });
    other(p);
    other(`${p}.self_attn`);
    for (const t of ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const) lin('self_attn', t);
    if (spec.qkNorm) {
      other(`${p}.self_attn.q_norm`);
      other(`${p}.self_attn.k_norm`);
    }
    other(`${p}.mlp`);
    for (const t of ['gate_proj', 'up_proj', 'down_proj'] as const) lin('mlp', t);
    other(`${p}.mlp.act_fn`);
    other(`${p}.input_layernorm`);
    other(`${p}.post_attention_layernorm`);
  }
  out.push({ name: 'model.norm', kind: 'other', layer: null, target: null });
  out.push({ name: 'model.rotary_emb', kind: 'other', layer: null, target: null });
  out.push({ name: 'lm_head', kind: 'linear', layer: null, target: null });
  return out;
}

/**
 * Reads adapter_config.json content. Accepts what PEFT can save for a plain
 * LoRA or a DoRA (use_dora) on the supported models, and refuses (with the reason) the options
 * whose tensors or math this app does not reproduce.
 */
export function parseLoraAdapterConfig(json: unknown, file: string, spec: ModelSpec): ParsedAdapterConfig {
  const { c, fail } = adapterConfigFields(json, file, 'This adapter cannot be used here.');
  const set = (key: string) => c[key] !== undefined && c[key] !== null;

  if (c.peft_type !== 'LORA') {
    fail('peft_type', `is ${JSON.stringify(c.peft_type)}, not "LORA"`, 'Only LoRA adapters can be read as LoRA; prompt and prefix tuning adapters load elsewhere.');
  }
  const rank = c.r ?? 8;
  if (!Number.isSafeInteger(rank) || (rank as number) <= 0) fail('r', `must be a positive integer (found ${JSON.stringify(c.r)})`, 'Fix adapter_config.json.');
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) fail('lora_alpha', `must be a positive number (found ${JSON.stringify(c.lora_alpha)})`, 'Fix adapter_config.json.');
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail('lora_dropout', `must be a number in [0, 1) (found ${JSON.stringify(c.lora_dropout)})`, 'Fix adapter_config.json.');
  const rslora = c.use_rslora ?? false;
  if (typeof rslora !== 'boolean') fail('use_rslora', 'must be true or false', 'Fix adapter_config.json.');
  // DoRA (PEFT use_dora): the adapter also holds a magnitude per output row of every adapted module (peft.ts checks them)
  const dora = c.use_dora ?? false;
  if (typeof dora !== 'boolean') fail('use_dora', 'must be true or false', 'Fix adapter_config.json.');

  // Options that change tensors or math in ways this app does not implement.
  if (c.bias !== undefined && c.bias !== 'none') fail('bias', `is ${JSON.stringify(c.bias)}: adapters that train biases are not supported`);
  if (c.lora_bias === true) fail('lora_bias', 'is true: LoRA B biases are not supported');
  if (c.use_qalora === true) fail('use_qalora', 'is true: QA-LoRA adapters are not supported');
  if (set('modules_to_save') && !(Array.isArray(c.modules_to_save) && c.modules_to_save.length === 0)) {
    fail('modules_to_save', `is ${JSON.stringify(c.modules_to_save)}: adapters that also save fully trained modules are not supported`);
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = c[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v as object).length > 0)) {
      fail(key, `is ${JSON.stringify(v)}: per-module ${key === 'rank_pattern' ? 'ranks' : 'alphas'} are not supported`,
        'Use an adapter with one rank and one alpha for every module.');
    }
  }
  for (const key of ['layer_replication', 'target_parameters', 'trainable_token_indices', 'alora_invocation_tokens', 'megatron_config']) {
    if (set(key) && !(Array.isArray(c[key]) && (c[key] as unknown[]).length === 0)) fail(key, `is set (${JSON.stringify(c[key])}), which is not supported`);
  }
  const init = c.init_lora_weights ?? true;
  if (typeof init === 'string' && /^(pissa|olora|corda|loftq|mica)/.test(init)) {
    fail('init_lora_weights', `is "${init}": that initialisation changes the base weights, so the adapter only works on top of the modified base model`,
      'Convert it to a plain LoRA with PEFT (save_pretrained with path_initial_model_for_weight_conversion) first.');
  }
  if (typeof init !== 'boolean' && typeof init !== 'string') fail('init_lora_weights', `is ${JSON.stringify(init)}`, 'Fix adapter_config.json.');

  const selected = selectModules(c, file, spec);
  const targets = LORA_TARGETS.filter((t) => selected.some((m) => m.target === t));
  const layerSet = [...new Set(selected.map((m) => m.layer!))].sort((a, b) => a - b);
  if (selected.length === 0) {
    fail('target_modules', `selects no module of this ${spec.architecture}`, 'Check that the adapter was trained for this model.');
  }
  if (selected.length !== targets.length * layerSet.length) {
    fail('target_modules', 'adapts different modules in different layers, which this app cannot represent',
      'Use an adapter whose target modules are the same in every adapted layer.');
  }
  const baseModel = c.base_model_name_or_path;
  const revision = c.revision;
  const version = c.peft_version;
  return {
    lora: {
      rank: rank as number,
      alpha: alpha as number,
      dropout: dropout as number,
      rslora: rslora as boolean,
      dora: dora as boolean,
      targets,
      layers: layerSet.length === spec.numLayers ? null : layerSet,
      init: init === 'gaussian' ? 'gaussian' : 'default',
    },
    baseModelNameOrPath: typeof baseModel === 'string' ? baseModel : null,
    revision: typeof revision === 'string' ? revision : null,
    peftVersion: typeof version === 'string' ? version : null,
    raw: c,
  };
}

/** The linear modules PEFT would wrap, decided as PEFT decides it. */
function selectModules(c: Record<string, unknown>, file: string, spec: ModelSpec): ModelModule[] {
  let targets = c.target_modules;
  if (targets === undefined || targets === null) targets = [...PEFT_DEFAULT_TARGETS];
  if (targets === 'all-linear') targets = [...LORA_TARGETS]; // every linear layer but the output layer
  const layersToTransform = layerIndexes(c.layers_to_transform, file, spec);
  const layersPattern = patternsOf(c.layers_pattern, file);
  const excluded = matcherOf(c.exclude_modules, 'exclude_modules', file);

  let targetMatch: (name: string) => boolean;
  if (typeof targets === 'string') {
    const re = regexOf(targets, 'target_modules', file);
    targetMatch = (name) => re.test(name);
  } else if (Array.isArray(targets) && targets.every((t) => typeof t === 'string')) {
    const list = targets as string[];
    targetMatch = (name) => {
      if (list.includes(name)) return true;
      if (!list.some((t) => name.endsWith(`.${t}`))) return false;
      if (layersToTransform === null) return true;
      const index = layerIndexOf(name, layersPattern);
      return index !== null && layersToTransform.includes(index);
    };
  } else {
    throw new AdapterConfigError(file, 'target_modules', `must be a list of module names or a regular expression (found ${JSON.stringify(targets)})`, 'Fix adapter_config.json.');
  }
  if (typeof targets === 'string' && layersToTransform !== null) {
    throw new AdapterConfigError(file, 'layers_to_transform', 'cannot be used with a regular-expression target_modules (PEFT refuses this too)', 'Fix adapter_config.json.');
  }

  const selected: ModelModule[] = [];
  for (const m of modelModules(spec)) {
    if (excluded(m.name) || !targetMatch(m.name)) continue;
    if (m.kind === 'linear' && m.target !== null) {
      selected.push(m);
      continue;
    }
    const what = m.name === 'lm_head' ? 'the output layer lm_head' : m.kind === 'embedding' ? 'the token embeddings' : `module "${m.name}", which is not a linear layer`;
    throw new AdapterConfigError(file, 'target_modules', `selects ${what}; LoRA is supported on ${LORA_TARGETS.join(', ')} only`,
      'Use an adapter trained on the attention and MLP projections.');
  }
  return selected;
}

function layerIndexes(value: unknown, file: string, spec: ModelSpec): number[] | null {
  if (value === undefined || value === null) return null;
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.some((v) => !Number.isSafeInteger(v) || v < 0)) {
    throw new AdapterConfigError(file, 'layers_to_transform', `must be a layer index or a list of them (found ${JSON.stringify(value)})`, 'Fix adapter_config.json.');
  }
  if (list.length === 0) return null; // PEFT treats [] as "all layers"
  const bad = (list as number[]).find((v) => v >= spec.numLayers);
  if (bad !== undefined) {
    throw new AdapterConfigError(file, 'layers_to_transform', `names layer ${bad} but the model has ${spec.numLayers} layers`, 'Check that the adapter was trained for this model.');
  }
  return list as number[];
}

function patternsOf(value: unknown, file: string): string[] | null {
  if (value === undefined || value === null) return null;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string')) {
    throw new AdapterConfigError(file, 'layers_pattern', `must be a string or a list of strings (found ${JSON.stringify(value)})`, 'Fix adapter_config.json.');
  }
  return list.length === 0 ? null : (list as string[]);
}

/** PEFT: `.*\.{pattern}\.(\d+)\.`, or any `.<name>.<digits>.` without a pattern. */
function layerIndexOf(name: string, patterns: string[] | null): number | null {
  const candidates = patterns === null ? [/^.*\.[^.]*\.(\d+)\./] : patterns.map((p) => new RegExp(`^.*\\.${escapeRegex(p)}\\.(\\d+)\\.`));
  for (const re of candidates) {
    const m = re.exec(name);
    if (m) return Number(m[1]);
  }
  return null;
}

function matcherOf(value: unknown, field: string, file: string): (name: string) => boolean {
  if (value === undefined || value === null) return () => false;
  if (typeof value === 'string') {
    const re = regexOf(value, field, file);
    return (name) => re.test(name);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    const list = value as string[];
    return (name) => list.includes(name) || list.some((t) => name.endsWith(`.${t}`));
  }
  throw new AdapterConfigError(file, field, `must be a list of module names or a regular expression (found ${JSON.stringify(value)})`, 'Fix adapter_config.json.');
}

/** Python's re.fullmatch(pattern, name) as a JavaScript RegExp, when the syntax carries over. */
function regexOf(pattern: string, field: string, file: string): RegExp {
  const translated = pattern.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(`^(?:${translated})$`, 'u');
  } catch (err) {
    throw new AdapterConfigError(file, field, `the regular expression ${JSON.stringify(pattern)} uses syntax that cannot be evaluated here (${(err as Error).message})`,
      'Rewrite target_modules as a list of module names, e.g. ["q_proj", "v_proj"].');
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
