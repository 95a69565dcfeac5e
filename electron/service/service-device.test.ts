// The device in the app's service: the form's device setting (auto, cpu, one
// cuda:N per GPU), checkRun's verdict naming where the run would fit (the
// GPU's free memory, or the RAM), a GPU asked for where there is none as a
// field error, and the machine summary's engine text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiMethod, DemoPaths, HyperparameterSpec, MachineSummary, RunCheck } from '../api/contract.js';
import { resolveDevice } from '../engine/device.js';
import { loadAddon } from '../engine/load.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { deviceChoices } from './hyperparameters.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('service-device-home');

let service: StudioService;
let demo: DemoPaths;
const addon = loadAddon();
const auto = resolveDevice(addon, 'auto');
const taskTrain = () => demo.datasets.find((d) => d.name === 'task-train')!.path;

async function ok<T>(method: ApiMethod, request: unknown): Promise<T> {
  const result = await service.call(method, request);
  if (!result.ok) throw new Error(`${method} failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await ok<DemoPaths>('demoPaths', {});
});
afterAll(() => service.close());

describe('device in the service', () => {
  it('the form offers auto, cpu and one cuda:N per GPU, auto by default', async () => {
    expect(deviceChoices([])).toEqual(['auto', 'cpu']);
    const gpu = { name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 1, freeBytes: 1 };
    expect(deviceChoices([gpu, gpu])).toEqual(['auto', 'cpu', 'cuda:0', 'cuda:1']);
    const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: demo.model, method: 'lora' });
    expect(specs.find((s) => s.key === 'device')).toEqual({
      key: 'device', label: 'Device', kind: 'choice', default: 'auto', choices: deviceChoices(addon.devices()), group: 'advanced',
      help: 'Where to train: auto picks the first NVIDIA GPU when there is one',
    });
  });

  it('checkRun says where the run fits: on the GPU by name, or in RAM', async () => {
    const c = await ok<RunCheck>('checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1 } });
    expect(c.errors).toEqual([]);
    expect(c.config!.device).toBe('auto');
    expect(c.verdict.startsWith(auto.gpu ? `Fits on ${auto.gpu.name}: ` : 'Fits in RAM: ')).toBe(true);
    if (auto.gpu) expect(c.memory!.availableBytes).toBeLessThanOrEqual(auto.gpu.totalBytes);
    const cpu = await ok<RunCheck>('checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { steps: 1, device: 'cpu' } });
    expect(cpu.verdict).toMatch(/^Fits in RAM: needs about /);
    expect(cpu.config!.device).toBe('cpu');
  });

  it('a device that is not a device, or a GPU that is not there, is a field error on hyper.device', async () => {
    const bad = await ok<RunCheck>('checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { device: 'tpu' } });
    expect(bad.ok).toBe(false);
    expect(bad.errors).toEqual([{ field: 'hyper.device', message: expect.stringMatching(/^hyper\.device: unknown device 'tpu'; use auto/) }]);
    const missing = await ok<RunCheck>('checkRun', { model: demo.model, data: taskTrain(), method: 'lora', hyper: { device: `cuda:${addon.devices().length}` } });
    expect(missing.ok).toBe(false);
    expect(missing.errors.map((e) => e.field)).toEqual(['hyper.device']);
    expect(missing.errors[0].message).toMatch(/^device cuda:\d+: /);
    expect(missing.errors[0].message).not.toContain('--device');
  });

  it('the machine summary says where runs go', async () => {
    const m = await ok<MachineSummary>('machine', {});
    expect(m.gpus).toEqual(addon.devices());
    expect(m.engine).toContain(auto.gpu ? `trains on ${auto.reason}` : auto.reason.replace(/^CPU: /, ''));
  });
});
