// `peft-studio inspect <modelDir>`: the model's shape and what training it
// would cost, per method, as JSON on stdout. The memory figures come from the
// engine's own formula (addon.estimateMemory), the one that sizes its buffers.
import { UsageError, type CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { LORA_TARGETS, PEFT_DEFAULT_TARGETS } from '../../adapters/peft-config.js';
import { loadAddon } from '../../engine/load.js';
import type { LoraTarget, MemoryEstimate, Method, ModelSpec, NativeAddon, QuantizationOptions } from '../../engine/native.js';
import type { FlopSettings } from '../../training/step-flops.js';
import { ESTIMATE_SPREAD, safeRunTimeEstimate, speedFor, tokensPerSecond } from '../../training/time-estimate.js';
import { trainingProcessBytes } from '../../training/process-memory.js';
import { DEFAULT_NF4, effectiveQuantization } from '../../session.js';
import { embeddingDType, openModelFolder, type ModelFolder } from '../../models/folder.js';
import { fullModelFileBytes } from '../../export/model-folder.js';
import { adapterFileBytes } from '../../training/adapter-files.js';
import { checkpointBytesOf, checkpointStateBytes, sideFileBytes } from '../../runs/disk-need.js';
import type { AdapterLayout } from '../../adapters/layout.js';
import { resolveTargets, TRAIN_DEFAULTS } from '../../training/config.js';
import { defaultSeqLenFor } from '../../training/settings.js';
import { prefixTokenDim } from '../../adapters/prompt-config.js';
import { machineInfo, type MachineInfo } from '../../system/machine.js';
import { resolveDevice, whyUnusable, type DeviceRequest, type EngineDevice } from '../../engine/device.js';
import { choosePrecision, type EnginePrecision } from '../../engine/precision.js';
import type { Precision } from '../../engine/native.js';
import { memoryBudget, withDeviceBytes } from '../../training/memory-check.js';
import { DEVICE_FLAG, deviceFromArgs } from '../device-flag.js';
import { PRECISION_FLAG, precisionFromArgs } from '../precision-flag.js';

export const inspectSpec: CommandSpec = {
  name: 'inspect',
  summary: 'Describe a model and estimate the memory of training it (JSON).',
  positionals: [{ name: 'modelDir', help: 'Hugging Face model folder, or a model in the Hugging Face cache (org/name); or pass it as --model', optional: true }],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'the model, as the other commands take it (instead of <modelDir>)' },
    { name: 'batch-size', kind: 'int', min: 1, help: 'micro-batch size for the activation estimate', defaultText: String(TRAIN_DEFAULTS.batchSize) },
    { name: 'seq-len', kind: 'int', min: 1, help: 'sequence length for the activation estimate', defaultText: `${TRAIN_DEFAULTS.seqLen}, or what the model's positions allow (as train)` },
    { name: 'rank', kind: 'int', min: 1, help: 'LoRA rank', defaultText: String(TRAIN_DEFAULTS.rank) },
    { name: 'targets', kind: 'list', choices: [...LORA_TARGETS, 'all-linear'], help: 'LoRA target modules', defaultText: PEFT_DEFAULT_TARGETS.join(',') },
    { name: 'dora', kind: 'boolean', help: 'the lora and qlora rows as DoRA (train --dora: a trained magnitude per output row; slower per step)' },
    { name: 'virtual-tokens', kind: 'int', min: 1, help: 'virtual tokens of the prompt and prefix rows', defaultText: String(TRAIN_DEFAULTS.virtualTokens) },
    { name: 'encoder-hidden-size', kind: 'int', min: 1, help: 'MLP hidden size of the prefix_projection row', defaultText: 'head_dim * kv_heads' },
    { name: 'optimizer', kind: 'string', choices: ['adamw', 'sgd'], help: 'optimizer whose state is counted', defaultText: 'adamw' },
    { name: 'gradient-checkpointing', kind: 'boolean', help: 'estimate activations with gradient checkpointing' },
    { name: 'quant-blocksize', kind: 'int', min: 32, max: 4096, help: 'NF4 block size of the qlora row (a power of two)', defaultText: String(DEFAULT_NF4.blocksize) },
    { name: 'no-double-quant', kind: 'boolean', help: 'qlora row without double quantization of the absmax values' },
    { ...DEVICE_FLAG, help: `the device to estimate for, as train would choose it (${DEVICE_FLAG.help})` },
    { ...PRECISION_FLAG, help: `the precision to estimate for, as train would choose it (${PRECISION_FLAG.help})` },
  ],
  notes: [
    'Output fields: model, architecture, sizes {hidden, layers, heads, kv_heads, head_dim, intermediate, vocab,',
    'max_positions, tie_word_embeddings}, parameters, stored_dtype, weight_file_bytes, settings, and memory.<method>',
    '{weights, gradients, optimizer_state, activations, total_bytes, trainable_params, adapter_bytes, checkpoint_bytes} (bytes),',
    'where adapter_bytes is the size of what training saves (lora: adapter_model.safetensors; full: model.safetensors, F32),',
    'checkpoint_bytes one checkpoint of --save-every (that, AdamW\'s two fp32 moments per trained parameter, small files),',
    'and fits: whether total_bytes is within the free memory of the device a run would use (--device; fits_in:',
    '{device, where, available_bytes, precision, precision_reason}: with auto the first GPU\'s free memory when the engine lists one, else the',
    'available RAM; precision: fp32 or bf16, as --precision resolves there). On the CPU each row also has cpu_threads_scratch',
    '(bytes, part of total_bytes: what the threads hold while a step runs: the attention\'s packed keys and values and partials,',
    'the GEMMs\' packing) and training_process (bytes, part of total_bytes: the training process itself: Node, the app\'s code and',
    'the addon, the tokenizer; inspect reads no data rows, which a run adds). On a CUDA device each row also has',
    'cuda_runtime_and_scratch (bytes, part of total_bytes: the CUDA context allowance, the cuBLASLt workspace, the widened',
    '4-bit / 16-bit weight chunk, under bf16 the operand copies, under LoRA the fused kernels\' partial sums) and host_ram',
    '{training_process, loading_weights, total_bytes, available_bytes} (the RAM the run needs beside the GPU: the process and, quantizing,',
    'the largest linear\'s fp32 copy and codes while it loads; fits counts it too)',
    '(machine {cpu_model, cpu_threads,',
    'total_memory_bytes, available_memory_bytes, limits, gpus: [{index, name, compute_capability, total_bytes, free_bytes, unusable}]};',
    'cpu_threads and the memory are within a container\'s (cgroup v1 or v2) CPU quota and memory limit; limits: {host_cpu_threads,',
    'cpu_quota (CPUs), host_memory_bytes, memory_limit_bytes, source, said: the limits that bind, in words}; gpus lists',
    'every CUDA device the runtime counts, [] in a build without the CUDA backend; index is the N of cuda:N, and unusable says why',
    'the engine cannot train on that one (it could not report itself, or is older than compute capability 7.5), null when it can).',
    'memory.qlora is LoRA on a 4-bit NF4 base (the decoder blocks\' linears; embeddings and lm_head as the checkpoint stores them, 16-bit or fp32; norms fp32), with',
    'quantized_bytes (codes + scales) and bits_per_quantized_param (4.127 at blocksize 64 with double quantization);',
    'quantization is the folder\'s own when bitsandbytes saved it in 4 bits (then only qlora can train it), else null.',
    'memory.prompt is prompt tuning and memory.prefix prefix tuning with --virtual-tokens; memory.prefix_projection is prefix',
    'tuning trained through its MLP (--encoder-hidden-size); all three save one prompt_embeddings tensor (adapter_bytes).',
    'With --dora the lora and qlora rows are DoRA: the magnitudes\' parameters, gradients and optimizer state, their scratch, the larger file and the slower step.',
    'notices: what to know about the folder (tensors config.json does not use, a broken generation_config.json) and settings',
    'no run could use (--seq-len beyond the model\'s positions), also printed to stderr as "note: ..." / "warning: ..." lines.',
    'time: {tokens_per_second: {<method>: estimated training tokens/s at --batch-size x --seq-len on this CPU, null on a GPU},',
    'gemm_gflops (this CPU\'s GEMM speed, measured once and kept in the studio home), spread (the estimate\'s measured accuracy, ±)}.',
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
  /**
   * one checkpoint of a run (--save-every): what training saves (adapter_bytes; full: with the model's side files),
   * AdamW's two fp32 moments of every trainable parameter, prefix tuning's encoder, the small files (runs/disk-need.ts)
   */
  checkpoint_bytes: number;
  /** total_bytes is within the machine's available memory */
  fits: boolean;
  /** qlora: bytes of the 4-bit linears (codes + scales), part of weights */
  quantized_bytes?: number;
  /** qlora: quantized_bytes * 8 / parameters held in 4 bits */
  bits_per_quantized_param?: number;
  /** on a CUDA device: its context, cuBLASLt workspace and scratch (part of total_bytes) */
  cuda_runtime_and_scratch?: number;
  /** on the CPU: what its threads hold while a step runs (the attention's packed keys and partials, the GEMMs' packing; part of total_bytes) */
  cpu_threads_scratch?: number;
  /** on the CPU: the training process's own memory (Node, the tokenizer; no data rows: inspect reads none), part of total_bytes (training/process-memory.ts) */
  training_process?: number;
  /**
   * on a GPU: the RAM the run needs beside the GPU's memory (not in total_bytes): the training process
   * (Node, the tokenizer) and the weights' load (quantizing: the largest linear's fp32 copy and codes); fits counts it too
   */
  host_ram?: { training_process: number; loading_weights: number; total_bytes: number; available_bytes: number };
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
  /** gpus: every CUDA device the runtime counts, each with why it is unusable or null ([] without the CUDA backend or a GPU) */
  machine: MachineInfo & { gpus: InspectGpu[] };
  settings: {
    batch_size: number;
    seq_len: number;
    rank: number;
    targets: LoraTarget[];
    /** the lora and qlora rows are DoRA (absent: plain LoRA) */
    dora?: boolean;
    /** virtual tokens of the prompt / prefix rows */
    virtual_tokens?: number;
    /** MLP hidden size of the prefix_projection row (null: head_dim * kv_heads, PEFT's default) */
    encoder_hidden_size?: number | null;
    optimizer: 'adamw' | 'sgd';
    gradient_checkpointing: boolean;
    /** NF4 settings of the qlora row (the folder's own for a bitsandbytes 4-bit folder) */
    quant_blocksize?: number;
    double_quant?: boolean;
  };
  /** a bitsandbytes 4-bit folder: {type, blocksize, doubleQuant, source, originalDType}; else null */
  quantization: ModelFolder['quantization'];
  memory: Record<'full' | 'lora' | 'qlora' | 'prompt' | 'prefix' | 'prefix_projection', MemoryRow>;
  /** what the user should know about the folder (tensors config.json does not use, a broken generation_config.json) */
  notices: string[];
  /** how fast each method trains here, estimated before any run (electron/training/time-estimate.ts) */
  time: InspectTime;
  /** what `fits` is measured against: the device a run gets by default (--device auto) and its free memory */
  fits_in: { device: EngineDevice; where: string; available_bytes: number; precision: EnginePrecision; precision_reason: string };
}

