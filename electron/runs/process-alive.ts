// Is the process that claims a run still alive? A pid alone is not enough:
// after a crash and a reboot the number may belong to another program. On
// Linux the kernel's start time of the process (field 22 of /proc/PID/stat)
// tells the original from a later process that got the same number.
import { hostname } from 'node:os';
import { processStartTicks } from '../system/process-start.js';

export { processStartTicks };

export interface ProcessIdentity {
  pid: number;
  host: string;
  /** clock ticks after boot when the process started (Linux), null elsewhere */
  startTicks: number | null;
}

export function currentProcessIdentity(): ProcessIdentity {
  return { pid: process.pid, host: hostname(), startTicks: processStartTicks(process.pid) };
}

/**
 * 'alive' | 'dead' | 'unknown' (another machine wrote it: a run folder on a
 * shared disk cannot be checked from here).
 */
export function processState(id: ProcessIdentity): 'alive' | 'dead' | 'unknown' {
  if (id.host !== hostname()) return 'unknown';
  try {
    process.kill(id.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (id.startTicks !== null) {
    const now = processStartTicks(id.pid);
    if (now !== null && now !== id.startTicks) return 'dead'; // the pid was reused
  }
  return 'alive';
}
