// The Electron transport: the preload's bridge already carries call/result
// pairs over IPC; this only turns results into values or ApiErrors.
import type { ApiMethod, ApiResult, ApiTransport, PreloadBridge } from '../../../electron/api/contract.js';
import { unwrap } from './unwrap.js';

export function createIpcTransport(bridge: PreloadBridge): ApiTransport {
  return {
    async call(method, request) {
      const result = (await bridge.call(method, request)) as ApiResult<typeof method & ApiMethod>;
      return unwrap(result);
    },
    onEvent(listener) {
      return bridge.onEvent(listener);
    },
  };
}
