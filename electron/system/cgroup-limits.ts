// The limits a container puts on this process. Docker, Podman, Kubernetes and
// systemd slices limit a process through its cgroup: a CPU quota (`docker run
// --cpus=2`) and a memory limit (`-m 8g`). Node sees neither:
// os.availableParallelism() honours CPU affinity (a cpuset) but not a quota,
// so under --cpus=2 on a 32-core host it says 32 and the engine's 32 threads
// share two CPUs' time, throttled every period; /proc/meminfo and
// os.totalmem() are the host's, so a run "fits" that the kernel then kills at
// the container's limit. This reads the limits from the cgroup files, v2 (one
// unified hierarchy) and v1 (a hierarchy per controller), under a root folder:
// `/` for real, a fake tree in the tests.
//
// A limit binds at every level of the hierarchy (a parent's limit holds its
// children together), so each is the tightest from the process's cgroup up to
// the hierarchy's root. A cpuset is left out on purpose: the kernel applies it
// as CPU affinity, which availableParallelism() already honours.
//
// Nothing here throws: a file that is missing, unreadable or garbled is no
// limit from that file (the machine's own figures then stand).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface CgroupLimits {
  /** the CPU quota in CPUs (1.5: one and a half CPUs' time per period); null when none */
  cpuQuota: number | null;
  /** the tightest memory limit, in bytes; null when none */
  memoryLimitBytes: number | null;
  /** what the process may still allocate before a limit's OOM kill, in bytes (the least over the levels that have a limit); null when no limit */
  memoryHeadroomBytes: number | null;
  /** where the limits were read, for a report: the cgroup version and folder of each, or why none */
  source: string;
}

/** The process's place in its cgroup hierarchies (/proc/self/cgroup). */
export interface ProcCgroup {
  /** the cgroup v2 (unified) path, from the `0::` line; null without one */
  unified: string | null;
  /** v1: each controller's hierarchy (its controllers as listed: "cpu,cpuacct") and the process's path in it */
  v1: Map<string, { hierarchy: string; path: string }>;
}

/**
 * Parses /proc/self/cgroup: one `id:controllers:path` line per hierarchy, the
 * v2 one with id 0 and no controllers. Lines that are not of that shape are skipped.
 */
export function parseProcCgroup(text: string): ProcCgroup {
  const out: ProcCgroup = { unified: null, v1: new Map() };
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m;
    if (id === '0' && controllers === '') {
      out.unified = path;
      continue;
    }
    for (const c of controllers.split(',')) if (c !== '' && !c.startsWith('name=')) out.v1.set(c, { hierarchy: controllers, path });
  }
  return out;
}

const DIGITS = /^\d+$/;

/** A byte count as the cgroup files write it ("8589934592\n"); null when missing or not a plain count. */
export function byteCount(text: string | null): number | null {
  const t = text?.trim();
  return t !== undefined && DIGITS.test(t) ? Number(t) : null;
}

/** cgroup v2 cpu.max ("max 100000", or "<quota> <period>" in µs): the quota in CPUs; null when none or garbled. */
export function cpuMaxQuota(text: string | null): number | null {
  const m = /^(\S+)(?:\s+(\S+))?$/.exec(text?.trim() ?? '');
  if (!m || m[1] === 'max') return null;
  // the period is optional in the file's grammar; the kernel's default is 100 ms
  return quotaOf(m[1], m[2] ?? '100000');
}

/** cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us (a quota of -1: none): the quota in CPUs; null when none or garbled. */
export function cfsQuota(quotaText: string | null, periodText: string | null): number | null {
  if (quotaText === null || periodText === null) return null;
  return quotaOf(quotaText.trim(), periodText.trim());
}

function quotaOf(quota: string, period: string): number | null {
  if (!DIGITS.test(quota) || !DIGITS.test(period)) return null;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : null;
}

/** cgroup v2 memory.max: bytes, or "max" for none; null when none or garbled. */
export function memoryMax(text: string | null): number | null {
  return text?.trim() === 'max' ? null : byteCount(text);
}

