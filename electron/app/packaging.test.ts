// Packs the desktop app with electron-builder (`npm run package -- --dir`)
// around a stand-in Electron dist (there is no Electron binary here; the
// packer only copies it), then checks that what the app looks for at run
// time is where it looks: app.asar with the main process, preload and
// renderer; the native addon unpacked at the path electron/engine/load.ts
// computes for a packaged app, and loadable; the demo where
// electron/demo/paths.ts looks for it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractFile, listPackage } from '@electron/asar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledDemoFiles } from '../demo/paths.js';
import { addonCandidates } from '../engine/load.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const electronVersion = (JSON.parse(readFileSync(join(root, 'node_modules', 'electron', 'package.json'), 'utf8')) as { version: string }).version;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('npm run package -- --dir', () => {
  let work: string;
  let appDir: string; // linux-unpacked (the folder a user installs)
  let asarPath: string;
  let asarFiles: string[];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'ps-package-'));
    // The stand-in Electron: the executable (renamed by the packer to the
    // app's executableName) and the version file it checks.
    const electronDist = join(work, 'electron-dist');
    mkdirSync(electronDist);
    writeFileSync(join(electronDist, 'electron'), '#!/bin/sh\necho "stand-in Electron"\n');
    chmodSync(join(electronDist, 'electron'), 0o755);
    writeFileSync(join(electronDist, 'version'), electronVersion);
    const out = join(work, 'out');
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'app', 'package.mjs'), '--dir', '--electron-dist', electronDist, '--out', out], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CSC_IDENTITY_AUTO_DISCOVERY: 'false' },
      timeout: 90_000,
    });
    if (r.status !== 0) throw new Error(`package.mjs failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    appDir = join(out, 'linux-unpacked');
    asarPath = join(appDir, 'resources', 'app.asar');
    asarFiles = existsSync(asarPath) ? listPackage(asarPath, { isPack: false }).map((f) => f.replace(/\\/g, '/')) : [];
  }, 120_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.runIf(process.platform === 'linux')('puts the app in app.asar, as built', () => {
    expect(existsSync(asarPath)).toBe(true);
    for (const file of ['dist/electron/app/main.js', 'dist/electron/app/preload.cjs', 'dist/electron/runs/worker.js', 'dist/electron/inference/generate-worker.js', 'dist/renderer/index.html']) {
      expect(asarFiles, file).toContain(`/${file}`);
      expect(sha256(join(root, file)), file).toBe(createHash('sha256').update(extractFile(asarPath, file)).digest('hex'));
    }
    const pkg = JSON.parse(extractFile(asarPath, 'package.json').toString('utf8')) as { main: string; name: string };
    expect(pkg.name).toBe('peft-studio');
    expect(asarFiles).toContain(`/${pkg.main}`);
    // no tests and no test fixtures in the package
    expect(asarFiles.filter((f) => f.endsWith('.test.js') || f.includes('/testing/'))).toEqual([]);
  });

  it.runIf(process.platform === 'linux')('ships the runtime modules and leaves the build-only ones out', () => {
    for (const dep of ['ws', '@huggingface/jinja', '@huggingface/tokenizers']) expect(asarFiles, dep).toContain(`/node_modules/${dep}/package.json`);
    for (const dep of ['cmake-js', 'node-addon-api', 'tar', 'yargs']) expect(asarFiles.some((f) => f.startsWith(`/node_modules/${dep}/`)), dep).toBe(false);
    // every package the runtime modules import is there: ws and the
    // @huggingface packages have no dependencies of their own
    for (const dep of ['ws', '@huggingface/jinja', '@huggingface/tokenizers']) {
      const pkg = JSON.parse(extractFile(asarPath, `node_modules/${dep}/package.json`).toString('utf8')) as { dependencies?: object };
      expect(Object.keys(pkg.dependencies ?? {}), dep).toEqual([]);
    }
  });

  it.runIf(process.platform === 'linux')('renames the Electron executable to the app', () => {
    const exe = join(appDir, 'peft-studio');
    expect(existsSync(exe)).toBe(true);
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    expect(readFileSync(exe, 'utf8')).toContain('stand-in Electron');
  });

  it.runIf(process.platform === 'linux')('unpacks the addon where load.ts looks from app.asar, and it loads', () => {
    const saved = process.env.PEFT_STUDIO_ADDON;
    delete process.env.PEFT_STUDIO_ADDON;
    let found: string | undefined;
    try {
      found = addonCandidates(asarPath).find((p) => existsSync(p));
    } finally {
      if (saved !== undefined) process.env.PEFT_STUDIO_ADDON = saved;
    }
    expect(found).toBe(join(`${asarPath}.unpacked`, 'native-addon', 'build', 'Release', 'peft_studio.node'));
    expect(sha256(found!)).toBe(sha256(join(root, 'native-addon', 'build', 'Release', 'peft_studio.node')));
    // the asar lists it as unpacked, so Electron's fs redirects there too
    expect(asarFiles).toContain('/native-addon/build/Release/peft_studio.node');
    const addon = createRequire(import.meta.url)(found!) as Record<string, unknown>;
    expect(Object.keys(addon).length).toBeGreaterThan(0);
  });

  it.runIf(process.platform === 'linux')('puts the demo where paths.ts looks from app.asar, as plain files', () => {
    const demo = bundledDemoFiles(join(asarPath, 'dist', 'electron', 'demo'));
    expect(demo.dir).toBe(join(appDir, 'resources', 'demo'));
    const source = bundledDemoFiles(join(root, 'electron', 'demo'));
    for (const key of ['taskTrain', 'taskEval', 'baseSample', 'replay', 'buildInfo'] as const) {
      expect(sha256(demo[key]), key).toBe(sha256(source[key]));
    }
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(sha256(join(demo.model, file)), file).toBe(sha256(join(source.model, file)));
    }
    // not also inside the archive
    expect(asarFiles.some((f) => f.startsWith('/resources/'))).toBe(false);
  });
});
