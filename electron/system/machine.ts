// What this machine offers a run: CPU threads and memory. The memory that
// counts is what the kernel says can be given to a new process without
// swapping (MemAvailable), not the "free" figure, which ignores reclaimable
// page cache and so understates it on every busy Linux box.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';

export interface MachineInfo {
  cpu_model: string;
  cpu_threads: number;
  total_memory_bytes: number;
  available_memory_bytes: number;
}

/** MemAvailable from /proc/meminfo where there is one, else os.freemem(). */
export function availableMemoryBytes(meminfo = '/proc/meminfo'): number {
  try {
    const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(readFileSync(meminfo, 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux, or /proc is hidden: the portable figure below
  }
  return freemem();
}

export function machineInfo(): MachineInfo {
  return {
    cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
    cpu_threads: availableParallelism(),
    total_memory_bytes: totalmem(),
    available_memory_bytes: availableMemoryBytes(),
  };
}