/**
 * v1 writes "no limit" as the most pages its counter holds times the page size
 * (9223372036854771712 with 4 KiB pages, less with larger pages): any value at
 * or above 2^62 bytes (4 EiB, beyond any machine) is that.
 */
export const V1_NO_LIMIT_FROM = 2 ** 62;

/** cgroup v1 memory.limit_in_bytes: bytes; null when none (the huge "no limit" value) or garbled. */
export function v1MemoryLimit(text: string | null): number | null {
  const b = byteCount(text);
  return b === null || b >= V1_NO_LIMIT_FROM ? null : b;
}

/** A field of memory.stat ("inactive_file 123\n"); null when missing or garbled. */
export function statField(text: string | null, key: string): number | null {
  for (const line of (text ?? '').split('\n')) {
    const [k, v, ...rest] = line.trim().split(/\s+/);
    if (k === key && rest.length === 0) return byteCount(v ?? null);
  }
  return null;
}

/**
 * What a level with a memory limit leaves: the limit less its usage, the
 * usage without the inactive page cache. Before the kernel OOM-kills a cgroup
 * at its limit it reclaims the page cache nobody touched lately (the inactive
 * file pages), so that part of the usage is room a run can have; Docker's own
 * "usage" (docker stats) subtracts it for the same reason. A usage that
 * cannot be read leaves the limit itself (all that is known).
 */
