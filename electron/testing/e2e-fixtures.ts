// Shared fixtures for the end-to-end tests of training, evaluation,
// generation, merging and the CLI: tiny random model folders, JSONL files,
// and running the CLI (in process, or the built binary as a child process).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli/dispatch.js';
import { packageRoot } from '../engine/load.js';
import { writeTinyModel, type TinyModel, type TinyModelOptions } from './tiny-model.js';

/** A fresh folder under the OS temp folder. */
export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `ps-${tag}-`));
}

/** A tiny random model folder in a fresh temp folder. */
export async function tinyModel(options: TinyModelOptions = {}): Promise<TinyModel> {
  return writeTinyModel(join(tempDir('model'), 'model'), options);
}

/** Writes one JSON row per line; returns `file`. */
export function writeJsonl(file: string, rows: unknown[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/**
 * A task a tiny model can learn in a few dozen steps: every row continues a
 * fixed 6-token cycle from a different starting point, so the next token is
 * a function of the current one.
 */
export function cycleRows(count: number, length: number, cycle = [40, 41, 42, 43, 44, 45]): { input_ids: number[] }[] {
  return Array.from({ length: count }, (_, r) => ({
    input_ids: Array.from({ length: length - (r % 3) }, (_, t) => cycle[(r + t) % cycle.length]),
  }));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process (same code path as the binary, output captured). */
export async function cli(argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false }, false);
  return { code, stdout, stderr };
}


/** Compiles the TypeScript once (tsc -> dist/) and returns the CLI entry point. */
export function builtCli(): string {
  const main = join(packageRoot(), 'dist', 'electron', 'cli', 'main.js');
  // electron/testing/global-setup.ts compiled it before any test ran.
  if (!existsSync(main)) throw new Error(`${main} is missing; run npm run build:ts`);
  return main;
}

/** Runs the built `peft-studio` binary as a child process. */
export function runBinary(argv: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [builtCli(), ...argv], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The rows of a JSONL file (metrics.jsonl), blank lines skipped. */
export function readJsonLines(file: string): Record<string, number>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
