// A transport whose events the test sends itself, for the page states that
// follow a run's live events (Train, Runs): what the service would say, at the
// moment the test chooses. Calls go to `call`; by default every call fails
// as the service's does for a run that has not written its metrics yet.
import type { ApiEvent, ApiTransport } from '../../../electron/api/contract.js';

type Call = (method: string, request: unknown) => Promise<unknown>;

const noRecordYet: Call = async () => {
  throw new Error('the run has not written its metrics yet');
};

export function scriptedTransport(call: Call = noRecordYet): { api: ApiTransport; send: (e: ApiEvent) => void } {
  const listeners = new Set<(e: ApiEvent) => void>();
  const api: ApiTransport = {
    call: call as ApiTransport['call'],
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { api, send: (e) => listeners.forEach((l) => l(e)) };
}