export type InspectMethod = keyof InspectReport['memory'];

export interface InspectTime {
  /**
   * estimated training tokens/s per method at batch_size x seq_len full rows
   * on this machine's CPU with all its threads; null on a GPU (no GPU speed has been measured to estimate from)
   */
  tokens_per_second: Record<InspectMethod, number | null>;
  /** the GEMM speed measured on this CPU (kept in the studio home's calibration.json); null on a GPU */
  gemm_gflops: number | null;
  /** how far off the estimate may be, as a share (bench/results/time-estimate.md) */
  spread: number;
}

/** inspect's tokens/s per method; every figure null when the device is a GPU or the estimate cannot be made. */
export function inspectTime(addon: NativeAddon, spec: ModelSpec, settings: InspectReport['settings'], gpu: boolean, threads: number, cpuModel: string): InspectTime {
  const nvt = settings.virtual_tokens ?? TRAIN_DEFAULTS.virtualTokens;
  const lora = { rank: settings.rank, targets: settings.targets, layers: null, dora: settings.dora === true };
  const base = { lora: null, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: settings.gradient_checkpointing };
  const methods: Record<InspectMethod, FlopSettings> = {
    full: { ...base, method: 'full' },
    lora: { ...base, method: 'lora', lora },
    qlora: { ...base, method: 'qlora', lora },
    prompt: { ...base, method: 'prompt', virtualTokens: nvt },
    prefix: { ...base, method: 'prefix', virtualTokens: nvt },
    prefix_projection: { ...base, method: 'prefix', virtualTokens: nvt, prefixEncoderHidden: settings.encoder_hidden_size ?? prefixTokenDim(spec) },
  };
  const speed = safeRunTimeEstimate(() => speedFor(addon.ops, { gpu, cpuModel, threads }, spec, settings.batch_size * settings.seq_len));
  const tokens = (m: InspectMethod) => (speed ? tokensPerSecond(spec, methods[m], settings.batch_size, settings.seq_len, speed) : null);
  return {
    tokens_per_second: { full: tokens('full'), lora: tokens('lora'), qlora: tokens('qlora'), prompt: tokens('prompt'), prefix: tokens('prefix'), prefix_projection: tokens('prefix_projection') },
    gemm_gflops: speed?.where === 'cpu' ? speed.gflops : null,
    spread: ESTIMATE_SPREAD,
  };
}

