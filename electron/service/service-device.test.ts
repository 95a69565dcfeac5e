// The device in the app's service: the form's device setting (auto, cpu, one
// cuda:N per usable GPU, the help naming any other and why), checkRun's verdict naming where the run would fit (the
// GPU's free memory, or the RAM), a GPU asked for where there is none as a
// field error, and the machine summary's engine text.
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, MachineSummary, RunCheck } from '../api/contract.js';
import { resolveDevice } from '../engine/device.js';
import { choosePrecision } from '../engine/precision.js';
import { loadAddon } from '../engine/load.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { deviceChoices, deviceHelp } from './hyperparameters.js';

const studio = serviceForTests('service-device-home');
const { ok, taskTrain } = studio;
const addon = loadAddon();
const auto = resolveDevice(addon, 'auto');

describe('device in the service', () => {
  it('the form offers auto, cpu and one cuda:N per GPU, auto by default', async () => {
    expect(deviceChoices([])).toEqual(['auto', 'cpu']);
    const gpu = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 1, freeBytes: 1, error: '' };
    expect(deviceChoices([gpu, { ...gpu, index: 1 }])).toEqual(['auto', 'cpu', 'cuda:0', 'cuda:1']);
    expect(deviceHelp([gpu])).toBe('Where to train: auto picks the first NVIDIA GPU when there is one');
    // a GPU that cannot report itself (or is too old) is not offered, and the help says why; the others keep their own index
    const broken = { index: 1, name: '', computeCapability: '0.0', totalBytes: 0, freeBytes: 0, error: 'CUDA error: unknown error' };
    const gpus = [gpu, broken, { ...gpu, index: 2 }, { ...gpu, index: 3, name: 'Tesla V100', computeCapability: '7.0' }];
    expect(deviceChoices(gpus)).toEqual(['auto', 'cpu', 'cuda:0', 'cuda:2']);
    expect(deviceHelp(gpus)).toBe('Where to train: auto picks the first NVIDIA GPU when there is one. Not offered: GPU 1 (cuda:1) cannot be used: CUDA error: unknown error. '
      + 'Not offered: Tesla V100 (cuda:3) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later');
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method: 'lora' });
    expect(specs.find((s) => s.key === 'device')).toEqual({
      key: 'device', label: 'Device', kind: 'choice', default: 'auto', choices: deviceChoices(addon.devices()), group: 'advanced',
      help: deviceHelp(addon.devices()),
    });
  });

  it('checkRun says where the run fits: on the GPU by name, or in RAM', async () => {
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1 } });
    expect(c.errors).toEqual([]);
    expect(c.config!.device).toBe('auto');
    expect(c.verdict.startsWith(auto.gpu ? `Fits on ${auto.gpu.name}: ` : 'Fits in RAM: ')).toBe(true);
    if (auto.gpu) expect(c.memory!.availableBytes).toBeLessThanOrEqual(auto.gpu.totalBytes);
    const cpu = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1, device: 'cpu' } });
    expect(cpu.verdict).toMatch(/^Fits in RAM: needs about /);
    expect(cpu.config!.device).toBe('cpu');
  });

  it('a device that is not a device, or a GPU that is not there, is a field error on hyper.device', async () => {
    const bad = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { device: 'tpu' } });
    expect(bad.ok).toBe(false);
    expect(bad.errors).toEqual([{ field: 'hyper.device', message: expect.stringMatching(/^Device: unknown device 'tpu'; use auto/) }]);
    const missing = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { device: `cuda:${addon.devices().length}` } });
    expect(missing.ok).toBe(false);
    expect(missing.errors.map((e) => e.field)).toEqual(['hyper.device']);
    expect(missing.errors[0].message).toMatch(/^device cuda:\d+: /);
    expect(missing.errors[0].message).not.toContain('--device');
  });

  it('the form offers precision auto, fp32, bf16 (auto by default) with the trade-off in one line', async () => {
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method: 'lora' });
    expect(specs.find((s) => s.key === 'precision')).toEqual({
      key: 'precision', label: 'Precision', kind: 'choice', default: 'auto', choices: ['auto', 'fp32', 'bf16'], group: 'advanced',
      help: 'auto: bf16 on a GPU with bf16 tensor cores, else fp32. bf16: tensor cores, about half the memory traffic, activations kept in 16 bits; fp32: exact',
    });
  });

  it('checkRun says which precision the run computes in, and counts a GPU\'s own memory', async () => {
    const c = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1 } });
    expect(c.errors).toEqual([]);
    expect(c.config!.precision).toBe('auto');
    expect(c.precision).toEqual(choosePrecision('auto', auto.gpu));
    // the CPU counts its threads' scratch; a GPU at least its context allowance (512 MiB) and cuBLASLt's workspace (32 MiB)
    if (auto.gpu) expect(c.memory!.backendBytes).toBeGreaterThanOrEqual(544 * 2 ** 20);
    else expect(c.memory!.backendBytes).toBeGreaterThan(0);
    expect(c.memory!.backendLabel).toBe(auto.gpu ? 'CUDA runtime and scratch' : "CPU threads' scratch");
    // a GPU run's RAM beside it (the training process, the weights' load) is checked against the RAM; on the CPU the RAM is the budget itself
    if (auto.gpu) expect(c.memory!.hostRam).toEqual({ needBytes: expect.any(Number), availableBytes: expect.any(Number), fits: true });
    else expect(c.memory!.hostRam).toBeNull();
    expect(c.memory!.totalBytes).toBe(c.memory!.weights + c.memory!.gradients + c.memory!.optimizerState + c.memory!.activations + c.memory!.backendBytes + c.memory!.processBytes);
    const fp32 = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1, device: 'cpu', precision: 'fp32' } });
    expect(fp32.errors).toEqual([]);
    expect(fp32.config!.precision).toBe('fp32');
    expect(fp32.precision).toEqual({ precision: 'fp32', reason: 'fp32: asked for (exact)' });
  });

  it('a precision that is not one, or bf16 on the CPU, is a field error on hyper.precision', async () => {
    const bad = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { precision: 'fp16' } });
    expect(bad.ok).toBe(false);
    expect(bad.errors).toEqual([{ field: 'hyper.precision', message: expect.stringMatching(/^Precision: unknown precision 'fp16'; use auto \(bf16 on an NVIDIA GPU/) }]);
    const notString = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { precision: 16 } });
    expect(notString.errors.map((e) => e.field)).toEqual(['hyper.precision']);
    const cpu = await ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method: 'lora', hyper: { device: 'cpu', precision: 'bf16' } });
    expect(cpu.ok).toBe(false);
    expect(cpu.precision).toBeNull();
    // the engine's advice in the form's words (service/app-wording.ts)
    expect(cpu.errors).toEqual([{ field: 'hyper.precision', message: expect.stringMatching(/^precision bf16: the CPU computes in fp32 only; .* Choose fp32 or auto as the Precision on the Hyperparameters page/) }]);
    expect(cpu.errors[0].message).not.toContain('--precision');
  });

  it('the machine summary says where runs go', async () => {
    const m = await ok<MachineSummary>('machine', {});
    expect(m.gpus).toEqual(addon.devices());
    expect(m.engine).toContain(auto.gpu ? `trains on ${auto.reason}` : auto.reason.replace(/^CPU: /, ''));
  });
});
