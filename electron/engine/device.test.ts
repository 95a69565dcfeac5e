// The device choice: the pure decision on literal device lists (every GPU
// branch, testable without a GPU), and the wrapper on the real addon (a
// CPU-only build here: auto -> cpu, cuda -> the actionable error, which the
// engine itself agrees with).
import { describe, expect, it } from 'vitest';
import { loadAddon } from './load.js';
import { chooseDevice, hasCudaBackend, isDeviceRequest, parseDeviceRequest, resolveDevice } from './device.js';
import type { DeviceInfo, ModelSpec } from './native.js';

const GiB = 2 ** 30;
const h200: DeviceInfo = { name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * GiB, freeBytes: 139 * GiB };
const rtx: DeviceInfo = { name: 'NVIDIA GeForce RTX 4090', computeCapability: '8.9', totalBytes: 24 * GiB, freeBytes: 22 * GiB };

describe('chooseDevice', () => {
  it('auto takes the first GPU listed and says which and how much is free', () => {
    const r = chooseDevice([h200, rtx], 'auto', true);
    expect(r.device).toBe('cuda:0');
    expect(r.gpu).toBe(h200);
    expect(r.reason).toBe('NVIDIA H200 (cuda:0, 139.0 of 140.0 GiB free): the first NVIDIA GPU found; 1 more with --device cuda:1 .. cuda:1');
  });

  it('auto falls back to the CPU and says why', () => {
    expect(chooseDevice([], 'auto', false)).toEqual({ device: 'cpu', gpu: null, reason: 'CPU: no NVIDIA GPU found (this build has no CUDA backend)' });
    expect(chooseDevice([], 'auto', true).reason).toMatch(/^CPU: no NVIDIA GPU found \(the CUDA backend is built but found no usable NVIDIA GPU/);
  });

  it('cpu is the CPU even with GPUs present', () => {
    expect(chooseDevice([h200], 'cpu', true)).toMatchObject({ device: 'cpu', gpu: null });
  });

  it('cuda and cuda:N pick that GPU', () => {
    expect(chooseDevice([h200, rtx], 'cuda', true)).toMatchObject({ device: 'cuda:0', gpu: h200 });
    expect(chooseDevice([h200, rtx], 'cuda:1', true)).toMatchObject({ device: 'cuda:1', gpu: rtx, reason: 'NVIDIA GeForce RTX 4090 (cuda:1): device cuda:1 was asked for' });
  });

  it('a GPU that is not there is an error that says what to do', () => {
    expect(() => chooseDevice([], 'cuda', false)).toThrow(
      '--device cuda: no NVIDIA GPU can be used: this build has no CUDA backend. To train anyway, use --device cpu, or rebuild the engine with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) and install the NVIDIA driver');
    expect(() => chooseDevice([], 'cuda:0', true)).toThrow(/the CUDA backend is built but found no usable NVIDIA GPU.*install or update the NVIDIA driver.*--device cpu/);
    expect(() => chooseDevice([h200], 'cuda:2', true)).toThrow('--device cuda:2: there is no GPU 2; this machine has 1 (cuda:0 NVIDIA H200). Use one of those, or --device auto');
  });
});

describe('GPUs the CUDA backend does not run on (compute capability below 7.5)', () => {
  const p100: DeviceInfo = { name: 'Tesla P100', computeCapability: '6.0', totalBytes: 16 * GiB, freeBytes: 15 * GiB };
  const v100: DeviceInfo = { name: 'Tesla V100', computeCapability: '7.0', totalBytes: 32 * GiB, freeBytes: 31 * GiB };
  const t4: DeviceInfo = { name: 'Tesla T4', computeCapability: '7.5', totalBytes: 16 * GiB, freeBytes: 15 * GiB };

  it('auto passes them over, says so, and falls back to the CPU when none is left', () => {
    const r = chooseDevice([v100, rtx], 'auto', true);
    expect(r).toMatchObject({ device: 'cuda:1', gpu: rtx });
    expect(r.reason).toBe('NVIDIA GeForce RTX 4090 (cuda:1, 22.0 of 24.0 GiB free): the first NVIDIA GPU found; passed over: Tesla V100 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later');
    expect(chooseDevice([t4], 'auto', true)).toMatchObject({ device: 'cuda:0', gpu: t4 });
    expect(chooseDevice([p100, v100], 'auto', true)).toEqual({
      device: 'cpu', gpu: null,
      reason: 'CPU: Tesla P100 (cuda:0) has compute capability 6.0; the CUDA backend needs 7.5 (Turing) or later; Tesla V100 (cuda:1) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later',
    });
  });

  it('asked for by name, one is refused before anything runs, pointing to what works', () => {
    expect(() => chooseDevice([v100, rtx], 'cuda:0', true)).toThrow('--device cuda:0: Tesla V100 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later. Use --device cpu, or --device auto (a newer GPU of this machine)');
    expect(() => chooseDevice([p100], 'cuda', true)).toThrow('--device cuda: Tesla P100 (cuda:0) has compute capability 6.0; the CUDA backend needs 7.5 (Turing) or later. Use --device cpu');
  });
});

describe('device requests', () => {
  it('accepts auto, cpu, cuda and cuda:N only', () => {
    for (const ok of ['auto', 'cpu', 'cuda', 'cuda:0', 'cuda:12']) expect(isDeviceRequest(ok)).toBe(true);
    for (const bad of ['', 'gpu', 'CUDA', 'cuda:', 'cuda:-1', 'cuda:01', 'cuda:1x', 'tpu', 3]) expect(isDeviceRequest(bad)).toBe(false);
    expect(() => parseDeviceRequest('gpu')).toThrow("--device: unknown device 'gpu'; use auto (the first NVIDIA GPU when there is one, else the CPU), cpu, cuda (the first GPU) or cuda:N (the N-th, from 0)");
  });
});

describe('resolveDevice on the real addon', () => {
  const addon = loadAddon();
  const gpus = addon.devices();
  const spec: ModelSpec = {
    architecture: 'LlamaForCausalLM', vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numLayers: 1,
    numHeads: 2, numKvHeads: 1, headDim: 4, rmsNormEps: 1e-5, ropeTheta: 10000,
    ropeScaling: { type: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 64 },
    maxPositionEmbeddings: 64, tieWordEmbeddings: true, attentionBias: false, qkNorm: false,
  };

  it('auto is the first GPU when the addon lists one, else the CPU, and the engine runs there', () => {
    const r = resolveDevice(addon, 'auto');
    expect(r.device).toBe(gpus.length > 0 ? 'cuda:0' : 'cpu');
    const engine = new addon.Engine(spec, { device: r.device, threads: 1, gradientCheckpointing: false, seed: 0 });
    expect(engine.describe().startsWith(r.device === 'cpu' ? 'cpu' : 'cuda')).toBe(true);
    engine.dispose();
  });

  it('knows whether the build has the CUDA backend the way the engine does', () => {
    let engineSays: boolean;
    try {
      new addon.Engine(spec, { device: 'cuda', threads: 1, gradientCheckpointing: false, seed: 0 }).dispose();
      engineSays = true;
    } catch (e) {
      engineSays = !/this build has no CUDA backend/.test((e as Error).message);
    }
    expect(hasCudaBackend(addon)).toBe(engineSays);
  });

  it('cuda without a GPU is refused before an engine is made, naming what to do', () => {
    if (gpus.length > 0) return; // a GPU machine: nothing to refuse
    const message = hasCudaBackend(addon) ? /install or update the NVIDIA driver/ : /this build has no CUDA backend\. To train anyway, use --device cpu, or rebuild the engine with PEFT_STUDIO_CUDA=1/;
    expect(() => resolveDevice(addon, 'cuda')).toThrow(message);
    expect(resolveDevice(addon, 'auto').reason).toMatch(/^CPU: no NVIDIA GPU found/);
  });
});
