#!/usr/bin/env node
// The `peft-studio` executable: runs one command and exits with its code.
import { CLOSED_STDERR_EXIT, CLOSED_STDOUT_EXIT, endQuietlyWhenClosed } from './closed-pipe.js';
import { processIO } from './command.js';
import { runCli } from './dispatch.js';

endQuietlyWhenClosed(process.stdout, CLOSED_STDOUT_EXIT);
endQuietlyWhenClosed(process.stderr, CLOSED_STDERR_EXIT);
process.exitCode = await runCli(process.argv.slice(2), processIO);
