// The pre-flight check of a run: does what the engine will allocate (the same
// formula that sizes its buffers) fit in the memory this machine has free?
// Refusing before the weights are mapped beats an out-of-memory kill halfway
// through the first step.
import type { LoraSettings, TrainConfig } from './config.js';
import type { MemoryEstimate, ModelSpec, NativeAddon } from '../engine/native.js';

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

export function estimateRun(addon: NativeAddon, spec: ModelSpec, config: TrainConfig, lora: LoraSettings | null): MemoryEstimate {
  return addon.estimateMemory(spec, {
    method: config.method,
    batchSize: config.batchSize,
    // batches are padded to their longest row, at most --seq-len
    seqLen: config.seqLen,
    lora: lora ? { rank: lora.rank, targets: lora.targets, layers: lora.layers, dropout: lora.dropout } : undefined,
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
  return (
    `this run needs about ${gib(estimate.totalBytes)} (weights ${gib(estimate.weightBytes)}, gradients ${gib(estimate.gradientBytes)}, ` +
    `optimizer state ${gib(estimate.optimizerBytes)}, activations ${gib(estimate.activationBytes)}) but only ${gib(availableBytes)} is available. ` +
    `Try ${advice.join(', ')}; or pass --ignore-memory-check to start anyway.`
  );
}
