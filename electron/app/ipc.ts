// The Electron transport: moves calls from the window to the service and the
// service's events to the window. No business logic: the service validates
// every request; here only the sender and the method name are checked.
import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { IPC_CALL, IPC_EVENT, isApiMethod, type ApiEvent, type ApiMethod, type ApiResult } from '../api/contract.js';
import type { StudioService } from '../service/service.js';
import { senderRefusal } from './origin.js';

function refusalOf(event: IpcMainInvokeEvent, win: BrowserWindow): string | null {
  const contents = win.isDestroyed() ? null : win.webContents;
  const frame = event.senderFrame;
  return senderRefusal({
    senderId: event.sender.id,
    windowContentsId: contents ? contents.id : null,
    frameUrl: frame ? frame.url : null,
    // a frame without a parent is the top frame of the sender (checked to be our window)
    isMainFrame: frame !== null && frame.parent === null,
  });
}

/**
 * Sends one event to the window (dropped when the window is gone): the
 * service's events, and the app menu's commands ({ type: 'menu' }), which
 * the renderer carries out with its usual pick flow.
 */
export function sendToWindow(win: BrowserWindow, event: ApiEvent): void {
  if (!win.isDestroyed()) win.webContents.send(IPC_EVENT, event);
}

/** Connects the window to the service; returns the disconnect. */
export function connectIpc(service: StudioService, win: BrowserWindow): () => void {
  ipcMain.handle(IPC_CALL, async (event, method: unknown, request: unknown): Promise<ApiResult<ApiMethod>> => {
    const refusal = refusalOf(event, win);
    if (refusal) {
      console.warn(`peft-studio: refused an IPC call: ${refusal}`);
      return { ok: false, error: { code: 'forbidden', message: `refused: ${refusal}` } };
    }
    if (!isApiMethod(method)) {
      return { ok: false, error: { code: 'invalid', message: `unknown API method ${JSON.stringify(method)}` } };
    }
    return service.call(method, request);
  });
  const stopEvents = service.onEvent((e) => sendToWindow(win, e));
  return () => {
    stopEvents();
    ipcMain.removeHandler(IPC_CALL);
  };
}
