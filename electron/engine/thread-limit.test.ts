// More threads than the system will start (a mistyped --threads, a test's
// huge number) is an error that says so, never a process killed by an
// uncaught C++ exception (review: ops.gemm with 100,000 threads called
// std::terminate). Run in a child process, so a crash fails this test
// instead of taking the test runner down.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from './load.js';

const script = `
const { loadAddon } = await import(${JSON.stringify(join(packageRoot(), 'dist', 'electron', 'engine', 'load.js'))});
const { openModelFolder } = await import(${JSON.stringify(join(packageRoot(), 'dist', 'electron', 'models', 'folder.js'))});
const { createEngine } = await import(${JSON.stringify(join(packageRoot(), 'dist', 'electron', 'session.js'))});
const addon = loadAddon();
const tryIt = (what, f) => { try { f(); console.log(what + ': started'); } catch (e) { console.log(what + ': ' + e.message); } };
tryIt('gemm', () => addon.ops.gemm('nt', 2, 2, 2, 1, new Float32Array(4), new Float32Array(4), 0, new Float32Array(4), 100000));
const folder = await openModelFolder(${JSON.stringify(join(packageRoot(), 'resources', 'demo', 'model'))});
tryIt('engine', () => createEngine(addon, folder, { threads: 100000 }));
`;

describe('a thread count the system cannot start', () => {
  it('is an error naming the count and what to do, for the ops and for an engine', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    for (const what of ['gemm', 'engine']) {
      // a machine that can start them all says so; one that cannot says why
      expect(r.stdout).toMatch(new RegExp(`^${what}: (started|cannot start 100000 threads: the system refused thread \\d+ \\(.+\\); use fewer threads \\(this machine has \\d+\\))$`, 'm'));
    }
  });
});
