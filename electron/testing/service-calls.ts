// The service tests' calls on a StudioService: the value of a call that must
// succeed, the error of one that must fail, a run's events and its end.
import type { ApiErrorBody, ApiEvent, ApiMethod, RunEvent } from '../api/contract.js';
import type { StudioService } from '../service/service.js';

/** The call's value; a failure throws with the error body. */
export async function callOk<T>(service: StudioService, method: ApiMethod, request: unknown): Promise<T> {
  const result = await service.call(method, request);
  if (!result.ok) throw new Error(`${method} failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}

/** The call's error body; a success throws with the value. */
export async function callRefused(service: StudioService, method: ApiMethod, request: unknown): Promise<ApiErrorBody> {
  const result = await service.call(method, request);
  if (result.ok) throw new Error(`${method} was expected to fail, got ${JSON.stringify(result.value)}`);
  return result.error;
}

/** The events of run `runId` among `events` (everything the service emitted). */
export function runEventsOf(events: readonly ApiEvent[], runId: string): RunEvent[] {
  return events.filter((e): e is Extract<ApiEvent, { type: 'run' }> => e.type === 'run' && e.runId === runId).map((e) => e.event);
}

/** The end event of run `runId` (finished, cancelled or failed), once `events` holds it. */
export function runEnd(service: StudioService, events: readonly ApiEvent[], runId: string): Promise<RunEvent> {
  return new Promise((resolve) => {
    const check = () => {
      const end = runEventsOf(events, runId).find((e) => e.type === 'finished' || e.type === 'cancelled' || e.type === 'failed');
      if (end) {
        off();
        resolve(end);
      }
    };
    const off = service.onEvent(check);
    check();
  });
}
