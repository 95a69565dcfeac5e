// Holding a training run still from the test, so that a control the page
// sends lands in the middle of the run on any machine. Without it a spec that
// clicks Cancel "once step N is shown" races the run: on one core the demo's
// 200 LoRA steps take 1.4 s while the page, sharing that core, still draws the
// early steps, and the run ends before the click (the Cancel button is gone).
//
// The run's training process (its pid is in run.json while it runs) is
// stopped with SIGSTOP once metrics.jsonl, appended by that process before each
// step's event, has the step asked for; `release()` continues it (SIGCONT). A
// stopped process keeps its IPC pipe: a control sent meanwhile waits there and
// is read as soon as it continues. POSIX signals: the suite runs on Linux.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HeldRun {
  /** steps in metrics.jsonl once stopped: the run is at this step or inside the next */
  step: number;
  /** continues the run (once; later calls do nothing) */
  release(): void;
}

const POLL_MS = 5;
const ENDED = ['finished', 'failed', 'cancelled', 'interrupted'];

/** Training steps written to metrics.jsonl (evaluation rows and a half-written last line not counted). */
function stepsWritten(runDir: string): number {
  let text: string;
  try {
    text = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
  } catch {
    return 0;
  }
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a row still being appended
  return lines.filter((l) => {
    const row = JSON.parse(l) as { loss?: unknown; eval_loss?: unknown };
    return typeof row.loss === 'number' && row.eval_loss === undefined;
  }).length;
}

/** run.json's status and pid; null while it is missing (it is replaced atomically, never half-written). */
function record(runDir: string): { status: string; pid: number | null } | null {
  try {
    return JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as { status: string; pid: number | null };
  } catch {
    return null;
  }
}

/** SIGCONT; a process that has exited meanwhile needs none. */
function continueProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/**
 * Stops the run in `runDir` once it has written `step` steps. Fails, saying
 * so, when the run ends first or `timeoutMs` passes.
 */
export async function holdRunAt(runDir: string, step: number, timeoutMs = 60_000): Promise<HeldRun> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = record(runDir);
    if (now && ENDED.includes(now.status)) {
      throw new Error(`the run in ${runDir} ended '${now.status}' after ${stepsWritten(runDir)} steps, before the test could hold it at step ${step}`);
    }
    if (now?.status === 'running' && now.pid !== null && stepsWritten(runDir) >= step) {
      const pid = now.pid;
      process.kill(pid, 'SIGSTOP');
      // it may have ended between the read and the stop: then there is nothing held
      const after = record(runDir);
      if (!after || after.status !== 'running' || after.pid !== pid) {
        continueProcess(pid);
        throw new Error(`the run in ${runDir} ended '${after?.status}' while the test stopped it at step ${step}`);
      }
      let released = false;
      return {
        step: stepsWritten(runDir),
        release: () => {
          if (released) return;
          released = true;
          continueProcess(pid);
        },
      };
    }
    if (Date.now() > deadline) {
      throw new Error(`the run in ${runDir} did not reach step ${step} within ${timeoutMs} ms (status ${now?.status ?? 'no run.json'}, ${stepsWritten(runDir)} steps)`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
