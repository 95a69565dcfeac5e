// The application menu. File's entries ask the renderer to run its own pick
// flow (the same as its buttons), so the menu and the page never disagree
// about what is open.
import { Menu, type MenuItemConstructorOptions } from 'electron';

export interface MenuCommands {
  openModel(): void;
  openDataset(): void;
  openRunsFolder(): void;
  about(): void;
}

export function buildAppMenu(commands: MenuCommands, options: { dev: boolean; mac: boolean }): Menu {
  const template: MenuItemConstructorOptions[] = [];
  if (options.mac) template.push({ role: 'appMenu' });
  template.push(
    {
      label: '&File',
      submenu: [
        { label: 'Open model folder…', accelerator: 'CmdOrCtrl+O', click: () => commands.openModel() },
        { label: 'Open dataset…', accelerator: 'CmdOrCtrl+Shift+O', click: () => commands.openDataset() },
        { type: 'separator' },
        options.mac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: '&View',
      submenu: [
        // Reloading drops the wizard's state; developers only.
        ...(options.dev
          ? ([{ role: 'reload' }, { role: 'forceReload' }, { role: 'toggleDevTools' }, { type: 'separator' }] as MenuItemConstructorOptions[])
          : []),
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    {
      label: '&Help',
      submenu: [
        { label: 'About PEFT Studio', click: () => commands.about() },
        { label: 'Open runs folder', click: () => commands.openRunsFolder() },
      ],
    },
  );
  return Menu.buildFromTemplate(template);
}
