// `peft-studio serve` as users run it: the built CLI in its own process.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { makeStaticFixture } from './testing/static-fixture.js';
import { rawRequest } from './testing/raw-http.js';
import { call, closed, openSocket, waitFor } from './testing/ws-client.js';
import { WS_PATH } from '../api/contract.js';

const cli = fileURLToPath(new URL('../../dist/electron/cli/main.js', import.meta.url));
const fx = makeStaticFixture();
const home = mkdtempSync(join(tmpdir(), 'peft-serve-home-'));
afterAll(() => fx.cleanup());

const LINE = /^PEFT Studio is serving at http:\/\/(127\.0\.0\.1|0\.0\.0\.0):(\d+)\/\?token=([0-9a-f]{64})$/;

interface Served {
  child: ChildProcess;
  line: string;
  stdoutLines: string[];
  stderr: () => string;
  exit: Promise<number | null>;
}

function serve(args: string[], env: Record<string, string> = {}): Served {
  const child = spawn(process.execPath, [cli, 'serve', ...args], {
    env: { ...process.env, PEFT_STUDIO_HOME: home, PEFT_STUDIO_RENDERER: fx.staticDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stdoutLines: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, line: '', stdoutLines, stderr: () => err, exit };
}

/** Resolves with the first stdout line, or rejects when the process ends without one. */
function firstLine(s: Served): Promise<string> {
  const rl = createInterface({ input: s.child.stdout! });
  return new Promise((resolve, reject) => {
    rl.on('line', (line) => {
      s.stdoutLines.push(line);
      if (s.stdoutLines.length === 1) resolve(line);
    });
    void s.exit.then((code) => reject(new Error(`serve exited with ${code} before printing; stderr: ${s.stderr()}`)));
  });
}

describe('peft-studio serve (the CLI)', () => {
  it('prints exactly one URL line, serves it, and exits 0 on SIGTERM', async () => {
    const s = serve(['--port', '0', '--root', fx.root]);
    const line = await firstLine(s);
    const m = LINE.exec(line);
    expect(m, line).not.toBeNull();
    const [, host, port, token] = m!;
    expect(host).toBe('127.0.0.1');

    const page = await fetch(line.slice('PEFT Studio is serving at '.length));
    expect(page.status).toBe(200);
    expect(await page.text()).toBe(fx.indexHtml);
    expect((await rawRequest(Number(port), '/')).status).toBe(401);
    expect((await rawRequest(Number(port), `/?token=${token.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`)).status).toBe(403);
    expect(s.stderr()).not.toMatch(/WARNING/);

    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
    expect(s.stdoutLines).toEqual([line]);
    expect(s.stderr()).toMatch(/stopped/);
  });

  it('says when the port is taken and how to choose another (exit 1)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const s = serve(['--port', String(port), '--root', fx.root]);
      expect(await s.exit).toBe(1);
      expect(s.stderr()).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*--port`));
    } finally {
      blocker.close();
    }
  });

  it('names npm run build:renderer when the UI is not built (exit 1, nothing on stdout)', async () => {
    const s = serve(['--port', '0', '--root', fx.root], { PEFT_STUDIO_RENDERER: join(fx.base, 'not-built') });
    let out = '';
    s.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await s.exit).toBe(1);
    expect(s.stderr()).toMatch(/npm run build:renderer/);
    expect(out).toBe('');
  });

  it('refuses a --root that does not exist (exit 2)', async () => {
    const s = serve(['--port', '0', '--root', join(fx.base, 'missing')]);
    expect(await s.exit).toBe(2);
    expect(s.stderr()).toMatch(/--root .*no such folder/);
  });

  it('warns on stderr when bound beyond loopback, and suggests an SSH tunnel', async () => {
    const s = serve(['--port', '0', '--host', '0.0.0.0', '--root', fx.root]);
    const line = await firstLine(s);
    expect(line).toMatch(LINE);
    await waitFor(() => (s.stderr().includes('box') ? true : undefined), 5000);
    expect(s.stderr()).toMatch(/WARNING: --host 0\.0\.0\.0 is reachable from other machines/);
    expect(s.stderr()).toMatch(/ssh -L 8686:127\.0\.0\.1:\d+ box/);
    s.child.kill('SIGINT');
    expect(await s.exit).toBe(0);
  });

  it('on SIGTERM during a run: cancels it with a checkpoint, closes sockets (1001), exits 0', async () => {
    const s = serve(['--port', '0', '--root', fx.root]);
    const [, , port, token] = LINE.exec(await firstLine(s))!;
    const opened = await openSocket(`ws://127.0.0.1:${port}${WS_PATH}?token=${token}`, { Origin: `http://127.0.0.1:${port}` });
    if (!('ws' in opened)) throw new Error(`refused with ${opened.status}`);
    const demo = await call(opened, 1, 'demoPaths', {});
    if (!demo.ok) throw new Error(JSON.stringify(demo.error));
    const paths = demo.value as { model: string; datasets: { name: string; path: string }[] };
    const out = join(fx.root, 'long-run');
    const started = await call(opened, 2, 'startRun', {
      model: paths.model,
      data: paths.datasets.find((d) => d.name === 'task-train')!.path,
      method: 'lora',
      out,
      hyper: { steps: 100_000, threads: 1, batchSize: 2 },
    });
    if (!started.ok) throw new Error(JSON.stringify(started.error));
    await waitFor(() => opened.frames.find((f) => 'event' in f && f.event.type === 'run' && f.event.event.type === 'step'), 60_000);
    const socketClosed = closed(opened.ws);

    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
    expect((await socketClosed).code).toBe(1001);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { status: string };
    expect(record.status).toBe('cancelled');
    const checkpoints = readdirSync(join(out, 'checkpoints'));
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(checkpoints.every((c) => existsSync(join(out, 'checkpoints', c, 'COMPLETE')))).toBe(true);
  });
});

