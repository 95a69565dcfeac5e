// A container's limits read from fake cgroup trees (v2, v1, hybrid), laid out
// as the kernel and Docker lay them out; every figure is worked out by hand
// in the comment beside it.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  byteCount, cfsQuota, cgroupLimits, cpuMaxQuota, memoryHeadroom, memoryMax, parseProcCgroup, statField, v1MemoryLimit,
} from './cgroup-limits.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A fake root: each path (relative to it) written with its text; folders named with a trailing slash are made empty. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ps-cgroup-'));
  for (const [path, text] of Object.entries(files)) {
    if (path.endsWith('/')) {
      mkdirSync(join(root, path), { recursive: true });
      continue;
    }
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const V1_NONE = '9223372036854771712\n';

describe('the cgroup files, one at a time', () => {
  it('reads /proc/self/cgroup: the unified path and each v1 controller with its hierarchy', () => {
    const cg = parseProcCgroup('12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/init.scope\n0::/system.slice/x.service\nnot a line\n');
    expect(cg.unified).toBe('/system.slice/x.service');
    expect(Object.fromEntries(cg.v1)).toEqual({
      memory: { hierarchy: 'memory', path: '/docker/abc' },
      cpu: { hierarchy: 'cpu,cpuacct', path: '/docker/abc' },
      cpuacct: { hierarchy: 'cpu,cpuacct', path: '/docker/abc' },
    });
    expect(parseProcCgroup('')).toEqual({ unified: null, v1: new Map() });
  });

  it('reads quotas in CPUs: v2 cpu.max and v1 cfs_quota_us / cfs_period_us', () => {
    expect(cpuMaxQuota('150000 100000\n')).toBe(1.5);
    expect(cpuMaxQuota('50000 200000')).toBe(0.25);
    expect(cpuMaxQuota('max 100000\n')).toBeNull();
    // the period is optional in the file's grammar: 100 ms
    expect(cpuMaxQuota('200000')).toBe(2);
    expect(cfsQuota('200000\n', '100000\n')).toBe(2);
    expect(cfsQuota('-1\n', '100000\n')).toBeNull();
    expect(cfsQuota('200000', null)).toBeNull();
  });

  it('reads memory limits: v2 "max" and v1\'s huge number are no limit', () => {
    expect(memoryMax('8589934592\n')).toBe(8 * GiB);
    expect(memoryMax('max\n')).toBeNull();
    expect(v1MemoryLimit('8589934592\n')).toBe(8 * GiB);
    // LONG_MAX rounded down to a 4 KiB page, and to a 64 KiB page (arm64, ppc64le)
    expect(v1MemoryLimit(V1_NONE)).toBeNull();
    expect(v1MemoryLimit('9223372036854710272')).toBeNull();
    // 2^62 - 1 bytes would be a limit (an absurd one, but a limit)
    expect(v1MemoryLimit(String(2 ** 62 - 2 ** 20))).toBe(2 ** 62 - 2 ** 20);
  });

  it('takes garbage for no figure', () => {
    for (const bad of ['', 'lots', '8g', '-5', '1.5', '12 34', '0x10']) expect(byteCount(bad)).toBeNull();
    expect(byteCount(null)).toBeNull();
    for (const bad of ['', 'lots', 'max max', '1.5 100000', '150000 0', '0 100000', '150000 100000 7']) expect(cpuMaxQuota(bad)).toBeNull();
    expect(cfsQuota('abc', '100000')).toBeNull();
    expect(memoryMax('8g')).toBeNull();
    expect(statField('inactive_file 12 34\nactive_file 5\n', 'inactive_file')).toBeNull();
    expect(statField('active_file 5\n', 'inactive_file')).toBeNull();
    expect(statField('total_inactive_file 7\ninactive_file 3\n', 'inactive_file')).toBe(3);
  });

  it('counts the inactive page cache as room: the kernel reclaims it before an OOM kill', () => {
    // 8 GiB limit, 5 GiB charged of which 2 GiB inactive file pages: 8 - (5 - 2) = 5 GiB
    expect(memoryHeadroom(8 * GiB, 5 * GiB, 2 * GiB)).toBe(5 * GiB);
    expect(memoryHeadroom(8 * GiB, 5 * GiB, null)).toBe(3 * GiB);
    // more inactive than usage (two files read apart): never more room than the limit
    expect(memoryHeadroom(8 * GiB, 1 * GiB, 2 * GiB)).toBe(8 * GiB);
    // over the limit already (a limit lowered under a running cgroup): no room, not negative
    expect(memoryHeadroom(1 * GiB, 3 * GiB, 0)).toBe(0);
    // usage unreadable: the limit is all that is known
    expect(memoryHeadroom(8 * GiB, null, null)).toBe(8 * GiB);
  });
});

describe('cgroup v2', () => {
  it('no limits: every figure null, and the folder it read named', () => {
    const root = tree({
      'proc/self/cgroup': '0::/user.slice/app.scope\n',
      'sys/fs/cgroup/user.slice/app.scope/cpu.max': 'max 100000\n',
      'sys/fs/cgroup/user.slice/app.scope/memory.max': 'max\n',
      'sys/fs/cgroup/user.slice/app.scope/memory.current': '123456\n',
      'sys/fs/cgroup/user.slice/memory.max': 'max\n',
    });
    expect(cgroupLimits(root)).toEqual({
      cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null,
      source: 'cpu: cgroup v2 /sys/fs/cgroup/user.slice/app.scope; memory: cgroup v2 /sys/fs/cgroup/user.slice/app.scope',
    });
  });

  it('a quota of 1.5 CPUs and a memory limit less the usage without the inactive page cache', () => {
    const root = tree({
      'proc/self/cgroup': '0::/\n',
      'sys/fs/cgroup/cpu.max': '150000 100000\n',
      'sys/fs/cgroup/memory.max': `${8 * GiB}\n`,
      'sys/fs/cgroup/memory.current': `${3 * GiB}\n`,
      'sys/fs/cgroup/memory.stat': `anon ${GiB}\nfile ${2 * GiB}\nactive_file ${GiB}\ninactive_file ${512 * MiB}\n`,
    });
    // 8 GiB - (3 GiB - 0.5 GiB) = 5.5 GiB
    expect(cgroupLimits(root)).toMatchObject({ cpuQuota: 1.5, memoryLimitBytes: 8 * GiB, memoryHeadroomBytes: 5.5 * GiB });
  });

  it("nested: a parent's tighter limit binds, and the room is the least any level leaves", () => {
    const root = tree({
      'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
      // pod: 1 CPU, 4 GiB with 1 GiB charged (its other containers): 3 GiB of room
      'sys/fs/cgroup/kubepods/pod1/cpu.max': '100000 100000\n',
      'sys/fs/cgroup/kubepods/pod1/memory.max': `${4 * GiB}\n`,
      'sys/fs/cgroup/kubepods/pod1/memory.current': `${GiB}\n`,
      'sys/fs/cgroup/kubepods/pod1/memory.stat': 'inactive_file 0\n',
      // container: 3 CPUs, 6 GiB with 3.5 GiB charged: 2.5 GiB of room, less than its parent's although its limit is larger
      'sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '300000 100000\n',
      'sys/fs/cgroup/kubepods/pod1/ctr/memory.max': `${6 * GiB}\n`,
      'sys/fs/cgroup/kubepods/pod1/ctr/memory.current': `${3.5 * GiB}\n`,
      'sys/fs/cgroup/kubepods/pod1/ctr/memory.stat': 'inactive_file 0\n',
      'sys/fs/cgroup/kubepods/cpu.max': 'max 100000\n',
      'sys/fs/cgroup/kubepods/memory.max': 'max\n',
    });
    expect(cgroupLimits(root)).toMatchObject({ cpuQuota: 1, memoryLimitBytes: 4 * GiB, memoryHeadroomBytes: 2.5 * GiB });
    // the parent charged with more: now its room is the least, 4 - 3.75 = 0.25 GiB
    writeFileSync(join(root, 'sys/fs/cgroup/kubepods/pod1/memory.current'), `${3.75 * GiB}\n`);
    expect(cgroupLimits(root)).toMatchObject({ memoryLimitBytes: 4 * GiB, memoryHeadroomBytes: 0.25 * GiB });
  });

  it('a path not under the mount (a cgroup namespace the process was moved out of) reads the mount\'s own files', () => {
    const root = tree({
      'proc/self/cgroup': '0::/../outside\n',
      'sys/fs/cgroup/cpu.max': '200000 100000\n',
      'sys/fs/cgroup/memory.max': 'max\n',
    });
    expect(cgroupLimits(root)).toEqual({
      cpuQuota: 2, memoryLimitBytes: null, memoryHeadroomBytes: null,
      source: "cpu: cgroup v2 /sys/fs/cgroup (the container's own: /../outside is not under the mount); " +
        "memory: cgroup v2 /sys/fs/cgroup (the container's own: /../outside is not under the mount)",
    });
  });
});

describe('cgroup v1', () => {
  it('"cpu,cpuacct" and memory with their paths; the root\'s -1 and huge number are no limit', () => {
    const root = tree({
      'proc/self/cgroup': '11:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000\n',
      'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': V1_NONE,
      'sys/fs/cgroup/memory/memory.usage_in_bytes': `${40 * GiB}\n`,
      'sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': `${8 * GiB}\n`,
      'sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes': `${3 * GiB}\n`,
      // total_inactive_file (with the children, as usage_in_bytes counts them) is what counts, not the level's own inactive_file
      'sys/fs/cgroup/memory/docker/abc/memory.stat': `inactive_file ${100 * MiB}\ntotal_inactive_file ${GiB}\n`,
    });
    // 2.5 CPUs; 8 GiB - (3 GiB - 1 GiB) = 6 GiB
    expect(cgroupLimits(root)).toEqual({
      cpuQuota: 2.5, memoryLimitBytes: 8 * GiB, memoryHeadroomBytes: 6 * GiB,
      source: 'cpu: cgroup v1 /sys/fs/cgroup/cpu,cpuacct/docker/abc; memory: cgroup v1 /sys/fs/cgroup/memory/docker/abc',
    });
  });

  it('inside a container: /proc/self/cgroup names the host\'s path, not under the mount, so the mount\'s own files are the container\'s', () => {
    const root = tree({
      'proc/self/cgroup': '9:memory:/docker/0123abcd\n3:cpu,cpuacct:/docker/0123abcd\n',
      // the mount is named for one controller only (a link to the pair on most systems)
      'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000\n',
      'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': `${2 * GiB}\n`,
      'sys/fs/cgroup/memory/memory.usage_in_bytes': `${GiB}\n`,
      'sys/fs/cgroup/memory/memory.stat': 'total_inactive_file 0\n',
    });
    const own = "(the container's own: /docker/0123abcd is not under the mount)";
    expect(cgroupLimits(root)).toEqual({
      cpuQuota: 0.5, memoryLimitBytes: 2 * GiB, memoryHeadroomBytes: GiB,
      source: `cpu: cgroup v1 /sys/fs/cgroup/cpu ${own}; memory: cgroup v1 /sys/fs/cgroup/memory ${own}`,
    });
  });

  it('a parent\'s limit seen only from inside (a Kubernetes pod without its own): memory.stat\'s hierarchical_memory_limit', () => {
    const root = tree({
      'proc/self/cgroup': '9:memory:/kubepods/burstable/pod1/c1\n',
      // the container's own cgroup, mounted as the root: no limit of its own, the pod's 4 GiB above it
      'sys/fs/cgroup/memory/memory.limit_in_bytes': V1_NONE,
      'sys/fs/cgroup/memory/memory.usage_in_bytes': `${GiB}\n`,
      'sys/fs/cgroup/memory/memory.stat': `hierarchical_memory_limit ${4 * GiB}\ntotal_inactive_file ${256 * MiB}\n`,
    });
    // 4 GiB - (1 GiB - 256 MiB), on the container's own usage (the pod's other containers are not visible)
    expect(cgroupLimits(root)).toMatchObject({ memoryLimitBytes: 4 * GiB, memoryHeadroomBytes: 4 * GiB - 768 * MiB });
    // the huge "no limit" value there is none
    const none = tree({
      'proc/self/cgroup': '9:memory:/kubepods/burstable/pod1/c1\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': V1_NONE,
      'sys/fs/cgroup/memory/memory.stat': `hierarchical_memory_limit ${V1_NONE.trim()}\ntotal_inactive_file 0\n`,
    });
    expect(cgroupLimits(none)).toMatchObject({ memoryLimitBytes: null, memoryHeadroomBytes: null });
  });

  it('hybrid (v1 controllers beside an empty unified hierarchy, as on this machine): the v1 lines win', () => {
    const root = tree({
      'proc/self/cgroup': '4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n',
      // would be read, wrongly, if the 0:: line were taken for the controllers' hierarchy
      'sys/fs/cgroup/memory.max': `${GiB}\n`,
      'sys/fs/cgroup/cpu.max': '10000 100000\n',
      'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
      'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': V1_NONE,
      'sys/fs/cgroup/memory/process_api/memory.limit_in_bytes': `${16 * GiB}\n`,
      'sys/fs/cgroup/memory/process_api/memory.usage_in_bytes': `${4 * GiB}\n`,
      'sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes': V1_NONE,
      'sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes': `${GiB}\n`,
    });
    // the parent (process_api) binds: 16 GiB - 4 GiB
    expect(cgroupLimits(root)).toEqual({
      cpuQuota: null, memoryLimitBytes: 16 * GiB, memoryHeadroomBytes: 12 * GiB,
      source: 'cpu: cgroup v1 /sys/fs/cgroup/cpu; memory: cgroup v1 /sys/fs/cgroup/memory/process_api/abc',
    });
  });

  it('garbled files, a missing mount, a missing /proc/self/cgroup: no limits, never an error', () => {
    const garbled = tree({
      'proc/self/cgroup': '7:memory:/a\n3:cpu:/a\n',
      'sys/fs/cgroup/cpu/a/cpu.cfs_quota_us': 'fast\n',
      'sys/fs/cgroup/cpu/a/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/memory/a/memory.limit_in_bytes': '8g\n',
      'sys/fs/cgroup/memory/a/memory.usage_in_bytes': '\n',
    });
    expect(cgroupLimits(garbled)).toMatchObject({ cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null });
    // a limit with a garbled usage: the limit is all that is known
    writeFileSync(join(garbled, 'sys/fs/cgroup/memory/a/memory.limit_in_bytes'), `${GiB}\n`);
    expect(cgroupLimits(garbled)).toMatchObject({ memoryLimitBytes: GiB, memoryHeadroomBytes: GiB });
    expect(cgroupLimits(tree({ 'proc/self/cgroup': '7:memory:/a\n' }))).toEqual({
      cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null, source: 'cpu: no cgroup controller; memory: cgroup v1, not mounted under /sys/fs/cgroup',
    });
    expect(cgroupLimits(tree({ 'proc/self/cgroup': 'garbage\x00\n::\n' }))).toMatchObject({ cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null });
    expect(cgroupLimits(tree({ 'etc/': '' }))).toEqual({
      cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null, source: 'none: /proc/self/cgroup cannot be read',
    });
  });
});
