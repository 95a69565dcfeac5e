// What every CLI command provides: its flag spec (for parsing and --help) and
// a run function. Output goes through CliIO so tests can run commands in
// process and read what they print.
import type { CommandSpec, ParsedArgs } from './args.js';

export interface CliIO {
  /** results (JSON, generated text) */
  stdout(text: string): void;
  /** progress and notices */
  stderr(text: string): void;
  /** whether stderr is a terminal (progress rewrites its line in place) */
  stderrIsTTY: boolean;
}

export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, io: CliIO): Promise<void>;
}

export const processIO: CliIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  stderrIsTTY: Boolean(process.stderr.isTTY),
};
