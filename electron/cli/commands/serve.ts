// `peft-studio serve`: the studio in a browser, for headless machines. Serves
// the built renderer and the API (WebSocket) on one port, bound to 127.0.0.1
// unless told otherwise, behind a random token printed in the URL. Runs until
// Ctrl-C / SIGTERM, then cancels live runs with a checkpoint and exits 0.
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { UsageError, type CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { createStudioService } from '../../service/service.js';
import { isLoopbackHost } from '../../serve/loopback.js';
import { startServer } from '../../serve/server.js';
import { waitForStopSignal } from '../../serve/signals.js';
import { checkRendererBuilt, rendererDir } from '../../serve/static.js';

export const DEFAULT_PORT = 8686;
export const DEFAULT_HOST = '127.0.0.1';
/** The one stdout line (scripts and the e2e tests parse it). */
export const SERVING_PREFIX = 'PEFT Studio is serving at ';

export const serveSpec: CommandSpec = {
  name: 'serve',
  summary: 'Open the studio in a browser (for headless machines): serves the UI and API on a local port behind a token.',
  positionals: [],
  flags: [
    { name: 'port', kind: 'int', min: 0, max: 65535, valueName: 'N', help: 'port to listen on (0: any free port)', defaultText: String(DEFAULT_PORT) },
    { name: 'host', kind: 'string', valueName: 'H', help: 'address to bind; anything but loopback is reachable from the network', defaultText: DEFAULT_HOST },
    { name: 'root', kind: 'string', valueName: 'DIR', help: 'the only folder the browser may read models and data from and write runs and exports to', defaultText: 'the current folder' },
  ],
  notes: [
    `Prints one line on stdout: ${SERVING_PREFIX}http://HOST:PORT/?token=TOKEN. Open it in a browser;`,
    'without the token every request is refused. On a remote machine keep the default host and tunnel:',
    `  ssh -L ${DEFAULT_PORT}:127.0.0.1:${DEFAULT_PORT} user@box   then open the printed URL on your own machine.`,
    'Ctrl-C stops the server; live runs are cancelled with a checkpoint (resume them later).',
  ],
};

function browseRoot(dir: string): string {
  const abs = resolve(dir);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    throw new UsageError(`--root ${dir}: no such folder`, 'serve');
  }
  if (!statSync(real).isDirectory()) throw new UsageError(`--root ${dir}: not a folder`, 'serve');
  return real;
}

export const serveCommand: Command = {
  spec: serveSpec,
  async run(args, io) {
    const host = args.string('host') ?? DEFAULT_HOST;
    if (host.trim() === '') throw new UsageError('--host needs an address, e.g. 127.0.0.1', 'serve');
    const port = args.number('port') ?? DEFAULT_PORT;
    const root = browseRoot(args.string('root') ?? process.cwd());
    const staticDir = rendererDir();
    checkRendererBuilt(staticDir);

    const service = createStudioService({ mode: 'browser', allowedRoots: [root] });
    let server;
    try {
      server = await startServer({ host, port, service, staticDir });
    } catch (error) {
      await service.close();
      throw error;
    }
    // Handlers go in before the URL is printed: whoever reads the line may
    // signal at once.
    const stop = waitForStopSignal((signal) => {
      io.stderr(`${signal} again: exiting without waiting for the shutdown to finish\n`);
      process.exit(130);
    });
    io.stdout(`${SERVING_PREFIX}${server.url}\n`);
    io.stderr(`Open that URL in a browser. The browser may use files under ${root}. Ctrl-C stops.\n`);
    if (!isLoopbackHost(host)) {
      io.stderr(
        `WARNING: --host ${host} is reachable from other machines: anyone who can reach this address and has the token ` +
          `can train models and write files under ${root}, and plain HTTP carries the token unencrypted. ` +
          `Safer: keep the default host and use an SSH tunnel: ssh -L ${DEFAULT_PORT}:127.0.0.1:${server.port} box\n`,
      );
    }

    const signal = await stop.stopped;
    io.stderr(`${signal}: stopping (live runs are cancelled with a checkpoint)...\n`);
    try {
      await server.close();
      await service.close();
    } finally {
      stop.dispose();
    }
    io.stderr('PEFT Studio stopped.\n');
  },
};
