// The header's machine summary with the GPUs the engine lists: a usable one
// with its free memory, one that could not report itself at its own index
// as unusable with the runtime's reason (not dropped, not shown as usable);
// a container's CPU quota and memory limit named where they bind.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';

import type { MachineSummary as Machine } from '../../../electron/api/contract.js';
import MachineSummary from './MachineSummary.svelte';

let component: ReturnType<typeof mount> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

const GiB = 2 ** 30;
const machine: Machine = {
  cpuModel: 'test CPU', cpuThreads: 16, totalMemoryBytes: 64 * GiB, availableMemoryBytes: 32 * GiB,
  cpuQuota: null, memoryLimitBytes: null, gpus: [], engine: 'CPU', mode: 'browser',
};

function render(m: Machine): HTMLElement {
  const target = document.createElement('div');
  document.body.append(target);
  component = mount(MachineSummary, { target, props: { machine: m, connection: 'open' } });
  flushSync();
  return target;
}

const text = (root: HTMLElement, id: string) => root.querySelector(`[data-testid="${id}"]`)?.textContent?.replace(/\s+/g, ' ').trim();

describe('the machine summary', () => {
  it('shows every GPU at its own index, an unusable one with why', () => {
    const root = render({
      ...machine,
      gpus: [
        { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * GiB, freeBytes: 139 * GiB, error: '' },
        { index: 1, name: '', computeCapability: '0.0', totalBytes: 0, freeBytes: 0, error: 'CUDA error: unknown error (cudaGetDeviceProperties)' },
        { index: 2, name: 'NVIDIA L4', computeCapability: '8.9', totalBytes: 24 * GiB, freeBytes: 23 * GiB, error: '' },
      ],
    });
    expect(text(root, 'machine-gpu-0')).toBe('NVIDIA H200: 139.0 GiB free of 140.0 GiB');
    expect(text(root, 'machine-gpu-1')).toBe('GPU 1 (cuda:1): unusable: CUDA error: unknown error (cudaGetDeviceProperties)');
    expect(root.querySelector('[data-testid="machine-gpu-1"]')!.getAttribute('title')).toBe('CUDA error: unknown error (cudaGetDeviceProperties)');
    expect(text(root, 'machine-gpu-2')).toBe('NVIDIA L4: 23.0 GiB free of 24.0 GiB');
    expect(root.textContent).not.toContain('CPU only');
  });

  it('says CPU only without a GPU', () => {
    const root = render(machine);
    expect(root.querySelector('[data-testid^="machine-gpu-"]')).toBeNull();
    expect(root.textContent).toContain('CPU only');
  });

  it('names a container\'s CPU quota and memory limit where they bind, and nothing of a container otherwise', () => {
    const plain = render(machine);
    expect(text(plain, 'machine-cpu')).toBe('16 CPU threads');
    expect(text(plain, 'machine-memory')).toBe('RAM 32.0 GiB free of 64.0 GiB');
    unmount(component!);
    component = null;
    const limited = render({ ...machine, cpuThreads: 2, cpuQuota: { cpus: 1.5, hostThreads: 32 }, totalMemoryBytes: 8 * GiB, availableMemoryBytes: 7.1 * GiB, memoryLimitBytes: 8 * GiB });
    expect(text(limited, 'machine-cpu')).toBe('2 CPU threads (container quota 1.5 of 32)');
    expect(text(limited, 'machine-memory')).toBe('RAM 7.1 GiB free of 8.0 GiB container limit');
  });
});
