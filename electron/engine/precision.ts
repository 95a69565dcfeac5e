// The precision of the dense products: what a user may ask for ('auto', the
// default; 'fp32'; 'bf16') and what the engine is given (always explicit, so
// run.json says how a run really computed and a resumed run computes the same).
//
// choosePrecision is the decision on plain data (the GPU the device choice
// gave, or none), so every branch is testable without a GPU. It agrees with
// the engine's own rule (native-addon/core/backend/cuda/cuda_factory.cu:
// bf16 needs tensor cores with bf16, compute capability 8.0 or later; the CPU
// backend computes in fp32 and refuses bf16).
import type { DeviceInfo, Precision } from './native.js';

/** What the engine is given: 'auto' resolved. */
export type EnginePrecision = 'fp32' | 'bf16';

export const PRECISIONS: readonly Precision[] = ['auto', 'fp32', 'bf16'];

export const PRECISION_REQUEST_HELP = 'auto (bf16 on an NVIDIA GPU with bf16 tensor cores, compute capability 8.0 or later; else fp32), fp32 or bf16';

/** Why one or the other, in one line (the app shows it beside the choice; `--precision`'s help says it too). */
export const PRECISION_TRADE_OFF = 'bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact';

export interface ResolvedPrecision {
  precision: EnginePrecision;
  /** one sentence: "bf16: NVIDIA H200 has bf16 tensor cores (compute capability 9.0)", "fp32: the CPU computes in fp32" */
  reason: string;
}

/** Whether `text` is a precision request ('auto', 'fp32', 'bf16'). */
export function isPrecision(text: unknown): text is Precision {
  return text === 'auto' || text === 'fp32' || text === 'bf16';
}

/** Whether a GPU has bf16 tensor cores: compute capability 8.0 (Ampere) or later. */
export function hasBf16TensorCores(gpu: Pick<DeviceInfo, 'computeCapability'>): boolean {
  const major = Number.parseInt(gpu.computeCapability, 10);
  return Number.isFinite(major) && major >= 8;
}

/**
 * The precision a run on `gpu` (null: the CPU) computes in. bf16 where it
 * cannot be had is an error naming `what` (the flag or field) and the remedy.
 */
export function choosePrecision(requested: Precision, gpu: Pick<DeviceInfo, 'name' | 'computeCapability'> | null, what = '--precision'): ResolvedPrecision {
  if (requested === 'fp32') return { precision: 'fp32', reason: 'fp32: asked for (exact)' };
  if (gpu === null) {
    if (requested === 'bf16') {
      throw new Error(`${what} bf16: the CPU computes in fp32 only; bf16 needs an NVIDIA GPU with bf16 tensor cores (compute capability 8.0 or later). Use ${what} fp32 or auto, or a GPU that has them`);
    }
    return { precision: 'fp32', reason: 'fp32: the CPU computes in fp32' };
  }
  const card = `${gpu.name} (compute capability ${gpu.computeCapability})`;
  if (hasBf16TensorCores(gpu)) return { precision: 'bf16', reason: `bf16: ${card} has bf16 tensor cores${requested === 'bf16' ? '' : ' (auto)'}` };
  if (requested === 'bf16') {
    throw new Error(`${what} bf16: ${card} has no bf16 tensor cores (they start with compute capability 8.0, Ampere). Use ${what} fp32 or auto`);
  }
  return { precision: 'fp32', reason: `fp32: ${card} has no bf16 tensor cores (auto)` };
}
