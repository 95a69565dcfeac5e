#!/usr/bin/env node
// npm run package [-- options]: packs the desktop app for this platform with
// electron-builder (config: build/electron-builder.config.cjs). It builds
// nothing itself: run `npm run build` (and the native addon) first.
//
//   --dir                 unpacked app folder only (no AppImage/deb/dmg/installer)
//   --electron-dist DIR   use this Electron dist (a folder like
//                         node_modules/electron/dist, the default when it
//                         exists) instead of downloading one
//   --out DIR             output folder (default: release/)
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOnlyExclusions } from './build-only-modules.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

function usage(message) {
  console.error(`package: ${message}\nusage: npm run package -- [--dir] [--electron-dist DIR] [--out DIR]`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { dir: false, electronDist: null, out: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dir') options.dir = true;
    else if (arg === '--electron-dist' || arg === '--out') {
      const value = argv[++i];
      if (!value || value.startsWith('--')) usage(`${arg} needs a folder`);
      options[arg === '--out' ? 'out' : 'electronDist'] = resolve(value);
    } else usage(`unknown option ${arg}`);
  }
  return options;
}

/** What must exist before packing, and how to make it. */
const PREREQUISITES = [
  ['dist/electron/app/main.js', 'npm run build:ts'],
  ['dist/electron/app/preload.cjs', 'npm run build:ts'],
  ['dist/electron/runs/worker.js', 'npm run build:ts'],
  ['dist/electron/inference/generate-worker.js', 'npm run build:ts'],
  ['dist/renderer/index.html', 'npm run build:renderer'],
  ['native-addon/build/Release/peft_studio.node', 'npm run build:native'],
  ['resources/demo/model/config.json', 'node scripts/demo/build-demo-model.mjs'],
];

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const missing = PREREQUISITES.filter(([file]) => !existsSync(join(root, file)));
  if (missing.length > 0) {
    console.error('package: missing build outputs:\n' + missing.map(([f, how]) => `  ${f}  (make it with: ${how})`).join('\n'));
    process.exit(1);
  }
  if (options.electronDist && !existsSync(options.electronDist)) usage(`--electron-dist ${options.electronDist} does not exist`);

  const { build, Platform } = require('electron-builder');
  const config = { ...require(join(root, 'build', 'electron-builder.config.cjs')) };
  // cmake-js and co. only build the addon: leave them (and what only they need) out
  config.files = [...config.files, ...buildOnlyExclusions(root)];
  config.electronVersion = require(join(root, 'node_modules', 'electron', 'package.json')).version;
  // Without --electron-dist: the Electron npm installed, when its binary is
  // there (same version, no second download); else electron-builder downloads it.
  const installed = join(root, 'node_modules', 'electron', 'dist');
  const electronDist = options.electronDist ?? (existsSync(installed) ? installed : null);
  if (electronDist) config.electronDist = electronDist;
  if (options.out) config.directories = { ...config.directories, output: options.out };

  const platform = Platform.current();
  const targets = options.dir ? platform.createTarget('dir') : platform.createTarget();
  const started = Date.now();
  const artifacts = await build({ projectDir: root, targets, config, publish: 'never' });
  const out = config.directories.output;
  console.log(`package: ${options.dir ? 'unpacked app' : artifacts.join(', ')} in ${resolve(root, out)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

main().catch((err) => {
  console.error(`package: ${err?.stack ?? err}`);
  process.exit(1);
});
