#!/usr/bin/env node
// The `peft-studio` executable: runs one command and exits with its code.
import { processIO } from './command.js';
import { runCli } from './dispatch.js';

process.exitCode = await runCli(process.argv.slice(2), processIO);
