// What this machine offers a run: CPU threads and memory, within the limits
// of the container (cgroup) the process runs in (cgroup-limits.ts), since
// those are what the kernel holds a run to: a CPU quota throttles threads
// beyond it, a memory limit OOM-kills the run at it. The memory that counts
// is what the kernel says can be given to a new process without swapping
// (MemAvailable), not the "free" figure, which ignores reclaimable page cache
// and so understates it on every busy Linux box.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import { bytesInWords } from '../text/bytes.js';
import { countOf } from '../text/plural.js';
import { cgroupLimits, type CgroupLimits } from './cgroup-limits.js';

/** What a container (cgroup) limits, beside the machine's own figures. */
export interface MachineLimits {
  /** the hardware threads the process may run on (os.availableParallelism(): CPU affinity, not a quota) */
  host_cpu_threads: number;
  /** the container's CPU quota in CPUs; null when none */
  cpu_quota: number | null;
  /** the machine's memory (os.totalmem()) */
  host_memory_bytes: number;
  /** the container's memory limit; null when none */
  memory_limit_bytes: number | null;
  /** where they were read (cgroup-limits.ts CgroupLimits.source) */
  source: string;
  /** the limits that bind, in words ("2 CPU threads (container quota 2 of 32)"); empty when none does */
  said: string[];
}

export interface MachineInfo {
  cpu_model: string;
  /** the threads a run uses by default (cpuBudget) */
  cpu_threads: number;
  /** the machine's memory, or the container's limit when lower */
  total_memory_bytes: number;
  /** the memory a run can have now: MemAvailable, or the container's headroom when lower */
  available_memory_bytes: number;
  /** how a container limits those; absent in a machine written out by hand (tests) */
  limits?: MachineLimits;
}

/** The threads a run gets when none are asked for, and why. */
export interface CpuBudget {
  threads: number;
  /** the hardware threads the process may run on (affinity honoured, a quota not) */
  hostThreads: number;
  /** the container's CPU quota in CPUs; null when none */
  quota: number | null;
}

/**
 * The machine's threads, at most the container's CPU quota rounded up, at
 * least 1. Up, not down: CFS bandwidth control throttles the whole cgroup
 * once its quota for the period is spent, every thread at once. With 1.5
 * CPUs, 2 threads run ~75 ms of each 100 ms period and then all wait, 1.5
 * CPUs' work a period; 1 thread is never throttled but does 1.0. The engine's
 * parallel_for waits for its last chunk, but a throttled period stops every
 * thread together (no thread is left behind with its chunk while the others
 * finish) and chunks are claimed at run time by whichever thread is free, so
 * the pauses cost a training step (seconds) ~nothing next to half a CPU more.
 * Beyond the quota rounded up, more threads add no CPU time, only contention.
 */
export function cpuBudget(limits: Pick<CgroupLimits, 'cpuQuota'> = cgroupLimits(), hostThreads = availableParallelism()): CpuBudget {
  const quota = limits.cpuQuota;
  const threads = quota === null ? hostThreads : Math.min(hostThreads, Math.ceil(quota));
  return { threads: Math.max(1, threads), hostThreads, quota };
}

/** The thread count a run, a session or an export uses when none is given. */
export function defaultThreads(): number {
  return cpuBudget().threads;
}

/** MemAvailable from <root>/proc/meminfo; null where there is none (not Linux, /proc hidden). */
function memAvailable(root: string): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(readFileSync(join(root, 'proc/meminfo'), 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * The memory a run can have now: MemAvailable (else os.freemem()), at most
 * the container's headroom (its limit less what it uses). Read under `root`
 * (a fake tree in tests).
 */
export function availableMemoryBytes(root = '/', limits: Pick<CgroupLimits, 'memoryHeadroomBytes'> = cgroupLimits(root)): number {
  const host = memAvailable(root) ?? freemem();
  return limits.memoryHeadroomBytes === null ? host : Math.min(host, limits.memoryHeadroomBytes);
}

/** The machine's memory, at most the container's limit. */
export function totalMemoryBytes(limits: Pick<CgroupLimits, 'memoryLimitBytes'> = cgroupLimits(), hostTotal = totalmem()): number {
  return limits.memoryLimitBytes === null ? hostTotal : Math.min(hostTotal, limits.memoryLimitBytes);
}

/** A CPU quota as messages say it, to two decimals: 2, 1.5, 0.33. */
export function roundedQuota(quota: number): number {
  return Number(quota.toFixed(2));
}

/**
 * The container's limits that bind: a CPU quota that holds the threads below
 * the machine's, a memory limit below the machine's memory; null where none
 * does (a quota of 64 CPUs on a 32-thread machine changes nothing worth saying).
 */
export function bindingLimits(m: Pick<MachineInfo, 'cpu_threads'>, l: Omit<MachineLimits, 'said'>): { cpuQuota: number | null; memoryLimitBytes: number | null } {
  return {
    cpuQuota: l.cpu_quota !== null && m.cpu_threads < l.host_cpu_threads ? l.cpu_quota : null,
    memoryLimitBytes: l.memory_limit_bytes !== null && l.memory_limit_bytes < l.host_memory_bytes ? l.memory_limit_bytes : null,
  };
}

/** The limits that bind, in words: "2 CPU threads (container quota 1.5 of 32)", "memory: 7.1 GiB available of the container's 8.0 GiB limit". */
export function limitsInWords(m: Omit<MachineInfo, 'limits'>, l: Omit<MachineLimits, 'said'>): string[] {
  const { cpuQuota, memoryLimitBytes } = bindingLimits(m, l);
  const said: string[] = [];
  if (cpuQuota !== null) said.push(`${countOf(m.cpu_threads, 'CPU thread')} (container quota ${roundedQuota(cpuQuota)} of ${l.host_cpu_threads})`);
  if (memoryLimitBytes !== null) said.push(`memory: ${bytesInWords(m.available_memory_bytes)} available of the container's ${bytesInWords(memoryLimitBytes)} limit`);
  return said;
}

/** This machine as a run sees it, read under `root` (a fake cgroup tree in tests; the CPU model and the host's figures are the real machine's). */
export function machineInfo(root = '/'): MachineInfo {
  const limits = cgroupLimits(root);
  const cpu = cpuBudget(limits);
  const info = {
    cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
    cpu_threads: cpu.threads,
    total_memory_bytes: totalMemoryBytes(limits),
    available_memory_bytes: availableMemoryBytes(root, limits),
  };
  const facts = { host_cpu_threads: cpu.hostThreads, cpu_quota: limits.cpuQuota, host_memory_bytes: totalmem(), memory_limit_bytes: limits.memoryLimitBytes, source: limits.source };
  return { ...info, limits: { ...facts, said: limitsInWords(info, facts) } };
}
