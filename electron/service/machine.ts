// What this machine offers, for the UI: CPU, memory, the GPUs the engine can
// use (addon.devices(): empty unless the addon was built with the CUDA
// backend and a GPU is present) and the engine's kernels.
import { loadAddon } from '../engine/load.js';
import { machineInfo } from '../system/machine.js';
import type { MachineSummary } from '../api/contract.js';

export function machineSummary(mode: MachineSummary['mode']): MachineSummary {
  const m = machineInfo();
  const addon = loadAddon();
  const cpu = addon.cpuInfo();
  return {
    cpuModel: m.cpu_model,
    cpuThreads: m.cpu_threads,
    totalMemoryBytes: m.total_memory_bytes,
    availableMemoryBytes: m.available_memory_bytes,
    // an addon built before devices() existed reports none
    gpus: typeof addon.devices === 'function' ? addon.devices() : [],
    engine: `CPU, ${cpu.kernel} kernels, ${cpu.hardwareThreads} hardware threads`,
    mode,
  };
}