function row(e: MemoryEstimate, adapterBytes: number, availableBytes: number, gpu: boolean, processBytes: number, hostAvailable: number,
  checkpoint: { stateBytes: number; sideBytes: number }): MemoryRow {
  const quantized = e.quantizedParams > 0 ? { quantized_bytes: e.quantizedBytes, bits_per_quantized_param: (e.quantizedBytes * 8) / e.quantizedParams } : {};
  const device = e.deviceBytes === 0 ? {} : gpu ? { cuda_runtime_and_scratch: e.deviceBytes } : { cpu_threads_scratch: e.deviceBytes };
  // on the CPU the training process's own memory is in the same RAM (without data: no rows counted)
  const process = gpu ? {} : { training_process: processBytes };
  const total = e.totalBytes + (gpu ? 0 : processBytes);
  // on a GPU the RAM beside it: the process and the weights' load
  const loading = e.hostLoadBytes ?? 0;
  const host = gpu ? { training_process: processBytes, loading_weights: loading, total_bytes: processBytes + loading, available_bytes: hostAvailable } : null;
  return {
    ...quantized,
    ...device,
    ...process,
    ...(host ? { host_ram: host } : {}),
    weights: e.weightBytes,
    gradients: e.gradientBytes,
    optimizer_state: e.optimizerBytes,
    activations: e.activationBytes,
    total_bytes: total,
    trainable_params: e.trainableParams,
    adapter_bytes: adapterBytes,
    checkpoint_bytes: checkpointBytesOf({ resultBytes: adapterBytes + checkpoint.sideBytes, stateBytes: checkpoint.stateBytes }),
    fits: total <= availableBytes && (host === null || host.total_bytes <= hostAvailable),
  };
}

