// What this machine offers, for the UI: CPU, memory and the engine's kernels.
// The engine in this build runs on the CPU only (the addon exposes no CUDA
// device query), so `gpus` is empty; the field is there for a CUDA backend.
import { loadAddon } from '../engine/load.js';
import { machineInfo } from '../system/machine.js';
import type { MachineSummary } from '../api/contract.js';

export function machineSummary(mode: MachineSummary['mode']): MachineSummary {
  const m = machineInfo();
  const cpu = loadAddon().cpuInfo();
  return {
    cpuModel: m.cpu_model,
    cpuThreads: m.cpu_threads,
    totalMemoryBytes: m.total_memory_bytes,
    availableMemoryBytes: m.available_memory_bytes,
    gpus: [],
    engine: `CPU, ${cpu.kernel} kernels, ${cpu.hardwareThreads} hardware threads`,
    mode,
  };
}
