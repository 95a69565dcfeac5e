// The preload: the page's only way out. It exposes exactly
// window.peftStudio = { call, onEvent } (PreloadBridge in the contract) and
// never ipcRenderer itself, so the page can reach one channel with one shape.
//
// CommonJS (.cts -> .cjs) because Electron runs sandboxed preloads as
// scripts, and a sandboxed preload can require only 'electron' and a few
// built-ins, not our own modules: the channel names are therefore written
// here, typed with the contract's constants so tsc fails if they drift.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { ApiEvent, ApiMethod, ApiResult, IPC_CALL, IPC_EVENT, PreloadBridge } from '../api/contract.js';

const CALL_CHANNEL: typeof IPC_CALL = 'peft-studio:call';
const EVENT_CHANNEL: typeof IPC_EVENT = 'peft-studio:event';

const bridge: PreloadBridge = {
  call(method: ApiMethod, request: unknown): Promise<ApiResult<ApiMethod>> {
    return ipcRenderer.invoke(CALL_CHANNEL, method, request) as Promise<ApiResult<ApiMethod>>;
  },
  onEvent(listener: (event: ApiEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('peftStudio.onEvent needs a function');
    // The IpcRendererEvent (with its sender) never reaches the page.
    const relay = (_event: IpcRendererEvent, apiEvent: ApiEvent): void => listener(apiEvent);
    ipcRenderer.on(EVENT_CHANNEL, relay);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, relay);
    };
  },
};

contextBridge.exposeInMainWorld('peftStudio', bridge);