export function memoryHeadroom(limit: number, usage: number | null, inactiveFile: number | null): number {
  if (usage === null) return limit;
  const used = usage - Math.min(inactiveFile ?? 0, usage);
  return Math.max(0, limit - used);
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The folders from the process's cgroup up to the hierarchy's mount,
 * innermost first: a limit at any of them binds. Inside a container the
 * mount is often the container's own cgroup while /proc/self/cgroup names its
 * path on the host ("/docker/<id>"), which is then not under the mount: the
 * mount's own files are the container's, so the chain is the mount alone.
 */
export function cgroupChain(mount: string, path: string): { chain: string[]; underMount: boolean } {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..') || !isDir(join(mount, ...parts))) return { chain: [mount], underMount: false };
  const chain: string[] = [];
  for (let n = parts.length; n >= 0; n--) chain.push(join(mount, ...parts.slice(0, n)));
  return { chain, underMount: true };
}

type Version = 1 | 2;

/** Where one controller's files are: its version and the chain of folders to read. */
interface Located {
  version: Version;
  chain: string[];
  /** for `source`: "cgroup v1 /sys/fs/cgroup/memory/docker/abc" */
  said: string;
}

/**
 * Where a v1 hierarchy is mounted: /sys/fs/cgroup/<its controllers as
 * listed> ("cpu,cpuacct", as systemd mounts it), else a folder named for one
 * of them (the "cpu" link beside it, or a mount of its own), else the list
 * reversed ("cpuacct,cpu", as some distributions name it).
 */
function v1Mount(root: string, controller: string, hierarchy: string): string | null {
  const names = hierarchy.split(',');
  const candidates = [hierarchy, controller, ...names, [...names].reverse().join(',')];
  for (const name of candidates) {
    const dir = join(root, 'sys/fs/cgroup', name);
    if (isDir(dir)) return dir;
  }
  return null;
}

/** How `source` names a folder: from the root, as on the real machine. */
function shown(root: string, dir: string): string {
  return '/' + dir.slice(join(root).length).replace(/^\/+/, '');
}

/** Where a controller's files are, or why there are none (for `source`). */
function locate(root: string, cg: ProcCgroup, controller: string): Located | string {
  // a controller is bound to one hierarchy: a v1 line naming it wins over the unified one (hybrid mode mounts both)
  const v1 = cg.v1.get(controller);
  const at = v1 ? { version: 1 as const, mount: v1Mount(root, controller, v1.hierarchy), path: v1.path }
    : cg.unified !== null ? { version: 2 as const, mount: join(root, 'sys/fs/cgroup'), path: cg.unified } : null;
  if (!at) return 'no cgroup controller';
  if (at.mount === null || !isDir(at.mount)) return `cgroup v${at.version}, not mounted under /sys/fs/cgroup`;
  const { chain, underMount } = cgroupChain(at.mount, at.path);
  const own = underMount ? '' : ` (the container's own: ${at.path} is not under the mount)`;
  return { version: at.version, chain, said: `cgroup v${at.version} ${shown(root, chain[0])}${own}` };
}

function cpuQuotaOf(at: Located): number | null {
  let tightest: number | null = null;
  for (const dir of at.chain) {
    const q = at.version === 2
      ? cpuMaxQuota(readText(join(dir, 'cpu.max')))
      : cfsQuota(readText(join(dir, 'cpu.cfs_quota_us')), readText(join(dir, 'cpu.cfs_period_us')));
    if (q !== null) tightest = tightest === null ? q : Math.min(tightest, q);
  }
  return tightest;
}

function memoryOf(at: Located): { limit: number | null; headroom: number | null } {
  let limit: number | null = null;
  let headroom: number | null = null;
  for (const dir of at.chain) {
    const here = at.version === 2 ? memoryMax(readText(join(dir, 'memory.max'))) : v1MemoryLimit(readText(join(dir, 'memory.limit_in_bytes')));
    if (here === null) continue;
    const usage = byteCount(readText(join(dir, at.version === 2 ? 'memory.current' : 'memory.usage_in_bytes')));
    // v1's usage counts the children too, as does total_inactive_file (inactive_file is the level's own); v2's memory.stat is hierarchical
    const inactive = statField(readText(join(dir, 'memory.stat')), at.version === 2 ? 'inactive_file' : 'total_inactive_file');
    const room = memoryHeadroom(here, usage, inactive);
    limit = limit === null ? here : Math.min(limit, here);
    headroom = headroom === null ? room : Math.min(headroom, room);
  }
  // v1 inside a container sees only its own cgroup, so a limit set on a parent (a Kubernetes pod's, its QoS
  // class's) shows only as memory.stat's hierarchical_memory_limit, the tightest up the tree. The parent's
  // usage is not visible: the room is counted on this level's own (at most the parent's), so it may say more
  // room than there is when other cgroups under that parent use its memory too. (v2 has no such field: there
  // a parent outside the container's namespace stays unseen.)
  if (at.version === 1) {
    const stat = readText(join(at.chain[0], 'memory.stat'));
    const hierarchical = statField(stat, 'hierarchical_memory_limit');
    const parent = hierarchical === null || hierarchical >= V1_NO_LIMIT_FROM ? null : hierarchical;
    if (parent !== null && (limit === null || parent < limit)) {
      const room = memoryHeadroom(parent, byteCount(readText(join(at.chain[0], 'memory.usage_in_bytes'))), statField(stat, 'total_inactive_file'));
      limit = parent;
      headroom = headroom === null ? room : Math.min(headroom, room);
    }
  }
  return { limit, headroom };
}

const NONE = { cpuQuota: null, memoryLimitBytes: null, memoryHeadroomBytes: null };

/** The calling process's cgroup limits, read under `root` (a fake tree in tests). */
export function cgroupLimits(root = '/'): CgroupLimits {
  if (root === '/' && process.platform !== 'linux') return { ...NONE, source: 'none: cgroups are Linux only' };
  const text = readText(join(root, 'proc/self/cgroup'));
  if (text === null) return { ...NONE, source: 'none: /proc/self/cgroup cannot be read' };
  const cg = parseProcCgroup(text);
  const cpu = locate(root, cg, 'cpu');
  const memory = locate(root, cg, 'memory');
  const { limit, headroom } = typeof memory === 'string' ? { limit: null, headroom: null } : memoryOf(memory);
  const said = (at: Located | string) => (typeof at === 'string' ? at : at.said);
  return {
    cpuQuota: typeof cpu === 'string' ? null : cpuQuotaOf(cpu),
    memoryLimitBytes: limit,
    memoryHeadroomBytes: headroom,
    source: `cpu: ${said(cpu)}; memory: ${said(memory)}`,
  };
}
