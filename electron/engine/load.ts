// The one place that loads the native addon. Everything else imports the
// typed handle from here, so the binary's location and failure message live in
// one spot.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeAddon } from './native.js';

const ADDON_FILE = 'peft_studio.node';

const ASAR = 'app.asar';

/**
 * The package root, found by walking up from this file (works from electron/
 * and dist/electron/). In the packaged desktop app it is resources/app.asar.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (basename(dir) === ASAR) return dir;
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native-addon'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('peft-studio: cannot find the package root (package.json beside native-addon/)');
    dir = up;
  }
}

/**
 * Where the addon may be: PEFT_STUDIO_ADDON overrides; in the packaged app,
 * app.asar.unpacked beside the archive (a native library cannot be loaded
 * from inside an archive; electron-builder's asarUnpack puts it there); then
 * the cmake-js build folder.
 */
export function addonCandidates(root = packageRoot()): string[] {
  const fromEnv = process.env.PEFT_STUDIO_ADDON;
  const unpacked = basename(root) === ASAR ? [join(`${root}.unpacked`, 'native-addon', 'build', 'Release', ADDON_FILE)] : [];
  return [
    ...(fromEnv ? [resolve(fromEnv)] : []),
    ...unpacked,
    join(root, 'native-addon', 'build', 'Release', ADDON_FILE),
    join(root, 'native-addon', 'build', ADDON_FILE),
  ];
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `peft-studio: the native engine is not built (looked for ${candidates.join(', ')}). ` +
        'Run `npm run build:native` (needs CMake and a C++17 compiler).',
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as NativeAddon;
  return cached;
}
