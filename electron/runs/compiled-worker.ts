// A worker child process (a training run, the try page's generation): where
// its compiled script is, and how it is forked. A child needs JavaScript:
// from dist/ (the app, the CLI) it sits beside the module that forks it;
// when vitest runs the TypeScript sources, the package's dist/ copy is used.
import { fork, type ChildProcess } from 'node:child_process';
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

/** How the child is started. Under Electron: the app's binary as Node (electronForkSettings). */
export interface ForkSettings {
  /** the runtime that runs the worker (default: this process's) */
  execPath?: string;
  /** runtime flags for the child (default: none; the parent's, e.g. a test runner's loaders, are not inherited) */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** the compiled worker module (default: the caller's own worker) */
  workerPath?: string;
}

/** Fork settings for Electron's main process: its binary runs the worker as plain Node. */
export function electronForkSettings(): ForkSettings {
  return { execPath: process.execPath, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } };
}

/** Forks the worker (settings.workerPath, else `defaultPath()`): JSON messages over IPC, its output piped. */
export function forkWorker(settings: ForkSettings, defaultPath: () => string): ChildProcess {
  return fork(settings.workerPath ?? defaultPath(), [], {
    execPath: settings.execPath,
    execArgv: settings.execArgv ?? [],
    env: settings.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
}