export interface InspectGpu {
  /** the N of cuda:N */
  index: number;
  name: string;
  compute_capability: string;
  total_bytes: number;
  free_bytes: number;
  /** why the engine cannot train on it (it could not report itself, or is older than compute capability 7.5); null when it can */
  unusable: string | null;
}

/** addon.devices() in the report's snake_case ([] from an addon built before devices() existed; the addon and this code are built together). */
export function inspectGpus(addon: NativeAddon): InspectGpu[] {
  if (typeof addon.devices !== 'function') return [];
  return addon.devices().map((d) => ({
    index: d.index, name: d.name, compute_capability: d.computeCapability, total_bytes: d.totalBytes, free_bytes: d.freeBytes, unusable: whyUnusable(d),
  }));
}

/** What inspect estimates for: the device and precision as train would resolve them (both 'auto' by default). */
export interface InspectTarget {
  device: DeviceRequest;
  precision: Precision;
}

export function inspectModel(addon: NativeAddon, folder: ModelFolder, settings: InspectReport['settings'], machine: MachineInfo = machineInfo(),
  target: InspectTarget = { device: 'auto', precision: 'auto' }): InspectReport {
  const { spec } = folder;
  // the device `train` picks (by default the first GPU's free memory when there is one, else the RAM), and its precision there
  const device = resolveDevice(addon, target.device, 'estimate');
  const precision = choosePrecision(target.precision, device.gpu);
  const budget = memoryBudget(device, machine.available_memory_bytes);
  const available = budget.availableBytes;
  const requested: QuantizationOptions = { type: 'nf4', blocksize: settings.quant_blocksize ?? DEFAULT_NF4.blocksize, doubleQuant: settings.double_quant ?? DEFAULT_NF4.doubleQuant };
  const nf4 = effectiveQuantization(folder, requested)!;
  // the base as it is held without --quant: as stored (16-bit or fp32), or NF4 for a bitsandbytes 4-bit folder
  const stored = folder.quantization ? nf4 : null;
  settings = { ...settings, quant_blocksize: nf4.blocksize, double_quant: nf4.doubleQuant };
  const nvt = settings.virtual_tokens ?? TRAIN_DEFAULTS.virtualTokens;
  const encoderHiddenSize = settings.encoder_hidden_size ?? prefixTokenDim(spec);
  settings = { ...settings, virtual_tokens: nvt, encoder_hidden_size: encoderHiddenSize };
  const estimate = (method: Method, quantization: QuantizationOptions | null = null, projection = false) =>
    withDeviceBytes(addon.estimateMemory(spec, {
      device: device.device,
      precision: precision.precision,
      method,
      prompt: method === 'prompt' ? { numVirtualTokens: nvt } : undefined,
      prefix: method === 'prefix' ? { numVirtualTokens: nvt, encoderHiddenSize: projection ? encoderHiddenSize : null } : undefined,
      batchSize: settings.batch_size,
      seqLen: settings.seq_len,
      lora: method === 'lora' ? { rank: settings.rank, targets: settings.targets, layers: null, dora: settings.dora === true } : undefined,
      gradientCheckpointing: settings.gradient_checkpointing,
      optimizer: settings.optimizer,
      quantization,
      weightDType: embeddingDType(folder),
      // train's default: every thread of this machine (each holds its own scratch)
      threads: machine.cpu_threads,
    }));
  const lora = { rank: settings.rank, targets: settings.targets, layers: null, dora: settings.dora === true };
  const gpu = device.gpu !== null;
  const processBytes = trainingProcessBytes(folder.dir);
  // a checkpoint holds the optimizer's state (and prefix tuning's encoder) beside what training saves
  const optimizer = settings.optimizer === 'sgd' ? 'sgd' as const : 'adamw' as const;
  const state = (layout: AdapterLayout | null) => ({ stateBytes: checkpointStateBytes(spec, layout, optimizer, 1), sideBytes: layout ? 0 : sideFileBytes(folder.dir) });
  const layouts = {
    lora: { kind: 'lora', lora } as AdapterLayout,
    prompt: { kind: 'prompt', prompt: { numVirtualTokens: nvt, init: 'RANDOM', initText: null } } as AdapterLayout,
    prefix: { kind: 'prefix', prefix: { numVirtualTokens: nvt, projection: false, encoderHiddenSize: null } } as AdapterLayout,
    prefix_projection: { kind: 'prefix', prefix: { numVirtualTokens: nvt, projection: true, encoderHiddenSize } } as AdapterLayout,
  };
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
    machine: { ...machine, gpus: inspectGpus(addon) },
    settings,
    quantization: folder.quantization,
    memory: {
      full: row(estimate('full'), fullModelFileBytes(spec), available, gpu, processBytes, machine.available_memory_bytes, state(null)),
      // a bitsandbytes 4-bit folder trains on its 4-bit base whatever the method
      lora: row(estimate('lora', stored), adapterFileBytes(spec, layouts.lora), available, gpu, processBytes, machine.available_memory_bytes, state(layouts.lora)),
      qlora: row(estimate('lora', nf4), adapterFileBytes(spec, layouts.lora), available, gpu, processBytes, machine.available_memory_bytes, state(layouts.lora)),
      prompt: row(estimate('prompt', stored), adapterFileBytes(spec, layouts.prompt), available, gpu, processBytes, machine.available_memory_bytes, state(layouts.prompt)),
      prefix: row(estimate('prefix', stored), adapterFileBytes(spec, layouts.prefix), available, gpu, processBytes, machine.available_memory_bytes, state(layouts.prefix)),
      // the saved file is the folded table whatever the MLP's size
      prefix_projection: row(estimate('prefix', stored, true), adapterFileBytes(spec, layouts.prefix_projection), available, gpu, processBytes, machine.available_memory_bytes, state(layouts.prefix_projection)),
    },
    time: inspectTime(addon, spec, settings, device.gpu !== null, machine.cpu_threads, machine.cpu_model),
    fits_in: { device: device.device, where: budget.where, available_bytes: available, precision: precision.precision, precision_reason: precision.reason },
    notices: [...folder.notices, ...inspectWarnings(settings, spec)],
  };
}

