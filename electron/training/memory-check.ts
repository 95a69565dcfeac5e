// The pre-flight check of a run: does what the engine will allocate (the same
// formula that sizes its buffers) fit in the memory this machine has free:
// the GPU's free memory when the run is on a GPU, else the host's RAM?
// Refusing before the weights are mapped beats an out-of-memory kill halfway
// through the first step.
import type { LoraSettings, TrainConfig } from './config.js';
import type { MemoryEstimate, NativeAddon } from '../engine/native.js';
import type { EngineDevice, ResolvedDevice } from '../engine/device.js';
import type { EnginePrecision } from '../engine/precision.js';
import { totalmem } from 'node:os';
import { availableMemoryBytes } from '../system/machine.js';
import { cgroupLimits, type CgroupLimits } from '../system/cgroup-limits.js';
import { bytesInWords } from '../text/bytes.js';
import { embeddingDType, type ModelFolder } from '../models/folder.js';
import { effectiveQuantization } from '../session.js';
import { encoderHiddenSizeOf } from '../adapters/prompt-config.js';
import type { FitAlternative, FitAlternatives } from './fit-alternatives.js';
import { trainingProcessBytes } from './process-memory.js';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

/** Where a run computes, as the estimate needs it: the backend's own memory (deviceBytes) depends on it. */
export interface EstimateTarget {
  device: EngineDevice;
  precision: EnginePrecision;
}

/** What a run's data lets its batches reach: the most rows a batch can hold (all of a split), and the longest row. */
export interface DataShape {
  rows: number;
  longest: number;
}

/** The shape of a run's rows (its training and evaluation rows: evaluation batches run in the same buffers). */
export function dataShape(train: readonly { inputIds: ArrayLike<number> }[], evalRows: readonly { inputIds: ArrayLike<number> }[]): DataShape {
  const longest = (rows: readonly { inputIds: ArrayLike<number> }[]) => rows.reduce((n, r) => Math.max(n, r.inputIds.length), 0);
  return { rows: Math.max(train.length, evalRows.length), longest: Math.max(longest(train), longest(evalRows)) };
}

/**
 * The run as its buffers will really be sized: a batch never holds more rows
 * than the data has, and is padded to its longest row, not to --seq-len. A
 * run of 111 short rows at --batch-size 30000 needs what 111 of them need.
 * Null (data not read): the settings as they are.
 */
export function boundByData(config: TrainConfig, shape: DataShape | null): TrainConfig {
  if (shape === null || shape.rows === 0 || shape.longest === 0) return config;
  return { ...config, batchSize: Math.min(config.batchSize, shape.rows), seqLen: Math.max(2, Math.min(config.seqLen, shape.longest)) };
}

/**
 * A run's estimate: the engine's (the addon's formula, to the byte) and, on
 * the CPU, the training process's own memory (process-memory.ts: Node, the
 * tokenizer, the data rows), held in the same RAM; on a GPU that is host RAM,
 * not the GPU's budget (0), and is counted in `host` instead.
 */
export interface RunEstimate extends MemoryEstimate {
  processBytes: number;
  /** a GPU run's host RAM (hostShortfall); null on the CPU, where totalBytes is all host RAM */
  host: GpuRunHostNeed | null;
}

/** What a run on a GPU holds in host RAM beside the GPU's memory. */
export interface GpuRunHostNeed {
  /** the training process: Node, the tokenizer, the data rows (process-memory.ts) */
  processBytes: number;
  /** the weights' load at its peak (the addon's hostLoadBytes: quantizing, the largest linear's fp32 copy and codes) */
  loadBytes: number;
  totalBytes: number;
}

/** rowsBytes: what the run's loaded rows hold (0 when not known: the estimate then leaves them out). */
export function estimateRun(addon: NativeAddon, folder: ModelFolder, config: TrainConfig, lora: LoraSettings | null,
  target: EstimateTarget = { device: 'cpu', precision: 'fp32' }, rowsBytes = 0): RunEstimate {
  const engine = engineEstimate(addon, folder, config, lora, target);
  if (target.device !== 'cpu') {
    const processBytes = trainingProcessBytes(folder.dir, rowsBytes), loadBytes = engine.hostLoadBytes ?? 0;
    return { ...engine, processBytes: 0, host: { processBytes, loadBytes, totalBytes: processBytes + loadBytes } };
  }
  const processBytes = trainingProcessBytes(folder.dir, rowsBytes);
  return { ...engine, processBytes, host: null, totalBytes: engine.totalBytes + processBytes };
}

