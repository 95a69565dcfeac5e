// Where a child process's compiled script is. A child needs JavaScript:
// from dist/ (the app, the CLI) it sits beside the module that forks it;
// when vitest runs the TypeScript sources, the package's dist/ copy is used.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../engine/load.js';

/**
 * The compiled `file` of dist/electron/<folder>/, for the module at
 * `callerUrl` (its import.meta.url); throws, naming `what` and the build
 * step, when it has not been built.
 */
export function compiledWorker(callerUrl: string, folder: string, file: string, what: string): string {
  const beside = join(dirname(fileURLToPath(callerUrl)), file);
  if (callerUrl.endsWith('.js') && existsSync(beside)) return beside;
  const built = join(packageRoot(), 'dist', 'electron', folder, file);
  if (!existsSync(built)) {
    throw new Error(`peft-studio: the compiled ${what} ${built} is missing; run \`npm run build:ts\` (tsc) first`);
  }
  return built;
}
