// Reading one WebSocket message as a ClientFrame. Three outcomes:
// - a call to make;
// - a frame that has a numeric id but is otherwise wrong: answered with an
//   'invalid' error result under that id (the socket stays usable);
// - a frame that cannot be answered at all (not JSON, not an object, no
//   numeric id): a protocol violation, the socket is closed with 1008.
// Whether the method exists and the request is well formed is the service's
// job (it validates every call); the transport only checks the envelope.
import type { ApiErrorBody } from '../api/contract.js';

export type ParsedFrame =
  | { kind: 'call'; id: number; method: string; request: unknown }
  | { kind: 'reject'; id: number; error: ApiErrorBody }
  | { kind: 'violation'; reason: string };

export function parseClientFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'violation', reason: 'frame is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'violation', reason: 'frame is not a JSON object' };
  }
  const frame = value as Record<string, unknown>;
  const id = frame.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
    return { kind: 'violation', reason: 'frame has no integer id' };
  }
  if (typeof frame.method !== 'string') {
    return { kind: 'reject', id, error: { code: 'invalid', field: 'method', message: 'the call names no method (a string)' } };
  }
  return { kind: 'call', id, method: frame.method, request: frame.request };
}
