// The machine as a run sees it: its threads within a container's CPU quota,
// its memory within the container's limit, read from fake cgroup trees; and
// inspect's verdict held against that memory, not the host's.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, freemem, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../cli/commands/inspect.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { tinyModel } from '../testing/e2e-fixtures.js';
import { cgroupLimits } from './cgroup-limits.js';
import { availableMemoryBytes, cpuBudget, limitsInWords, machineInfo, totalMemoryBytes } from './machine.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A fake root: each path (relative to it) written with its text. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ps-machine-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** A cgroup v2 container: its cpu.max and memory.max / memory.current, and the host's MemAvailable. */
function container(o: { cpuMax?: string; memoryMax?: number; memoryCurrent?: number; memAvailableKb: number }): string {
  return tree({
    'proc/meminfo': `MemTotal:       99999999 kB\nMemFree:          100000 kB\nMemAvailable:   ${o.memAvailableKb} kB\n`,
    'proc/self/cgroup': '0::/\n',
    'sys/fs/cgroup/cpu.max': `${o.cpuMax ?? 'max 100000'}\n`,
    'sys/fs/cgroup/memory.max': `${o.memoryMax ?? 'max'}\n`,
    'sys/fs/cgroup/memory.current': `${o.memoryCurrent ?? 0}\n`,
    'sys/fs/cgroup/memory.stat': 'inactive_file 0\n',
  });
}

describe('the CPU budget', () => {
  it('is the machine\'s threads, at most the quota rounded up, at least 1', () => {
    // 1.5 CPUs: 2 threads (rounded up: a throttled period stops every thread at once, so the second one's half CPU is gained)
    expect(cpuBudget({ cpuQuota: 1.5 }, 32)).toEqual({ threads: 2, hostThreads: 32, quota: 1.5 });
    expect(cpuBudget({ cpuQuota: 2 }, 32).threads).toBe(2);
    expect(cpuBudget({ cpuQuota: 0.1 }, 32).threads).toBe(1);
    // a quota above what the affinity allows changes nothing
    expect(cpuBudget({ cpuQuota: 64 }, 8).threads).toBe(8);
    expect(cpuBudget({ cpuQuota: null }, 8)).toEqual({ threads: 8, hostThreads: 8, quota: null });
    // read from a container's files
    expect(cpuBudget(cgroupLimits(container({ cpuMax: '150000 100000', memAvailableKb: 1 })), 32).threads).toBe(2);
  });
});

describe('memory', () => {
  it('reads MemAvailable (kB) from <root>/proc/meminfo, with no container limit', () => {
    expect(availableMemoryBytes(container({ memAvailableKb: 12345678 }))).toBe(12345678 * 1024);
  });

  it('is the container\'s room when less than MemAvailable, and MemAvailable when less than the room', () => {
    // 8 GiB limit, 1 GiB used: 7 GiB of room under 32 GiB available on the host
    expect(availableMemoryBytes(container({ memoryMax: 8 * GiB, memoryCurrent: GiB, memAvailableKb: 32 * 1024 * 1024 }))).toBe(7 * GiB);
    // the host has less available than the container's room (other containers use it)
    expect(availableMemoryBytes(container({ memoryMax: 8 * GiB, memoryCurrent: GiB, memAvailableKb: 2 * 1024 * 1024 }))).toBe(2 * GiB);
    expect(totalMemoryBytes({ memoryLimitBytes: 8 * GiB }, 64 * GiB)).toBe(8 * GiB);
    expect(totalMemoryBytes({ memoryLimitBytes: 128 * GiB }, 64 * GiB)).toBe(64 * GiB);
    expect(totalMemoryBytes({ memoryLimitBytes: null }, 64 * GiB)).toBe(64 * GiB);
  });

  it('falls back to os.freemem() without a meminfo file', () => {
    const got = availableMemoryBytes(tree({ 'proc/self/cgroup': '0::/\n' }));
    // freemem moves between two calls; the same order of magnitude is the claim
    expect(got).toBeGreaterThan(0);
    expect(Math.abs(got - freemem())).toBeLessThan(freemem());
  });
});

