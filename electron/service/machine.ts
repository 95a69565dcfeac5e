// What this machine offers, for the UI: CPU, memory (within a container's
// limits, which the UI names where they bind), the GPUs
// (addon.devices(): every one the CUDA runtime counts, at its own index, one
// that cannot report itself with its `error`; empty unless the addon was
// built with the CUDA backend and a GPU is present) and the engine's kernels.
import { resolveDevice } from '../engine/device.js';
import { loadAddon } from '../engine/load.js';
import { bindingLimits, machineInfo, roundedQuota, type MachineInfo } from '../system/machine.js';
import type { MachineSummary } from '../api/contract.js';

export function machineSummary(mode: MachineSummary['mode']): MachineSummary {
  const m = machineInfo();
  const addon = loadAddon();
  const cpu = addon.cpuInfo();
  const gpus = addon.devices();
  // what a run with the default device (auto) gets, and why
  const auto = resolveDevice(addon, 'auto');
  return {
    cpuModel: m.cpu_model,
    cpuThreads: m.cpu_threads,
    totalMemoryBytes: m.total_memory_bytes,
    availableMemoryBytes: m.available_memory_bytes,
    ...containerLimits(m),
    gpus,
    engine: auto.gpu
      ? `trains on ${auto.reason}; CPU: ${cpu.kernel} kernels, ${cpu.hardwareThreads} hardware threads`
      : `CPU, ${cpu.kernel} kernels, ${cpu.hardwareThreads} hardware threads; ${auto.reason.replace(/^CPU: /, '')}`,
    mode,
  };
}

/** The container's limits where they bind (machine.ts bindingLimits), for the header to name. */
export function containerLimits(m: MachineInfo): Pick<MachineSummary, 'cpuQuota' | 'memoryLimitBytes'> {
  if (!m.limits) return { cpuQuota: null, memoryLimitBytes: null };
  const { cpuQuota, memoryLimitBytes } = bindingLimits(m, m.limits);
  return { cpuQuota: cpuQuota === null ? null : { cpus: roundedQuota(cpuQuota), hostThreads: m.limits.host_cpu_threads }, memoryLimitBytes };
}
