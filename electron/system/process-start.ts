// When a process started, from the kernel (Linux /proc): what tells the
// process that holds a pid now from an earlier one that had the same number
// (runs/process-alive.ts for a run's lock and record; files/write-leftovers.ts
// for a killed write's temp files).
import { readFileSync } from 'node:fs';

/** Clock ticks after boot when process `pid` started (field 22 of /proc/PID/stat); null elsewhere or when it is gone. */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 overall
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/** Seconds since boot (/proc/uptime, to 1/100 s, the clock process start times are counted on); null where there is none. */
function uptimeSeconds(): number | null {
  try {
    const seconds = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Number.isFinite(seconds) ? seconds : null;
  } catch {
    return null;
  }
}

/**
 * When process `pid` started, in ms since the epoch (Linux), null elsewhere or
 * when it is gone: now less its age, the time since boot less its start in
 * clock ticks (1/100 s: USER_HZ, the kernel's unchanging unit for /proc on
 * every Linux architecture). Within about 20 ms. (Not /proc/stat's btime plus
 * the ticks: btime is whole seconds, and moves when the clock is adjusted.)
 */
export function processStartMs(pid: number): number | null {
  const ticks = processStartTicks(pid);
  const uptime = ticks === null ? null : uptimeSeconds();
  return ticks === null || uptime === null ? null : Date.now() - (uptime - ticks / 100) * 1000;
}