/**
 * null when a GPU run's host RAM (RunEstimate.host) fits in what the host has
 * available (or the run is on the CPU: its budget is the RAM already), else a
 * message that says by how much and what to do. The GPU's memory is checked
 * by memoryShortfall; this is the RAM the run needs beside it.
 */
export function hostShortfall(estimate: Pick<RunEstimate, 'host'>, hostAvailable: number, ignoring: boolean): string | null {
  const host = estimate.host;
  if (host === null || host.totalBytes <= hostAvailable) return null;
  const load = host.loadBytes > 0 ? `, loading the weights ${gib(host.loadBytes)}` : '';
  return `this run needs about ${gib(host.totalBytes)} of RAM beside the GPU's memory (${PROCESS_BYTES_LABEL} ${gib(host.processBytes)}${load}) ` +
    `but only ${gib(hostAvailable)} is available in RAM. Free RAM (close programs that hold it) or use fewer data rows; ` +
    `${ignoring ? 'starting anyway, as --ignore-memory-check asks.' : 'or pass --ignore-memory-check to start anyway.'}`;
}

function engineEstimate(addon: NativeAddon, folder: ModelFolder, config: TrainConfig, lora: LoraSettings | null, target: EstimateTarget): MemoryEstimate {
  return withDeviceBytes(addon.estimateMemory(folder.spec, {
    device: target.device,
    precision: target.precision,
    method: config.method === 'full' ? 'full' : config.method === 'prompt' || config.method === 'prefix' ? config.method : 'lora',
    // a bitsandbytes 4-bit folder is NF4 whatever the method says
    quantization: effectiveQuantization(folder, config.quantization),
    weightDType: embeddingDType(folder),
    batchSize: config.batchSize,
    // batches are padded to their longest row, at most --seq-len
    seqLen: config.seqLen,
    lora: lora && (config.method === 'lora' || config.method === 'qlora') ? { rank: lora.rank, targets: lora.targets, layers: lora.layers, dropout: lora.dropout, dora: lora.dora === true } : undefined,
    prompt: config.method === 'prompt' && config.prompt ? { numVirtualTokens: config.prompt.numVirtualTokens } : undefined,
    prefix: config.method === 'prefix' && config.prefix
      ? { numVirtualTokens: config.prefix.numVirtualTokens, encoderHiddenSize: config.prefix.projection ? encoderHiddenSizeOf(config.prefix, folder.spec) : null }
      : undefined,
    gradientCheckpointing: config.gradientCheckpointing,
    optimizer: config.optimizer,
    // on the CPU every thread holds its own scratch
    threads: config.threads,
  }));
}

/** An addon built before the device term returns no deviceBytes: it counted none (0). */
export function withDeviceBytes(estimate: MemoryEstimate): MemoryEstimate {
  return estimate.deviceBytes === undefined ? { ...estimate, deviceBytes: 0 } : estimate;
}

/** The breakdown's name of processBytes. */
export const PROCESS_BYTES_LABEL = 'the training process (Node, tokenizer, data rows)';

/**
 * The breakdown's name of deviceBytes (inspect, the app's fit check and the
 * shortfall message say it the same way): what the backend holds beyond the
 * engine's tensors, on a GPU or on the CPU.
 */
export function deviceBytesLabel(gpu: boolean): string {
  return gpu ? 'CUDA runtime and scratch' : "CPU threads' scratch";
}

/** The memory a run's estimate is held against: the GPU's free memory on a GPU, the host's available RAM on the CPU. */
export interface MemoryBudget {
  availableBytes: number;
  /** how a message says where: "on NVIDIA H200", "in RAM" */
  where: string;
  /** the budget is a GPU's */
  gpu: boolean;
}

/**
 * The budget of a run on this device; hostAvailable: the host's available RAM (read now when not given, within a
 * container's memory limit, which the message then names: the kernel ends a run at that limit, not at the RAM's).
 */
