// Command dispatch and error reporting, separate from main.ts so tests can
// run the whole CLI in process. Exit codes: 0 success, 1 the command failed,
// 2 the command line was wrong.
import { formatHelp, parseArgs, UsageError } from './args.js';
import type { CliIO, Command } from './command.js';
import { resolveModelArgs } from './model-arg.js';
import { resolveDataArgs } from './data-arg.js';
import { dataCommand } from './commands/data.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { inspectCommand } from './commands/inspect.js';
import { mergeCommand } from './commands/merge.js';
import { modelsCommand } from './commands/models.js';
import { runsCommand } from './commands/runs.js';
import { serveCommand } from './commands/serve.js';
import { tokenCacheCommand } from './commands/token-cache.js';
import { trainCommand } from './commands/train.js';

export const PROGRAM = 'peft-studio';

export const COMMANDS: readonly Command[] = [inspectCommand, trainCommand, evalCommand, generateCommand, mergeCommand, exportCommand, demoCommand, runsCommand, dataCommand, tokenCacheCommand, serveCommand, modelsCommand];

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  const lines = [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Fine-tune Llama-family models on the CPU: LoRA, QLoRA (4-bit NF4 base), prompt and prefix tuning, or full fine-tuning.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
    '',
    `Run '${PROGRAM} <command> --help' for the options of a command.`,
    'A model (--model, inspect\'s <modelDir>) may be one in the Hugging Face cache: org/name, or its models--org--name folder;',
    'the revision refs/main names is used. Nothing is downloaded.',
    'Set PEFT_STUDIO_DEBUG=1 to print stack traces of errors.',
  ];
  return lines.join('\n') + '\n';
}

/** One clear line; messages that already carry the program name keep it once. */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const text = message.startsWith(`${PROGRAM}: `) ? message.slice(PROGRAM.length + 2) : message;
  return `${PROGRAM}: ${text.replace(/\s*\n\s*/g, ' ')}\n`;
}

export async function runCli(argv: readonly string[], io: CliIO, debug = process.env.PEFT_STUDIO_DEBUG === '1'): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(globalHelp());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    io.stderr(errorLine(`unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.spec.name).join(', ')} (see --help)`));
    return EXIT_USAGE;
  }
  try {
    const args = parseArgs(command.spec, rest);
    if (args.help) {
      io.stdout(formatHelp(command.spec, PROGRAM));
      return EXIT_OK;
    }
    // a model in the Hugging Face cache (org/name, models--org--name) becomes its snapshot folder here, for every
    // command; a dataset there (org/name) too
    await command.run(resolveDataArgs(command.spec, await resolveModelArgs(command.spec, args, io), io), io);
    return EXIT_OK;
  } catch (error) {
    io.stderr(errorLine(error));
    if (debug && error instanceof Error && error.stack) io.stderr(error.stack + '\n');
    if (error instanceof UsageError) {
      io.stderr(`Run '${PROGRAM} ${name} --help' for usage.\n`);
      return EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
}