describe('the machine with its container', () => {
  it('says the limits that bind, in words', () => {
    const m = { cpu_model: 'x', cpu_threads: 2, total_memory_bytes: 8 * GiB, available_memory_bytes: 7.1 * GiB };
    const l = { host_cpu_threads: 32, cpu_quota: 1.5, host_memory_bytes: 64 * GiB, memory_limit_bytes: 8 * GiB, source: 's' };
    expect(limitsInWords(m, l)).toEqual(['2 CPU threads (container quota 1.5 of 32)', "memory: 7.1 GiB available of the container's 8.0 GiB limit"]);
    expect(limitsInWords({ ...m, cpu_threads: 1 }, { ...l, cpu_quota: 1 / 3 })[0]).toBe('1 CPU thread (container quota 0.33 of 32)');
    // limits that do not bind are not said: a quota at the machine's threads, a memory limit above its memory
    expect(limitsInWords({ ...m, cpu_threads: 32 }, { ...l, cpu_quota: 40, memory_limit_bytes: 100 * GiB })).toEqual([]);
  });

  it('machineInfo: the threads and memory within the container, the host\'s beside them', () => {
    // a quota of half a CPU, 64 MiB with 16 MiB used (under any machine's memory)
    const root = container({ cpuMax: '50000 100000', memoryMax: 64 * MiB, memoryCurrent: 16 * MiB, memAvailableKb: 32 * 1024 * 1024 });
    const info = machineInfo(root);
    expect(info).toMatchObject({ cpu_threads: 1, total_memory_bytes: 64 * MiB, available_memory_bytes: 48 * MiB });
    expect(info.limits).toMatchObject({ host_cpu_threads: availableParallelism(), cpu_quota: 0.5, host_memory_bytes: totalmem(), memory_limit_bytes: 64 * MiB });
    expect(info.limits!.said.at(-1)).toBe("memory: 48.0 MiB available of the container's 64.0 MiB limit");
    // no limits: the machine's own
    const free = machineInfo(container({ memAvailableKb: 1234 }));
    expect(free).toMatchObject({ cpu_threads: availableParallelism(), total_memory_bytes: totalmem(), available_memory_bytes: 1234 * 1024 });
    expect(free.limits!.said).toEqual([]);
  });

  it('inspect says a method does not fit when its total exceeds the container\'s room, whatever the host has', async () => {
    const model = await tinyModel({ seed: 43 });
    const folder = await openModelFolder(model.dir);
    const settings = { batch_size: 1, seq_len: 32, rank: 4, targets: ['q_proj' as const], optimizer: 'adamw' as const, gradient_checkpointing: false };
    const onCpu = { device: 'cpu', precision: 'auto' } as const;
    // 1 TiB available on the host
    const host = 1024 ** 3;
    const probe = inspectModel(loadAddon(), folder, settings, machineInfo(container({ memAvailableKb: host })), onCpu);
    expect(probe.memory.full.fits).toBe(true);
    // a container whose room lies between the two totals: LoRA fits, full fine-tuning does not
    const limit = Math.floor((probe.memory.lora.total_bytes + probe.memory.full.total_bytes) / 2);
    expect(probe.memory.lora.total_bytes).toBeLessThan(limit);
    const r = inspectModel(loadAddon(), folder, settings, machineInfo(container({ memoryMax: limit, memoryCurrent: 0, memAvailableKb: host })), onCpu);
    expect(r.fits_in).toMatchObject({ device: 'cpu', where: 'in RAM', available_bytes: limit });
    expect(r.memory.lora.fits).toBe(true);
    expect(r.memory.full.fits).toBe(false);
    expect(r.machine.limits).toMatchObject({ memory_limit_bytes: limit });
  });
});