/** Settings inspect accepts but no run could use (it estimates them anyway). */
export function inspectWarnings(settings: InspectReport['settings'], spec: { maxPositionEmbeddings: number }): string[] {
  const max = spec.maxPositionEmbeddings;
  return settings.seq_len > max
    ? [`--seq-len ${settings.seq_len} is beyond the model's max_position_embeddings (${max}): train refuses it, so these estimates are for a length no run can use; use --seq-len ${max} or less`]
    : [];
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
    const given = args.positionals[0];
    if (given !== undefined && args.has('model')) throw new UsageError('inspect takes the model once: as <modelDir> or as --model, not both', 'inspect');
    const modelDir = given ?? args.string('model');
    if (modelDir === undefined) throw new UsageError("'inspect' needs <modelDir> (or --model DIR)", 'inspect');
    const folder = await openModelFolder(modelDir);
    const settings: InspectReport['settings'] = {
      batch_size: args.number('batch-size') ?? TRAIN_DEFAULTS.batchSize,
      // as train defaults it: a model with fewer positions gets its own length, not a warning about a default
      seq_len: args.number('seq-len') ?? defaultSeqLenFor(folder.spec),
      rank: args.number('rank') ?? TRAIN_DEFAULTS.rank,
      targets: targetsOrUsageError(args.list('targets')),
      ...(args.boolean('dora') ? { dora: true } : {}),
      virtual_tokens: args.number('virtual-tokens') ?? TRAIN_DEFAULTS.virtualTokens,
      encoder_hidden_size: args.number('encoder-hidden-size') ?? null,
      optimizer: (args.string('optimizer') ?? 'adamw') as 'adamw' | 'sgd',
      gradient_checkpointing: args.boolean('gradient-checkpointing'),
      quant_blocksize: args.number('quant-blocksize') ?? DEFAULT_NF4.blocksize,
      double_quant: !args.boolean('no-double-quant'),
    };
    const bs = settings.quant_blocksize!;
    if ((bs & (bs - 1)) !== 0) throw new UsageError(`--quant-blocksize must be a power of two between 32 and 4096 (got ${bs})`, 'inspect');
    const target: InspectTarget = { device: deviceFromArgs(args), precision: precisionFromArgs(args) };
    const report = inspectModel(loadAddon(), folder, settings, machineInfo(), target);
    for (const notice of folder.notices) io.stderr(`note: ${notice}\n`);
    for (const warning of inspectWarnings(settings, folder.spec)) io.stderr(`warning: ${warning}\n`);
    io.stdout(JSON.stringify(report, null, 2) + '\n');
  },
};
