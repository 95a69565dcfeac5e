// Vitest global setup: the tests that fork the training worker or run the
// built CLI need dist/ to match the sources. `npm test` compiles first; a
// direct `npx vitest` after an edit would otherwise run stale JavaScript, so
// compile here once per test run — only when a source is newer than dist/.
// When the run ends, its temp folder goes (run-temp.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeRunTemp } from './run-temp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else if ((entry.name.endsWith('.ts') || entry.name.endsWith('.cts')) && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): () => void {
  const marker = join(root, 'dist', 'electron', 'cli', 'main.js');
  if (!existsSync(marker) || statSync(marker).mtimeMs < newestSourceMtime(join(root, 'electron'))) {
    // Type errors elsewhere in the tree must not hide the CLI: tsc still emits.
    const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
    if (!existsSync(marker)) throw new Error(`tsc did not produce ${marker}:\n${r.stdout}${r.stderr}`);
  }
  return removeRunTemp;
}
