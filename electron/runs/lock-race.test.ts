// Two processes that take a run's lock at the same instant: exactly one gets
// it. Real child processes (the built lock module), started together round
// after round, each holding the lock a moment and checking that run.lock still
// names it. A lock that names no owner yet is held while young, stale when old.
import { spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtCli, tempDir } from '../testing/e2e-fixtures.js';
import { acquireRunLock, RunLockedError, UNREADABLE_LOCK_GRACE_MS } from './lock.js';

const lockModule = (): string => pathToFileURL(join(builtCli(), '..', '..', 'runs', 'lock.js')).href;

// Says "ready" once it can take the lock, waits until the file `go` exists (so that the children race), takes
// the lock, holds it 300 ms while checking that run.lock still names this process, and prints "got", "lost" or
// "locked". (A start time fixed in advance let a child that started late on a busy machine take the lock after
// the winner let go of it: a second "got" without any race.)
const CHILD = `
const [dir, go, mod] = process.argv.slice(1);
const { existsSync } = await import('node:fs');
const { acquireRunLock, readLock } = await import(mod);
console.log('ready');
while (!existsSync(go)) {}
try {
  const release = await acquireRunLock(dir);
  let lost = false;
  for (let i = 0; i < 30; i++) {
    if ((await readLock(dir))?.pid !== process.pid) lost = true;
    await new Promise((r) => setTimeout(r, 10));
  }
  await release();
  console.log(lost ? 'lost' : 'got');
} catch (e) {
  console.log(e.name === 'RunLockedError' ? 'locked' : 'error ' + e.message);
}
`;

/** A racer: `ready` once it waits for `go`, `outcome` its last line. */
function child(dir: string, go: string): { ready: Promise<void>; outcome: Promise<string> } {
  let isReady!: () => void;
  const ready = new Promise<void>((r) => (isReady = r));
  const outcome = new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir, go, lockModule()], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes('ready')) isReady();
    });
    p.on('error', reject);
    p.on('close', () => {
      isReady(); // one that died before it was ready: its outcome says so
      resolve(out.trim().split('\n').pop()!);
    });
  });
  return { ready, outcome };
}

describe('the run lock taken by processes racing for it', () => {
  it('goes to exactly one of them, round after round', { timeout: 120_000 }, async () => {
    const work = tempDir('lock-race');
    const rounds = 12;
    const racers = 4;
    const outcomes: string[][] = [];
    for (let round = 0; round < rounds; round++) {
      const dir = join(work, `run-${round}`);
      const go = join(work, `go-${round}`);
      mkdirSync(dir);
      const children = Array.from({ length: racers }, () => child(dir, go));
      await Promise.all(children.map((c) => c.ready)); // every child started and waiting
      writeFileSync(go, '');
      outcomes.push((await Promise.all(children.map((c) => c.outcome))).sort());
    }
    // every round: one 'got', the others 'locked' (none 'lost', no two winners, no errors)
    expect(outcomes).toEqual(Array.from({ length: rounds }, () => ['got', ...Array.from({ length: racers - 1 }, () => 'locked')]));
  });
});

describe('a run.lock that names no owner', () => {
  it('is held while it is young (its owner may be writing it), and taken over once old', async () => {
    const dir = tempDir('lock-empty');
    const file = join(dir, 'run.lock');
    writeFileSync(file, '');
    const error = await acquireRunLock(dir).then(() => null, (e: Error) => e);
    expect(error).toBeInstanceOf(RunLockedError);
    expect(error!.message).toBe(`${dir}: another process is starting or resuming this run right now (its run.lock was just created); wait for it, or try again in a few seconds`);

    const old = (Date.now() - UNREADABLE_LOCK_GRACE_MS - 60_000) / 1000;
    utimesSync(file, old, old);
    const release = await acquireRunLock(dir);
    await release();
  });
});
