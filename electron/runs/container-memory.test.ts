// A run inside a real memory-limited cgroup (v1, as this machine has; made
// and removed by the test, root only; skipped where one cannot be made):
// `inspect` in it judges the run against the container's limit, and when it
// says the run fits, the run's own check (in its training process, which is
// itself in the cgroup's usage by then) lets it start, and it trains to the
// end without the kernel killing it at the limit.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';

const V1_MEMORY = '/sys/fs/cgroup/memory';
const group = join(V1_MEMORY, `peft-studio-test-${process.pid}`);
const cli = resolve('dist/electron/cli/main.js');
const demo = resolve('resources/demo');

const canMakeCgroup = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !existsSync(join(V1_MEMORY, 'memory.limit_in_bytes'))) return false;
  try {
    mkdirSync(group);
    writeFileSync(join(group, 'memory.limit_in_bytes'), String(512 * 2 ** 20));
    return true;
  } catch {
    return false;
  }
})();

afterAll(() => {
  if (existsSync(group)) rmdirSync(group);
});

/** `node cli args` with its process moved into the cgroup first (its children, the training process, follow). */
function inGroup(args: string[], home: string) {
  return spawnSync('bash', ['-c', `echo $$ > ${join(group, 'cgroup.procs')} && exec "$0" "$@"`, process.execPath, cli, ...args], {
    encoding: 'utf8', env: { ...process.env, PEFT_STUDIO_HOME: home }, timeout: 120_000,
  });
}

describe.skipIf(!canMakeCgroup)('a run in a memory-limited cgroup (v1)', () => {
  it('what inspect says fits within the limit starts, and trains to the end below it', () => {
    const home = tempDir('container-memory');
    const args = ['--model', join(demo, 'model'), '--seq-len', '64'];
    // what the run needs with no limit
    const free = JSON.parse(execFileSync(process.execPath, [cli, 'inspect', ...args], { encoding: 'utf8', env: { ...process.env, PEFT_STUDIO_HOME: home } }));
    const need = free.memory.lora.total_bytes as number;
    // what a CLI process itself takes in the cgroup (inspect's own: the room it sees under a roomy limit)
    writeFileSync(join(group, 'memory.limit_in_bytes'), String(need + 256 * 2 ** 20));
    const roomy = JSON.parse(inGroup(['inspect', ...args], home).stdout);
    const cliBytes = Number(readFileSync(join(group, 'memory.limit_in_bytes'), 'utf8')) - roomy.fits_in.available_bytes;
    // then a limit that leaves the run its need and 12 MiB beside one CLI process: the training process, in the
    // cgroup's usage by the time it checks, must not count itself twice (it did: refused, as it said, for want of ~0.1 GiB)
    writeFileSync(join(group, 'memory.limit_in_bytes'), String(need + cliBytes + 12 * 2 ** 20));
    // (the kernel keeps it in whole pages)
    const limit = Number(readFileSync(join(group, 'memory.limit_in_bytes'), 'utf8'));

    const inspected = inGroup(['inspect', ...args], home);
    expect(inspected.status, inspected.stderr).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report.machine.limits.memory_limit_bytes).toBe(limit);
    expect(report.fits_in.available_bytes).toBeLessThanOrEqual(limit);
    expect(report.memory.lora.total_bytes).toBe(need);
    expect(report.memory.lora.fits).toBe(true);

    writeFileSync(join(group, 'memory.max_usage_in_bytes'), '0');
    const out = join(home, 'run');
    const trained = inGroup(['train', ...args, '--data', join(demo, 'task-train.jsonl'), '--steps', '10', '--out', out], home);
    expect(trained.status, trained.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).status).toBe('finished');
    // never at the limit: the kernel did not have to reclaim or kill
    expect(Number(readFileSync(join(group, 'memory.max_usage_in_bytes'), 'utf8'))).toBeLessThan(limit);
    expect(Number(readFileSync(join(group, 'memory.failcnt'), 'utf8'))).toBe(0);
  }, 180_000);
});
