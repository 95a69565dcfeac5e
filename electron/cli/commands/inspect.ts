// `peft-studio inspect <modelDir>`: the model's shape and what training it
// would cost, per method, as JSON on stdout. The memory figures come from the
// engine's own formula (addon.estimateMemory), the one that sizes its buffers.
import { UsageError, type CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../../adapters/peft-config.js';
import { loadAddon } from '../../engine/load.js';
import type { LoraTarget, MemoryEstimate, Method, NativeAddon } from '../../engine/native.js';
import { openModelFolder, type ModelFolder } from '../../models/folder.js';
import { fullModelFileBytes } from '../../export/model-folder.js';
import { adapterFileBytes } from '../../training/adapter-files.js';
import { resolveTargets, TRAIN_DEFAULTS } from '../../training/config.js';
import { machineInfo, type MachineInfo } from '../../system/machine.js';

export const inspectSpec: CommandSpec = {
  name: 'inspect',
  summary: 'Describe a model and estimate the memory of training it (JSON).',
  positionals: [{ name: 'modelDir', help: 'Hugging Face model folder' }],
  flags: [
    { name: 'batch-size', kind: 'int', min: 1, help: 'micro-batch size for the activation estimate', defaultText: String(TRAIN_DEFAULTS.batchSize) },
    { name: 'seq-len', kind: 'int', min: 1, help: 'sequence length for the activation estimate', defaultText: String(TRAIN_DEFAULTS.seqLen) },
    { name: 'rank', kind: 'int', min: 1, help: 'LoRA rank', defaultText: String(TRAIN_DEFAULTS.rank) },
    { name: 'targets', kind: 'list', choices: [...LORA_TARGETS, 'all-linear'], help: 'LoRA target modules', defaultText: PEFT_DEFAULT_TARGETS.join(',') },
    { name: 'optimizer', kind: 'string', choices: ['adamw', 'sgd'], help: 'optimizer whose state is counted', defaultText: 'adamw' },
    { name: 'gradient-checkpointing', kind: 'boolean', help: 'estimate activations with gradient checkpointing' },
  ],
  notes: [
    'Output fields: model, architecture, sizes {hidden, layers, heads, kv_heads, head_dim, intermediate, vocab,',
    'max_positions, tie_word_embeddings}, parameters, stored_dtype, weight_file_bytes, settings, and memory.<method>',
    '{weights, gradients, optimizer_state, activations, total_bytes, trainable_params, adapter_bytes} (bytes),',
    'where adapter_bytes is the size of what training saves (lora: adapter_model.safetensors; full: model.safetensors, F32),',
    'and fits: whether total_bytes is within this machine\'s available memory (machine {cpu_model, cpu_threads,',
    'total_memory_bytes, available_memory_bytes}).',
  ],
};

export interface MemoryRow {
  weights: number;
  gradients: number;
  optimizer_state: number;
  activations: number;
  total_bytes: number;
  trainable_params: number;
  adapter_bytes: number;
  /** total_bytes is within the machine's available memory */
  fits: boolean;
}

export interface InspectReport {
  model: string;
  architecture: string;
  sizes: {
    hidden: number;
    layers: number;
    heads: number;
    kv_heads: number;
    head_dim: number;
    intermediate: number;
    vocab: number;
    max_positions: number;
    tie_word_embeddings: boolean;
  };
  parameters: number;
  stored_dtype: string;
  weight_file_bytes: number;
  machine: MachineInfo;
  settings: { batch_size: number; seq_len: number; rank: number; targets: LoraTarget[]; optimizer: 'adamw' | 'sgd'; gradient_checkpointing: boolean };
  memory: Record<'full' | 'lora', MemoryRow>;
}

function row(e: MemoryEstimate, adapterBytes: number, availableBytes: number): MemoryRow {
  return {
    weights: e.weightBytes,
    gradients: e.gradientBytes,
    optimizer_state: e.optimizerBytes,
    activations: e.activationBytes,
    total_bytes: e.totalBytes,
    trainable_params: e.trainableParams,
    adapter_bytes: adapterBytes,
    fits: e.totalBytes <= availableBytes,
  };
}

export function inspectModel(addon: NativeAddon, folder: ModelFolder, settings: InspectReport['settings'], machine: MachineInfo = machineInfo()): InspectReport {
  const { spec } = folder;
  const available = machine.available_memory_bytes;
  const estimate = (method: Method) =>
    addon.estimateMemory(spec, {
      method,
      batchSize: settings.batch_size,
      seqLen: settings.seq_len,
      lora: method === 'lora' ? { rank: settings.rank, targets: settings.targets, layers: null } : undefined,
      gradientCheckpointing: settings.gradient_checkpointing,
      optimizer: settings.optimizer,
    });
  const lora = { rank: settings.rank, targets: settings.targets, layers: null };
  return {
    model: folder.dir,
    architecture: spec.architecture,
    sizes: {
      hidden: spec.hiddenSize,
      layers: spec.numLayers,
      heads: spec.numHeads,
      kv_heads: spec.numKvHeads,
      head_dim: spec.headDim,
      intermediate: spec.intermediateSize,
      vocab: spec.vocabSize,
      max_positions: spec.maxPositionEmbeddings,
      tie_word_embeddings: spec.tieWordEmbeddings,
    },
    parameters: folder.parameterCount,
    stored_dtype: folder.storedDType,
    weight_file_bytes: folder.weightBytes,
    machine,
    settings,
    memory: {
      full: row(estimate('full'), fullModelFileBytes(spec), available),
      lora: row(estimate('lora'), adapterFileBytes(spec, lora), available),
    },
  };
}

function targetsOrUsageError(list: string[] | undefined): LoraTarget[] {
  try {
    return resolveTargets(list ?? [...PEFT_DEFAULT_TARGETS]);
  } catch (e) {
    throw new UsageError((e as Error).message, 'inspect');
  }
}

export const inspectCommand: Command = {
  spec: inspectSpec,
  async run(args, io) {
    const folder = await openModelFolder(args.positionals[0]);
    const settings: InspectReport['settings'] = {
      batch_size: args.number('batch-size') ?? TRAIN_DEFAULTS.batchSize,
      seq_len: args.number('seq-len') ?? TRAIN_DEFAULTS.seqLen,
      rank: args.number('rank') ?? TRAIN_DEFAULTS.rank,
      targets: targetsOrUsageError(args.list('targets')),
      optimizer: (args.string('optimizer') ?? 'adamw') as 'adamw' | 'sgd',
      gradient_checkpointing: args.boolean('gradient-checkpointing'),
    };
    io.stdout(JSON.stringify(inspectModel(loadAddon(), folder, settings), null, 2) + '\n');
  },
};
