// Browser mode's server: the renderer's files and the API WebSocket on one
// port, behind one token. startServer only listens; the caller owns the
// service (and closes it after the server).
import { realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { TOKEN_PARAM } from '../api/contract.js';
import type { StudioService } from '../service/service.js';
import { createRequestHandler } from './http.js';
import { checkRendererBuilt } from './static.js';
import { newToken } from './token.js';
import { attachApiSocket } from './websocket.js';

export interface ServeOptions {
  /** address to bind; 127.0.0.1 keeps it to this machine */
  host: string;
  /** 0: any free port */
  port: number;
  service: StudioService;
  /** the built renderer (index.html + assets/) */
  staticDir: string;
  /** a fixed token (tests); default: a fresh random one */
  token?: string;
}

export interface RunningServer {
  /** what to open in a browser: http://HOST:PORT/?token=TOKEN */
  url: string;
  host: string;
  port: number;
  token: string;
  /** stops listening, closes every socket; the service is left to the caller */
  close(): Promise<void>;
}

/** The host as it goes in a URL (IPv6 literals in brackets). */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export class PortInUseError extends Error {
  constructor(readonly host: string, readonly port: number) {
    super(`port ${port} on ${host} is already in use: choose another with --port N (or --port 0 for any free port)`);
    this.name = 'PortInUseError';
  }
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  if (error.code === 'EADDRINUSE') return new PortInUseError(host, port);
  if (error.code === 'EACCES') return new Error(`not allowed to listen on ${host}:${port} (ports below 1024 need privileges): choose another with --port`);
  if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
    return new Error(`cannot listen on ${host}: it is not an address of this machine (use 127.0.0.1, or 0.0.0.0 for every interface)`);
  }
  return error;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  checkRendererBuilt(options.staticDir);
  const staticDir = realpathSync(options.staticDir);
  const token = options.token ?? newToken();
  const server = createServer(createRequestHandler({ token, staticDir }));
  // slow or idle clients must not pin sockets forever
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  const sockets = attachApiSocket(server, { token, service: options.service });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, options.host, options.port));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  }).catch(async (error: unknown) => {
    await sockets.close();
    throw error;
  });

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${urlHost(options.host)}:${port}/?${TOKEN_PARAM}=${token}`,
    host: options.host,
    port,
    token,
    close: () =>
      (closing ??= (async () => {
        // stop accepting first, then end the WebSockets, then cut any HTTP keep-alive left
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await sockets.close();
        server.closeAllConnections();
        await stopped;
      })()),
  };
}
