#!/usr/bin/env node
// npm run app: starts the desktop app from this checkout (run `npm run build`
// first; this builds nothing). The npm package `electron` (as of the version pinned here)
// fetches its binary on first use, not at install, so `npm ci` works offline;
// where the binary is missing this says how to fetch it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const electronPkg = join(root, 'node_modules', 'electron');

/** The Electron executable, as node_modules/electron/path.txt names it, or null. */
function electronBinary() {
  const pathTxt = join(electronPkg, 'path.txt');
  if (!existsSync(pathTxt)) return null;
  const binary = join(electronPkg, 'dist', readFileSync(pathTxt, 'utf8').trim());
  return existsSync(binary) ? binary : null;
}

const binary = electronBinary();
if (!binary) {
  console.error(
    'The Electron binary is not installed (node_modules/electron/dist is missing: its download was skipped or failed).\n' +
      'On a machine with internet access run:  npx install-electron\n' +
      'Or use the browser mode, which needs no Electron:  npm run serve',
  );
  process.exit(1);
}
for (const file of ['dist/electron/app/main.js', 'dist/electron/app/preload.cjs', 'dist/renderer/index.html']) {
  if (!existsSync(join(root, file))) {
    console.error(`${file} is missing: run \`npm run build\` first.`);
    process.exit(1);
  }
}
// ELECTRON_RUN_AS_NODE left over in the shell would start plain Node instead of the app.
const env = { ...process.env, ELECTRON_RUN_AS_NODE: undefined };
const child = spawn(binary, ['.', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
