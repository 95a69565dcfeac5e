// Native pickers for the service's pickPath call.
import { dialog, type BrowserWindow, type OpenDialogOptions } from 'electron';
import type { PickPathRequest } from '../api/contract.js';

export function dialogOptions(req: PickPathRequest): OpenDialogOptions {
  const options: OpenDialogOptions = {
    title: req.title,
    defaultPath: req.defaultPath ?? undefined,
    // createDirectory: macOS lets the user make the export folder in the dialog
    properties: req.kind === 'folder' ? ['openDirectory', 'createDirectory'] : ['openFile'],
  };
  if (req.kind === 'file' && req.extensions && req.extensions.length > 0) {
    options.filters = [
      { name: req.extensions.map((e) => `.${e}`).join(', '), extensions: req.extensions },
      { name: 'All files', extensions: ['*'] },
    ];
  }
  return options;
}

/** A pickPath for the service: the dialog is modal to the window when there is one. */
export function nativePicker(currentWindow: () => BrowserWindow | null): (req: PickPathRequest) => Promise<string | null> {
  return async (req) => {
    const win = currentWindow();
    const options = dialogOptions(req);
    const result = win && !win.isDestroyed() ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
    return result.canceled || result.filePaths.length === 0 ? null : result.filePaths[0];
  };
}