export function memoryBudget(device: Pick<ResolvedDevice, 'gpu'>, hostAvailable?: number,
  limits: Pick<CgroupLimits, 'memoryLimitBytes' | 'memoryHeadroomBytes'> = cgroupLimits(), hostTotal = totalmem()): MemoryBudget {
  if (device.gpu) return { availableBytes: device.gpu.freeBytes, where: `on ${device.gpu.name}`, gpu: true };
  const limit = limits.memoryLimitBytes !== null && limits.memoryLimitBytes < hostTotal ? limits.memoryLimitBytes : null;
  return {
    availableBytes: hostAvailable ?? availableMemoryBytes('/', limits),
    where: limit === null ? 'in RAM' : `in RAM (within the container's ${bytesInWords(limit)} memory limit)`,
    gpu: false,
  };
}

/**
 * The budget as the training process judges it, in itself: the memory available (MemAvailable, a container's
 * room) no longer counts what this process already holds, which the estimate counts in full (processBytes: Node,
 * the tokenizer, the rows it has loaded), so that much is added back; on a GPU the device's memory is not the
 * process's. (The app's check runs in another process, whose memory stays taken.)
 */
export function withOwnMemory(budget: MemoryBudget, ownBytes: number): MemoryBudget {
  return budget.gpu ? budget : { ...budget, availableBytes: budget.availableBytes + ownBytes };
}

/** What can shrink a run that does not fit, in the order worth trying. */
export type MemoryRemedy = 'smaller-batch' | 'shorter-sequence' | 'gradient-checkpointing' | 'lora' | 'qlora';

/** The remedies that apply to this configuration (the CLI and the app word them each their own way). */
export function memoryRemedies(config: TrainConfig): MemoryRemedy[] {
  const remedies: MemoryRemedy[] = [];
  if (config.batchSize > 1) remedies.push('smaller-batch');
  remedies.push('shorter-sequence');
  if (!config.gradientCheckpointing) remedies.push('gradient-checkpointing');
  if (config.method === 'full') remedies.push('lora');
  if (config.method !== 'qlora' && config.quantization === null) remedies.push('qlora');
  return remedies;
}

const CLI_REMEDY: Record<MemoryRemedy, string> = {
  'smaller-batch': 'a smaller --batch-size (with --grad-accum to keep the effective batch)',
  'shorter-sequence': 'a shorter --seq-len',
  'gradient-checkpointing': '--gradient-checkpointing',
  lora: '--method lora',
  qlora: '--method qlora (a 4-bit base)',
};

/** The remedies a search tried, as a message names them when none helped. */
const TRIED_REMEDY: Record<MemoryRemedy, string> = {
  'smaller-batch': 'a smaller --batch-size',
  'shorter-sequence': 'a shorter --seq-len',
  'gradient-checkpointing': '--gradient-checkpointing',
  lora: '--method lora',
  qlora: '--method qlora',
};

/**
 * What a shorter sequence does to the rows, as the CLI and the app say it
 * ("; 31 of 2000 rows are longer and would be cut, 4 of them inside the prompt
 * (nothing left to learn: they would be skipped)"); '' when it cuts none.
 */
export function rowsCutInWords(rows: FitAlternative['longerRows'], lead = '; '): string {
  if (!rows || rows.longer === 0) return '';
  const skipped = rows.skipped === 0 ? ''
    : `, ${rows.skipped === rows.longer ? (rows.longer === 1 ? 'inside its prompt' : 'all inside their prompt') : `${rows.skipped} of them inside the prompt`} (nothing left to learn: ${rows.skipped === 1 ? 'it' : 'they'} would be skipped)`;
  return `${lead}${rows.longer} of ${rows.of} rows are longer and would be cut${skipped}`;
}

/** An alternative as the shortfall message lists it: "--batch-size 2 --grad-accum 4 (7.12 GiB)". */
function alternativeInWords(a: FitAlternative): string {
  const batch = a.effectiveBatch;
  const about = batch && batch.after !== batch.before ? `; an effective batch of ${batch.after} instead of ${batch.before}` : '';
  return `${a.flags} (${gib(a.totalBytes)}${about}${rowsCutInWords(a.longerRows)})`;
}

