// Which production modules the desktop package leaves out: those reachable
// only through the build-time dependencies (cmake-js, node-addon-api),
// resolved through package-lock.json the way Node resolves them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { buildOnlyExclusions, buildOnlyModules } from '../../scripts/app/build-only-modules.mjs';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function projectWithLock(packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; dev?: boolean }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-lock-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages }));
  return dir;
}

describe('buildOnlyModules', () => {
  it('drops what only the build tools need and keeps what the runtime shares with them', () => {
    const dir = projectWithLock({
      '': { dependencies: { 'cmake-js': '8', 'node-addon-api': '8', ws: '8', runtime: '1' } },
      'node_modules/cmake-js': { dependencies: { tar: '7', semver: '7', debug: '4' } },
      'node_modules/node-addon-api': {},
      'node_modules/tar': { dependencies: { minipass: '7' } },
      'node_modules/minipass': {},
      'node_modules/semver': {},
      'node_modules/debug': { dependencies: { ms: '2' } },
      'node_modules/ms': {},
      'node_modules/ws': {},
      // the runtime needs semver too (so it stays), and its own nested debug (a different copy)
      'node_modules/runtime': { dependencies: { semver: '7', debug: '3' } },
      'node_modules/runtime/node_modules/debug': { optionalDependencies: { ms: '2' } },
      'node_modules/vitest': { dev: true },
    });
    expect(buildOnlyModules(dir)).toEqual(['node_modules/cmake-js', 'node_modules/debug', 'node_modules/minipass', 'node_modules/node-addon-api', 'node_modules/tar']);
    expect(buildOnlyExclusions(dir)).toContain('!node_modules/tar{,/**/*}');
  });

  it('on this project: cmake-js and its tree out, the runtime dependencies in', () => {
    const modules = buildOnlyModules(join(import.meta.dirname, '..', '..')) as string[];
    expect(modules).toContain('node_modules/cmake-js');
    expect(modules).toContain('node_modules/node-addon-api');
    for (const runtime of ['node_modules/ws', 'node_modules/@huggingface/jinja', 'node_modules/@huggingface/tokenizers']) expect(modules).not.toContain(runtime);
  });
});
