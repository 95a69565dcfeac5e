// Runs of the bundled demo model trained through a page test's real
// service, for the pages that show past runs (Runs): each one started as
// the app starts it and awaited to its end.
import type { ApiEvent, DemoPaths, StartedRun } from '../../../electron/api/contract.js';
import type { StudioService } from '../../../electron/service/service.js';
import { until } from './dom-waits.js';

/** Trains LoRA on the demo's task data to its end (threads 1 unless `hyper` says) and resolves with the run's folder. */
export async function finishedDemoRun(service: StudioService, demo: DemoPaths, hyper: Record<string, unknown>): Promise<string> {
  const data = demo.datasets.find((d) => d.name === 'task-train')!.path;
  let dir = '';
  let finished = false;
  const off = service.onEvent((e: ApiEvent) => void (e.type === 'run' && e.runDir === dir && e.event.type === 'finished' && (finished = true)));
  try {
    const r = await service.call('startRun', { model: demo.model, data, method: 'lora', hyper: { threads: 1, ...hyper } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    dir = (r.value as StartedRun).runDir;
    await until(`${dir} to finish`, () => finished);
  } finally {
    off();
  }
  return dir;
}
