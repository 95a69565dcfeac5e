// The device choice: the pure decision on literal device lists (every GPU
// branch, testable without a GPU), and the wrapper on the real addon (a
// CPU-only build here: auto -> cpu, cuda -> the actionable error, which the
// engine itself agrees with).
import { describe, expect, it } from 'vitest';
import { loadAddon } from './load.js';
import { chooseDevice, type GpuAbsence, gpuLabel, hasCudaBackend, isDeviceRequest, parseDeviceRequest, resolveDevice, whyUnusable } from './device.js';
import type { DeviceInfo, ModelSpec } from './native.js';
import { memoryBudget } from '../training/memory-check.js';

const GiB = 2 ** 30;
const CUDA: GpuAbsence = { haveCudaBuild: true };
const NO_CUDA: GpuAbsence = { haveCudaBuild: false };
const h200: DeviceInfo = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * GiB, freeBytes: 139 * GiB, error: '' };
const rtx: DeviceInfo = { index: 1, name: 'NVIDIA GeForce RTX 4090', computeCapability: '8.9', totalBytes: 24 * GiB, freeBytes: 22 * GiB, error: '' };

describe('chooseDevice', () => {
  it('auto takes the first GPU listed and says which and how much is free', () => {
    const r = chooseDevice([h200, rtx], 'auto', CUDA);
    expect(r.device).toBe('cuda:0');
    expect(r.gpu).toBe(h200);
    expect(r.reason).toBe('NVIDIA H200 (cuda:0, 139.0 of 140.0 GiB free): the first NVIDIA GPU found; 1 more with --device cuda:1');
  });

  it('auto falls back to the CPU and says why', () => {
    expect(chooseDevice([], 'auto', NO_CUDA)).toEqual({ device: 'cpu', gpu: null, reason: 'CPU: no NVIDIA GPU found (this build has no CUDA backend)' });
    expect(chooseDevice([], 'auto', CUDA).reason).toMatch(/^CPU: no NVIDIA GPU found \(the CUDA backend is built but found no usable NVIDIA GPU/);
  });

  it('cpu is the CPU even with GPUs present', () => {
    expect(chooseDevice([h200], 'cpu', CUDA)).toMatchObject({ device: 'cpu', gpu: null });
  });

  it('cuda and cuda:N pick that GPU', () => {
    expect(chooseDevice([h200, rtx], 'cuda', CUDA)).toMatchObject({ device: 'cuda:0', gpu: h200 });
    expect(chooseDevice([h200, rtx], 'cuda:1', CUDA)).toMatchObject({ device: 'cuda:1', gpu: rtx, reason: 'NVIDIA GeForce RTX 4090 (cuda:1): device cuda:1 was asked for' });
  });

  it('a GPU that is not there is an error that says what to do', () => {
    expect(() => chooseDevice([], 'cuda', NO_CUDA)).toThrow(
      '--device cuda: no NVIDIA GPU can be used: this build has no CUDA backend. To train anyway, use --device cpu, or rebuild the engine with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) and install the NVIDIA driver');
    expect(() => chooseDevice([], 'cuda:0', CUDA)).toThrow(/the CUDA backend is built but found no usable NVIDIA GPU.*install or update the NVIDIA driver.*--device cpu/);
    expect(() => chooseDevice([h200], 'cuda:2', CUDA)).toThrow('--device cuda:2: there is no GPU 2; this machine has 1 (cuda:0 NVIDIA H200). Use one of those, or --device auto');
    expect(() => chooseDevice([h200], 'cuda:1', CUDA)).toThrow('--device cuda:1: there is no GPU 1; ');
  });

  it('the advice names what the command does (eval, generate, inspect are not training)', () => {
    expect(() => chooseDevice([], 'cuda', NO_CUDA, 'evaluate')).toThrow(/no CUDA backend\. To evaluate anyway, use --device cpu, or rebuild/);
    expect(() => chooseDevice([], 'cuda:0', CUDA, 'generate')).toThrow(/found no usable NVIDIA GPU.*\. To generate anyway, install or update the NVIDIA driver/);
    expect(() => chooseDevice([], 'cuda', NO_CUDA, 'estimate')).toThrow(/\. To estimate anyway, use --device cpu/);
  });

  it('the CUDA runtime\'s own reason for seeing no GPU (a driver too old for it) is passed on, with the way round it', () => {
    // the engine's wording (cuda_backend.cu, checked in test_cuda_runtime_problems on the simulator)
    const oldDriver: GpuAbsence = {
      haveCudaBuild: true,
      runtimeProblem: 'the NVIDIA driver supports CUDA 12.4, older than the CUDA 13.0 runtime this engine is built with (cudaErrorInsufficientDriver): ' +
        'update the NVIDIA driver to one that supports CUDA 13.0 or later (nvidia-smi shows the CUDA version a driver supports)',
    };
    expect(() => chooseDevice([], 'cuda', oldDriver)).toThrow(
      '--device cuda: no NVIDIA GPU can be used: the CUDA backend is built but the CUDA runtime can use no GPU: the NVIDIA driver supports CUDA 12.4, ' +
      'older than the CUDA 13.0 runtime this engine is built with (cudaErrorInsufficientDriver): update the NVIDIA driver to one that supports CUDA 13.0 ' +
      'or later (nvidia-smi shows the CUDA version a driver supports). To train anyway, use --device cpu');
    expect(chooseDevice([], 'auto', oldDriver).reason).toBe(`CPU: no NVIDIA GPU found (the CUDA backend is built but the CUDA runtime can use no GPU: ${oldDriver.runtimeProblem})`);
  });
});

describe('GPUs the CUDA backend does not run on (compute capability below 7.5)', () => {
  const p100: DeviceInfo = { index: 0, name: 'Tesla P100', computeCapability: '6.0', totalBytes: 16 * GiB, freeBytes: 15 * GiB, error: '' };
  const v100: DeviceInfo = { index: 0, name: 'Tesla V100', computeCapability: '7.0', totalBytes: 32 * GiB, freeBytes: 31 * GiB, error: '' };
  const t4: DeviceInfo = { index: 0, name: 'Tesla T4', computeCapability: '7.5', totalBytes: 16 * GiB, freeBytes: 15 * GiB, error: '' };

  it('auto passes them over, says so, and falls back to the CPU when none is left', () => {
    const r = chooseDevice([v100, rtx], 'auto', CUDA);
    expect(r).toMatchObject({ device: 'cuda:1', gpu: rtx });
    expect(r.reason).toBe('NVIDIA GeForce RTX 4090 (cuda:1, 22.0 of 24.0 GiB free): the first NVIDIA GPU found; passed over: Tesla V100 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later');
    expect(chooseDevice([t4], 'auto', CUDA)).toMatchObject({ device: 'cuda:0', gpu: t4 });
    expect(chooseDevice([p100, { ...v100, index: 1 }], 'auto', CUDA)).toEqual({
      device: 'cpu', gpu: null,
      reason: 'CPU: Tesla P100 (cuda:0) has compute capability 6.0; the CUDA backend needs 7.5 (Turing) or later; Tesla V100 (cuda:1) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later',
    });
  });

  it('asked for by name, one is refused before anything runs, pointing to what works', () => {
    expect(() => chooseDevice([v100, rtx], 'cuda:0', CUDA)).toThrow('--device cuda:0: Tesla V100 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later. Use --device cpu, or --device auto (a newer GPU of this machine)');
    expect(() => chooseDevice([p100], 'cuda', CUDA)).toThrow('--device cuda: Tesla P100 (cuda:0) has compute capability 6.0; the CUDA backend needs 7.5 (Turing) or later. Use --device cpu');
  });
});

describe('a GPU that cannot report itself (devices() keeps it at its own index, with its error)', () => {
  const why = 'CUDA error: unknown error (cudaGetDeviceProperties)';
  const broken: DeviceInfo = { index: 1, name: '', computeCapability: '0.0', totalBytes: 0, freeBytes: 0, error: why };
  const third: DeviceInfo = { ...rtx, index: 2 };
  const three = [h200, broken, third];

  it('auto takes the first usable GPU by its own index, and says which it passed over and why', () => {
    expect(chooseDevice(three, 'auto', CUDA)).toEqual({
      device: 'cuda:0', gpu: h200,
      reason: `NVIDIA H200 (cuda:0, 139.0 of 140.0 GiB free): the first NVIDIA GPU found; 1 more with --device cuda:2; passed over: GPU 1 (cuda:1) cannot be used: ${why}`,
    });
    // GPU 0 failing and GPU 1 too old: auto is cuda:2, with cuda:2's memory
    const v100: DeviceInfo = { index: 1, name: 'Tesla V100', computeCapability: '7.0', totalBytes: 32 * GiB, freeBytes: 31 * GiB, error: '' };
    const r = chooseDevice([{ ...broken, index: 0 }, v100, third], 'auto', CUDA);
    expect(r).toEqual({
      device: 'cuda:2', gpu: third,
      reason: `NVIDIA GeForce RTX 4090 (cuda:2, 22.0 of 24.0 GiB free): the first NVIDIA GPU found; passed over: GPU 0 (cuda:0) cannot be used: ${why}; Tesla V100 (cuda:1) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later`,
    });
    expect(memoryBudget(r)).toEqual({ availableBytes: 22 * GiB, where: 'on NVIDIA GeForce RTX 4090', gpu: true });
    // none usable: the CPU, saying why for each
    expect(chooseDevice([{ ...broken, index: 0 }, { ...broken, index: 1, error: 'cudaErrorDevicesUnavailable' }], 'auto', CUDA)).toEqual({
      device: 'cpu', gpu: null, reason: `CPU: GPU 0 (cuda:0) cannot be used: ${why}; GPU 1 (cuda:1) cannot be used: cudaErrorDevicesUnavailable`,
    });
  });

  it('cuda:1 (the failing GPU) is refused with its message and what to do', () => {
    expect(() => chooseDevice(three, 'cuda:1', CUDA)).toThrow(
      `--device cuda:1: GPU 1 (cuda:1) cannot be used: ${why}. Check the GPU with nvidia-smi (a driver reload or a reboot may bring it back); meanwhile use --device cuda:0 or cuda:2 (or auto), or --device cpu`);
    // the only GPU, asked for as 'cuda': only the CPU is left to suggest
    expect(() => chooseDevice([{ ...broken, index: 0 }], 'cuda', CUDA)).toThrow(
      `--device cuda: GPU 0 (cuda:0) cannot be used: ${why}. Check the GPU with nvidia-smi (a driver reload or a reboot may bring it back); meanwhile use --device cpu`);
  });

  it('cuda:2 is the third card (with its own memory for the fit check), not the entry after the failing one', () => {
    const r = chooseDevice(three, 'cuda:2', CUDA);
    expect(r).toEqual({ device: 'cuda:2', gpu: third, reason: 'NVIDIA GeForce RTX 4090 (cuda:2): device cuda:2 was asked for' });
    expect(memoryBudget(r).availableBytes).toBe(22 * GiB);
    expect(chooseDevice(three, 'cuda:0', CUDA)).toMatchObject({ device: 'cuda:0', gpu: h200 });
    expect(() => chooseDevice(three, 'cuda:3', CUDA)).toThrow(
      '--device cuda:3: there is no GPU 3; this machine has 3 (cuda:0 NVIDIA H200, cuda:1 GPU 1 (cannot be used), cuda:2 NVIDIA GeForce RTX 4090). Use one of those, or --device auto');
  });

  it('names cuda:N by the entry\'s index, never by its position in the list', () => {
    // a list missing GPU 1 (as the addon listed them before it kept failing GPUs)
    expect(chooseDevice([h200, third], 'cuda:2', CUDA)).toMatchObject({ device: 'cuda:2', gpu: third });
    expect(() => chooseDevice([h200, third], 'cuda:1', CUDA)).toThrow('--device cuda:1: there is no GPU 1; this machine has 2 (cuda:0 NVIDIA H200, cuda:2 NVIDIA GeForce RTX 4090)');
    expect(chooseDevice([third], 'auto', CUDA)).toMatchObject({ device: 'cuda:2', gpu: third });
  });

  it('says why a GPU is unusable, or null when it is not', () => {
    expect(whyUnusable(h200)).toBeNull();
    expect(whyUnusable(broken)).toBe(`GPU 1 (cuda:1) cannot be used: ${why}`);
    expect(whyUnusable({ ...h200, index: 3, error: 'busy' })).toBe('NVIDIA H200 (cuda:3) cannot be used: busy');
    expect(whyUnusable({ ...h200, computeCapability: '7.0' })).toBe('NVIDIA H200 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later');
    expect(gpuLabel(third)).toBe('NVIDIA GeForce RTX 4090 (cuda:2)');
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
    const first = gpus.find((g) => whyUnusable(g) === null);
    expect(r.device).toBe(first ? `cuda:${first.index}` : 'cpu');
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
    const problem = addon.gpuRuntimeProblem();
    // a CUDA build on a machine without a GPU: the runtime's reason (here: no driver) reaches the message
    if (hasCudaBackend(addon)) expect(problem).toMatch(/NVIDIA driver/);
    else expect(problem).toBe('');
    const message = hasCudaBackend(addon) ? `the CUDA runtime can use no GPU: ${problem}. To train anyway, use --device cpu` : /this build has no CUDA backend\. To train anyway, use --device cpu, or rebuild the engine with PEFT_STUDIO_CUDA=1/;
    expect(() => resolveDevice(addon, 'cuda')).toThrow(message);
    expect(resolveDevice(addon, 'auto').reason).toMatch(/^CPU: no NVIDIA GPU found/);
  });
});
