// What the app's header is told of a container: its CPU quota and memory
// limit where they bind (the header then says "2 CPU threads (container quota
// 1.5 of 32)", "RAM 7.1 GiB free of 8.0 GiB container limit"), nothing otherwise.
import { describe, expect, it } from 'vitest';
import type { MachineInfo } from '../system/machine.js';
import { containerLimits } from './machine.js';

const GiB = 2 ** 30;
const machine: MachineInfo = {
  cpu_model: 'test CPU', cpu_threads: 2, total_memory_bytes: 8 * GiB, available_memory_bytes: 7 * GiB,
  limits: { host_cpu_threads: 32, cpu_quota: 1.5, host_memory_bytes: 64 * GiB, memory_limit_bytes: 8 * GiB, source: 'test', said: [] },
};

describe('containerLimits', () => {
  it('passes on a quota and a memory limit that bind', () => {
    expect(containerLimits(machine)).toEqual({ cpuQuota: { cpus: 1.5, hostThreads: 32 }, memoryLimitBytes: 8 * GiB });
    // a third of a CPU, as the header writes it
    expect(containerLimits({ ...machine, cpu_threads: 1, limits: { ...machine.limits!, cpu_quota: 1 / 3 } }).cpuQuota).toEqual({ cpus: 0.33, hostThreads: 32 });
  });

  it('leaves out limits that do not bind, and a machine without them', () => {
    // a quota at the machine's threads, a memory limit above the machine's memory
    const loose = { ...machine, cpu_threads: 32, limits: { ...machine.limits!, cpu_quota: 32, memory_limit_bytes: 128 * GiB } };
    expect(containerLimits(loose)).toEqual({ cpuQuota: null, memoryLimitBytes: null });
    const none = { ...machine, limits: { ...machine.limits!, cpu_quota: null, memory_limit_bytes: null } };
    expect(containerLimits(none)).toEqual({ cpuQuota: null, memoryLimitBytes: null });
    expect(containerLimits({ ...machine, limits: undefined })).toEqual({ cpuQuota: null, memoryLimitBytes: null });
  });
});
