// The training process's JavaScript heap limit. Node stops a process whose
// V8 heap passes its limit (about 4 GiB by default on 64-bit, whatever the
// machine has), and a run's data rows live partly on that heap: ~340 bytes of
// objects a row beside their token buffers (rows-bytes.ts), so a dataset of
// some ten million rows ended the run with V8's fatal error on a machine with
// memory to spare. The memory check already counts the rows against the
// machine's memory; the heap may use what the machine has (three quarters of
// it, the rest for the engine's tensors, which live outside the heap), never
// less than V8's own default; a limit the user set in NODE_OPTIONS stands.
// In a container "the machine" is its memory limit (machine.ts
// totalMemoryBytes): a heap sized from the host's memory lets V8 grow it past
// the limit, where the kernel kills the run, before V8 collects harder or
// stops with its heap error (which crash-report.ts can name).
// Under Electron the heap stays within its own cap (pointer compression),
// whatever the flag says.
import { getHeapStatistics } from 'node:v8';
import { totalMemoryBytes } from '../system/machine.js';

const MiB = 2 ** 20;

/** The heap limit the training process gets, in MiB. */
export function trainingHeapLimitMiB(totalBytes = totalMemoryBytes(), defaultLimitBytes = getHeapStatistics().heap_size_limit): number {
  return Math.floor(Math.max(defaultLimitBytes, 0.75 * totalBytes) / MiB);
}

/**
 * The runtime flags that set it for a child started with `env`: none when
 * NODE_OPTIONS sets a heap limit already (the user's choice stands).
 */
export function trainingHeapArgs(env: NodeJS.ProcessEnv = process.env, totalBytes?: number): string[] {
  if (/--max-old-space-size\b/.test(env.NODE_OPTIONS ?? '')) return [];
  return [`--max-old-space-size=${trainingHeapLimitMiB(totalBytes)}`];
}

/** Whether a line of a child's output is V8's fatal heap error. */
export function isHeapOutOfMemoryLine(line: string): boolean {
  return /JavaScript heap out of memory|Reached heap limit/.test(line);
}

/**
 * The heap limit a child started with `env` and `execArgv` (after
 * trainingHeapArgs') has, in MiB: the last flag on its command line, else
 * NODE_OPTIONS's, else V8's default.
 */
export function effectiveHeapLimitMiB(env: NodeJS.ProcessEnv, execArgv: readonly string[]): number {
  const last = (flags: readonly string[]) => {
    let found: number | null = null;
    for (const f of flags) {
      const m = /^--max-old-space-size=(\d+)$/.exec(f);
      if (m) found = Number(m[1]);
    }
    return found;
  };
  const asked = last(execArgv) ?? last((env.NODE_OPTIONS ?? '').split(/\s+/)) ?? Math.floor(getHeapStatistics().heap_size_limit / MiB);
  // Electron's V8 compresses pointers: its heap stays within 4 GiB whatever was asked
  return process.versions.electron ? Math.min(asked, ELECTRON_HEAP_CAP_MIB) : asked;
}

/** The most heap Electron's V8 gives a process (pointer compression), in MiB. */
export const ELECTRON_HEAP_CAP_MIB = 4096;
