// The compiled preload (dist/electron/app/preload.cjs), run the way Electron
// runs a sandboxed preload: its source wrapped in
// (function(require, process, Buffer, global, setImmediate, clearImmediate, exports, module) {...})
// and evaluated in a fresh context. There is no Electron binary here, so
// `require('electron')` answers with a recorder of what the preload does
// with contextBridge and ipcRenderer (a sandboxed preload may require
// nothing but 'electron' and a few built-ins; anything else throws, as in Electron).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createContext, Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { IPC_CALL, IPC_EVENT } from '../api/contract.js';

const PRELOAD = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'electron', 'app', 'preload.cjs');

type Listener = (...args: unknown[]) => void;

function runPreload() {
  if (!existsSync(PRELOAD)) throw new Error(`${PRELOAD} is missing: tsc must compile electron/app/preload.cts (tsconfig "include" needs electron/**/*.cts)`);
  const exposed = new Map<string, unknown>();
  const invoked: unknown[][] = [];
  const listeners = new Map<string, Set<Listener>>();
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
    ipcRenderer: {
      invoke: async (...args: unknown[]) => {
        invoked.push(args);
        return { ok: true, value: { echoed: args } };
      },
      on: (channel: string, l: Listener) => void (listeners.get(channel) ?? listeners.set(channel, new Set()).get(channel)!).add(l),
      removeListener: (channel: string, l: Listener) => void listeners.get(channel)?.delete(l),
    },
  };
  const sandboxRequire = (name: string): unknown => {
    required.push(name);
    if (name === 'electron') return electron;
    throw new Error(`module not found: ${name}`); // what a sandboxed preload gets for its own modules
  };
  const wrapped = `(function(require, process, Buffer, global, setImmediate, clearImmediate, exports, module) {\n${readFileSync(PRELOAD, 'utf8')}\n})`;
  const fn = new Script(wrapped, { filename: PRELOAD }).runInContext(createContext({})) as (...args: unknown[]) => void;
  const exports = {};
  fn(sandboxRequire, {}, undefined, {}, undefined, undefined, exports, { exports });
  const deliver = (channel: string, ...args: unknown[]) => {
    for (const l of listeners.get(channel) ?? []) l(...args);
  };
  return { electron, exposed, invoked, listeners, required, deliver };
}

describe('preload (sandboxed)', () => {
  it('requires only electron and exposes exactly window.peftStudio = { call, onEvent }', () => {
    const p = runPreload();
    expect(p.required).toEqual(['electron']);
    expect([...p.exposed.keys()]).toEqual(['peftStudio']);
    const bridge = p.exposed.get('peftStudio') as Record<string, unknown>;
    expect(Object.keys(bridge).sort()).toEqual(['call', 'onEvent']);
    expect(Object.values(bridge).every((v) => typeof v === 'function')).toBe(true);
    // nothing of ipcRenderer is handed out: neither the object nor its methods
    const ipc = p.electron.ipcRenderer;
    for (const value of Object.values(bridge)) expect([ipc, ipc.invoke, ipc.on, ipc.removeListener]).not.toContain(value);
  });

  it('call invokes the contract channel with the method and request', async () => {
    const p = runPreload();
    const bridge = p.exposed.get('peftStudio') as { call(m: string, r: unknown): Promise<unknown> };
    const result = await bridge.call('inspectModel', { model: '/m' });
    expect(p.invoked).toEqual([[IPC_CALL, 'inspectModel', { model: '/m' }]]);
    expect(result).toEqual({ ok: true, value: { echoed: [IPC_CALL, 'inspectModel', { model: '/m' }] } });
  });

  it('onEvent passes the event alone (never the IpcRendererEvent) and unsubscribes', () => {
    const p = runPreload();
    const bridge = p.exposed.get('peftStudio') as { onEvent(l: (e: unknown) => void): () => void };
    const seen: unknown[][] = [];
    const off = bridge.onEvent((...args) => seen.push(args));
    const ipcEvent = { sender: { send() {} }, senderId: 0 };
    const apiEvent = { type: 'exportLog', out: '/o', line: 'done' };
    p.deliver(IPC_EVENT, ipcEvent, apiEvent);
    expect(seen).toEqual([[apiEvent]]);
    off();
    p.deliver(IPC_EVENT, ipcEvent, apiEvent);
    expect(seen).toHaveLength(1);
    expect(p.listeners.get(IPC_EVENT)?.size).toBe(0);
    // @ts-expect-error a string where the listener goes: the bridge's own refusal is tested
    expect(() => bridge.onEvent('not a function')).toThrow(/needs a function/);
  });
});
