// The pre-flight check of a run: does what the engine will allocate (the same
// formula that sizes its buffers) fit in the memory this machine has free?
// Refusing before the weights are mapped beats an out-of-memory kill halfway
// through the first step.
import type { LoraSettings, TrainConfig } from './config.js';
import type { MemoryEstimate, NativeAddon } from '../engine/native.js';
import { embeddingDType, type ModelFolder } from '../models/folder.js';
import { effectiveQuantization } from '../session.js';
import { encoderHiddenSizeOf } from '../adapters/prompt-config.js';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

export function estimateRun(addon: NativeAddon, folder: ModelFolder, config: TrainConfig, lora: LoraSettings | null): MemoryEstimate {
  return addon.estimateMemory(folder.spec, {
    method: config.method === 'full' ? 'full' : config.method === 'prompt' || config.method === 'prefix' ? config.method : 'lora',
    // a bitsandbytes 4-bit folder is NF4 whatever the method says
    quantization: effectiveQuantization(folder, config.quantization),
    weightDType: embeddingDType(folder),
    batchSize: config.batchSize,
    // batches are padded to their longest row, at most --seq-len
    seqLen: config.seqLen,
    lora: lora && (config.method === 'lora' || config.method === 'qlora') ? { rank: lora.rank, targets: lora.targets, layers: lora.layers, dropout: lora.dropout } : undefined,
    prompt: config.method === 'prompt' && config.prompt ? { numVirtualTokens: config.prompt.numVirtualTokens } : undefined,
    prefix: config.method === 'prefix' && config.prefix
      ? { numVirtualTokens: config.prefix.numVirtualTokens, encoderHiddenSize: config.prefix.projection ? encoderHiddenSizeOf(config.prefix, folder.spec) : null }
      : undefined,
    gradientCheckpointing: config.gradientCheckpointing,
    optimizer: config.optimizer,
  });
}

/** null when the run fits, else a message that says by how much and what to change. */
export function memoryShortfall(estimate: MemoryEstimate, availableBytes: number, config: TrainConfig): string | null {
  if (estimate.totalBytes <= availableBytes) return null;
  const advice: string[] = [];
  if (config.batchSize > 1) advice.push('a smaller --batch-size (with --grad-accum to keep the effective batch)');
  advice.push('a shorter --seq-len');
  if (!config.gradientCheckpointing) advice.push('--gradient-checkpointing');
  if (config.method === 'full') advice.push('--method lora');
  if (config.method !== 'qlora' && config.quantization === null) advice.push('--method qlora (a 4-bit base)');
  return (
    `this run needs about ${gib(estimate.totalBytes)} (weights ${gib(estimate.weightBytes)}, gradients ${gib(estimate.gradientBytes)}, ` +
    `optimizer state ${gib(estimate.optimizerBytes)}, activations ${gib(estimate.activationBytes)}) but only ${gib(availableBytes)} is available. ` +
    `Try ${advice.join(', ')}; or pass --ignore-memory-check to start anyway.`
  );
}
