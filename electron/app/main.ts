// The Electron main process: one instance, one window, one studio service.
// The service (electron/service) does all the work; this file wires it to
// the window (ipc.ts), the native dialogs (dialogs.ts) and the menu, and
// closes it (checkpointing live runs) before the app quits.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, dialog, Menu, session, shell } from 'electron';
import { ensureStudioHome } from '../runs/run-index.js';
import { createStudioService, type StudioService } from '../service/service.js';
import { nativePicker } from './dialogs.js';
import { connectIpc, sendToWindow } from './ipc.js';
import { buildAppMenu } from './menu.js';
import { registerAppScheme, serveRenderer } from './protocol.js';
import { applySecurityChecklist, hardenSession } from './security.js';
import { createMainWindow } from './window.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/electron/app (inside app.asar when packaged)
const PRELOAD = join(here, 'preload.cjs');
const RENDERER_DIR = join(here, '..', '..', 'renderer'); // dist/renderer

/** Live runs get this long to write their checkpoint when the app quits. */
const CLOSE_TIMEOUT_MS = 60_000;

let win: BrowserWindow | null = null;
let service: StudioService | null = null;
let disconnect: (() => void) | null = null;
let closing: 'no' | 'in-progress' | 'done' = 'no';

// Before 'ready': the scheme's privileges and the checklist's global parts.
registerAppScheme();
applySecurityChecklist();

function openWindow(studio: StudioService): void {
  const w = createMainWindow(PRELOAD);
  win = w;
  disconnect = connectIpc(studio, w);
  w.on('closed', () => {
    disconnect?.();
    disconnect = null;
    win = null;
  });
}

async function openRunsFolder(): Promise<void> {
  const home = await ensureStudioHome();
  const runs = join(home, 'runs');
  const error = await shell.openPath(existsSync(runs) ? runs : home);
  if (error) dialog.showErrorBox('PEFT Studio', `Could not open the runs folder: ${error}`);
}

function showAbout(): void {
  const options = {
    type: 'info' as const,
    title: 'About PEFT Studio',
    message: `PEFT Studio ${app.getVersion()}`,
    detail: `Fine-tune Llama-family models with LoRA, QLoRA, prompt and prefix tuning on your own machine.\n\nElectron ${process.versions.electron} · Node ${process.versions.node}`,
  };
  void (win ? dialog.showMessageBox(win, options) : dialog.showMessageBox(options));
}

async function start(): Promise<void> {
  hardenSession(session.defaultSession);
  serveRenderer(session.defaultSession, RENDERER_DIR);
  const studio = createStudioService({ mode: 'electron', allowedRoots: null, pickPath: nativePicker(() => win) });
  service = studio;
  Menu.setApplicationMenu(
    buildAppMenu(
      {
        openModel: () => win && sendToWindow(win, { type: 'menu', action: 'openModel' }),
        openDataset: () => win && sendToWindow(win, { type: 'menu', action: 'openDataset' }),
        openRunsFolder: () => void openRunsFolder(),
        about: showAbout,
      },
      { dev: !app.isPackaged, mac: process.platform === 'darwin' },
    ),
  );
  openWindow(studio);
  app.on('activate', () => {
    if (!win && closing === 'no') openWindow(studio); // macOS: dock click with no window
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit(); // another instance runs; it is focused by its 'second-instance' handler
} else {
  app.on('second-instance', () => {
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });
  // One window holds the whole app: closing it quits, on macOS too (live
  // runs would otherwise keep training with no way to see them).
  app.on('window-all-closed', () => app.quit());
  app.on('before-quit', (event) => {
    if (closing === 'done' || !service) return;
    event.preventDefault();
    if (closing === 'in-progress') return;
    closing = 'in-progress';
    const studio = service;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
    void Promise.race([studio.close(), timeout])
      .catch((err: unknown) => console.error('peft-studio: closing the service failed:', err))
      .finally(() => {
        closing = 'done';
        app.quit();
      });
  });
  app.whenReady().then(start).catch((err: unknown) => {
    dialog.showErrorBox('PEFT Studio could not start', String(err instanceof Error ? err.stack ?? err.message : err));
    app.exit(1);
  });
}
