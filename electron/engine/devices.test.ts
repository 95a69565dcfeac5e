// The addon's device choice (EngineOptions.device) and query (devices()).
// This build has no CUDA backend unless it was configured with
// PEFT_STUDIO_CUDA=1; either way the answers must be consistent: no devices
// means 'cuda' is refused with a message saying what to do.
import { describe, expect, it } from 'vitest';
import { loadAddon } from './load.js';
import type { EngineOptions, ModelSpec } from './native.js';

const addon = loadAddon();

const spec: ModelSpec = {
  architecture: 'LlamaForCausalLM', vocabSize: 32, hiddenSize: 8, intermediateSize: 16, numLayers: 1,
  numHeads: 2, numKvHeads: 1, headDim: 4, rmsNormEps: 1e-5, ropeTheta: 10000,
  ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 8192 },
  maxPositionEmbeddings: 64, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
};
const base: EngineOptions = { threads: 1, gradientCheckpointing: false, seed: 0 };

describe('devices', () => {
  it('lists each GPU at its own index with its name, compute capability and memory, or why it cannot be used (none in a CPU-only build)', () => {
    const devices = addon.devices();
    expect(Array.isArray(devices)).toBe(true);
    if (!addon.cudaBackend) expect(devices).toEqual([]);
    for (const [i, d] of devices.entries()) {
      expect(d.index).toBe(i);
      expect(typeof d.error).toBe('string');
      if (d.error !== '') continue;  // a GPU that could not report itself: only its index and why
      expect(d.name.length).toBeGreaterThan(0);
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
      expect(d.totalBytes).toBeGreaterThan(0);
      expect(d.freeBytes).toBeGreaterThan(0);
      expect(d.freeBytes).toBeLessThanOrEqual(d.totalBytes);
    }
  });

  it('runs on the CPU by default and with device cpu', () => {
    for (const options of [base, { ...base, device: 'cpu' as const }]) {
      const engine = new addon.Engine(spec, options);
      expect(engine.describe()).toMatch(/^cpu/);
      engine.dispose();
    }
  });

  it('refuses cuda with an actionable message where there is no GPU', () => {
    if (addon.devices().length > 0) return;  // a CUDA build on a GPU machine: nothing to refuse
    expect(() => new addon.Engine(spec, { ...base, device: 'cuda' })).toThrow(
      /this build has no CUDA backend: rebuild with PEFT_STUDIO_CUDA=1 \(needs the CUDA toolkit\) or use device cpu|no usable NVIDIA GPU/);
  });

  it('computes in fp32 on the CPU with precision fp32 or auto, and refuses bf16 there with what to use', () => {
    for (const precision of ['fp32', 'auto'] as const) {
      const engine = new addon.Engine(spec, { ...base, device: 'cpu', precision });
      expect(engine.describe()).toMatch(/^cpu/);
      engine.dispose();
    }
    expect(() => new addon.Engine(spec, { ...base, device: 'cpu', precision: 'bf16' })).toThrow(
      /precision bf16 needs a CUDA GPU with bf16 tensor cores; the CPU backend computes in fp32: use precision fp32 or auto/);
    // @ts-expect-error a precision the type does not have: the addon's own refusal is tested
    expect(() => new addon.Engine(spec, { ...base, precision: 'fp16' })).toThrow(/unknown precision "fp16": use fp32, bf16 or auto/);
    // @ts-expect-error not a string at all: the addon names the field
    expect(() => new addon.Engine(spec, { ...base, precision: 16 })).toThrow(/field 'precision'/);
  });

  it('names a bad device value', () => {
    // @ts-expect-error a device the type does not have: the addon's own refusal is tested
    expect(() => new addon.Engine(spec, { ...base, device: 'tpu' })).toThrow(/unknown device "tpu"/);
    // @ts-expect-error not a string at all: the addon names the field
    expect(() => new addon.Engine(spec, { ...base, device: 7 })).toThrow(/field 'device'/);
  });
});
