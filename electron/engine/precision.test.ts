// The precision decision on plain data: what 'auto', 'fp32' and 'bf16' become
// on the CPU, on a GPU with bf16 tensor cores (compute capability 8.0 and
// later: A100 8.0, RTX 4090 8.9, H200 9.0, RTX 5090 12.0) and on one without
// (T4 7.5, V100 7.0), with the error naming the flag or field and the way out.
import { describe, expect, it } from 'vitest';
import { choosePrecision, hasBf16TensorCores, isPrecision, PRECISION_TRADE_OFF, PRECISIONS } from './precision.js';

const gpu = (name: string, computeCapability: string) => ({ name, computeCapability });
const h200 = gpu('NVIDIA H200', '9.0');
const t4 = gpu('Tesla T4', '7.5');

describe('precision', () => {
  it('accepts exactly auto, fp32 and bf16', () => {
    expect(PRECISIONS).toEqual(['auto', 'fp32', 'bf16']);
    for (const p of PRECISIONS) expect(isPrecision(p)).toBe(true);
    for (const p of ['fp16', 'BF16', 'float32', '', 'auto ', null, 16]) expect(isPrecision(p)).toBe(false);
    expect(PRECISION_TRADE_OFF).toBe('bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact');
  });

  it('bf16 tensor cores start with compute capability 8.0', () => {
    expect(['7.0', '7.5'].map((cc) => hasBf16TensorCores({ computeCapability: cc }))).toEqual([false, false]);
    expect(['8.0', '8.6', '8.9', '9.0', '10.0', '12.0'].map((cc) => hasBf16TensorCores({ computeCapability: cc }))).toEqual([true, true, true, true, true, true]);
    expect(hasBf16TensorCores({ computeCapability: '' })).toBe(false);
  });

  it('auto: bf16 where the GPU has it, else fp32; fp32 always fp32', () => {
    expect(choosePrecision('auto', null)).toEqual({ precision: 'fp32', reason: 'fp32: the CPU computes in fp32' });
    expect(choosePrecision('auto', h200)).toEqual({ precision: 'bf16', reason: 'bf16: NVIDIA H200 (compute capability 9.0) has bf16 tensor cores (auto)' });
    expect(choosePrecision('auto', t4)).toEqual({ precision: 'fp32', reason: 'fp32: Tesla T4 (compute capability 7.5) has no bf16 tensor cores (auto)' });
    for (const where of [null, h200, t4]) expect(choosePrecision('fp32', where).precision).toBe('fp32');
    expect(choosePrecision('bf16', gpu('NVIDIA A100', '8.0'))).toEqual({ precision: 'bf16', reason: 'bf16: NVIDIA A100 (compute capability 8.0) has bf16 tensor cores' });
  });

  it('bf16 where there is none is refused, naming the flag (or the form field) and what to use', () => {
    expect(() => choosePrecision('bf16', null)).toThrow(
      '--precision bf16: the CPU computes in fp32 only; bf16 needs an NVIDIA GPU with bf16 tensor cores (compute capability 8.0 or later). Use --precision fp32 or auto, or a GPU that has them');
    expect(() => choosePrecision('bf16', t4)).toThrow(
      '--precision bf16: Tesla T4 (compute capability 7.5) has no bf16 tensor cores (they start with compute capability 8.0, Ampere). Use --precision fp32 or auto');
    expect(() => choosePrecision('bf16', null, 'precision')).toThrow(/^precision bf16: the CPU computes in fp32 only; .* Use precision fp32 or auto/);
  });
});