/**
 * What to change, when `fit` (fit-alternatives.ts) was searched: the settings
 * that fit, or that nothing tried does (and by how much the leanest misses).
 * Its ways out end as memoryShortfall's list always has ("; --device cpu; or
 * pass --ignore-memory-check …"): the app rewords those (service/app-wording.ts).
 */
function fitAdvice(fit: FitAlternatives, gpu: boolean, precision: TrainConfig['precision'], ignoring: boolean): string {
  const { alternatives, leanest } = fit;
  // a run started anyway says so instead of offering what was already asked
  const ignore = ignoring ? 'starting anyway, as --ignore-memory-check asks.' : 'or pass --ignore-memory-check to start anyway.';
  if (alternatives.length > 0) {
    const lead = alternatives[0].changes.length > 1 ? 'No single change fits; together these do' : alternatives.length === 1 ? 'This fits' : 'These fit';
    return `${lead}: ${alternatives.map(alternativeInWords).join('; ')}; ${ignore}`;
  }
  const tried = fit.tried.map((r) => TRIED_REMEDY[r]);
  const kept = fit.resumed ? ' (a resumed run keeps its batch size, sequence length and method)' : '';
  const none = tried.length === 0
    ? `Nothing this check may change makes it fit on this device${kept}`
    : leanest === null
      ? `Nothing tried fits on this device (${tried.join(', ')})${kept}`
      : tried.length === 1
        ? `Nothing tried fits on this device: with ${leanest.flags} it still needs about ${gib(leanest.totalBytes)}${kept}`
        : `Nothing tried fits on this device (${tried.join(', ')}, alone or together): even ${leanest.flags} needs about ${gib(leanest.totalBytes)}${kept}`;
  // on a GPU the CPU is the way out (slower, but host RAM is usually larger; it computes in fp32 only)
  // (not "the CPU: --device cpu": the app words the flag as "the CPU (choose cpu …)")
  const cpu = gpu ? `; another device: ${precision === 'bf16' ? '--device cpu --precision fp32' : '--device cpu'}` : '';
  return `${none}${cpu}; ${ignore}`;
}

/**
 * null when the run fits, else a message that says by how much, where, and
 * what to change: with `fit` (fittingAlternatives for this run and budget)
 * the settings that would fit, each with its estimate; without it the kinds
 * of change that could help. A plain number is a budget in RAM.
 */
export function memoryShortfall(estimate: MemoryEstimate & { processBytes?: number }, budget: MemoryBudget | number, config: TrainConfig, fit?: FitAlternatives): string | null {
  const { availableBytes, where, gpu } = typeof budget === 'number' ? { availableBytes: budget, where: 'in RAM', gpu: false } : budget;
  if (estimate.totalBytes <= availableBytes) return null;
  const needs =
    `this run needs about ${gib(estimate.totalBytes)} (weights ${gib(estimate.weightBytes)}, gradients ${gib(estimate.gradientBytes)}, ` +
    `optimizer state ${gib(estimate.optimizerBytes)}, activations ${gib(estimate.activationBytes)}` +
    `${estimate.deviceBytes > 0 ? `, ${deviceBytesLabel(gpu)} ${gib(estimate.deviceBytes)}` : ''}` +
    `${estimate.processBytes ? `, ${PROCESS_BYTES_LABEL} ${gib(estimate.processBytes)}` : ''}) but only ${gib(availableBytes)} is available ${where}.`;
  const ignoring = config.ignoreMemoryCheck === true;
  if (fit) return `${needs} ${fitAdvice(fit, gpu, config.precision, ignoring)}`;
  const advice = memoryRemedies(config).map((r) => CLI_REMEDY[r]);
  // on a GPU the CPU is one more way out (slower, but host RAM is usually larger; it computes in fp32 only)
  if (gpu) advice.push(config.precision === 'bf16' ? '--device cpu --precision fp32' : '--device cpu');
  return `${needs} Try ${advice.join(', ')}; ${ignoring ? 'starting anyway, as --ignore-memory-check asks.' : 'or pass --ignore-memory-check to start anyway.'}`;
}
