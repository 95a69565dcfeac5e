// The training process's JavaScript heap: as large as the machine allows
// (three quarters of its memory, or of its container's memory limit; never
// under V8's default), a limit set in NODE_OPTIONS standing; and a run whose
// heap does run out says so, instead of "a fault in the native engine" over
// V8's stack trace.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import type { RunEvent } from './events.js';
import { totalMemoryBytes } from '../system/machine.js';
import { effectiveHeapLimitMiB, isHeapOutOfMemoryLine, trainingHeapArgs, trainingHeapLimitMiB } from './heap-limit.js';
import { TrainingRun } from './manager.js';
import { readRunRecord } from './run-record.js';

process.env.PEFT_STUDIO_HOME = tempDir('home');
const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('the training heap limit', () => {
  it('is three quarters of the machine, never under V8 default', () => {
    // what a child's limit is: its last flag, else NODE_OPTIONS's
    expect(effectiveHeapLimitMiB({ NODE_OPTIONS: '--max-old-space-size=300' }, [])).toBe(300);
    expect(effectiveHeapLimitMiB({ NODE_OPTIONS: '--max-old-space-size=300' }, ['--max-old-space-size=900', '--max-old-space-size=64'])).toBe(64);
    expect(effectiveHeapLimitMiB({}, trainingHeapArgs({}, 24 * GiB))).toBe(trainingHeapLimitMiB(24 * GiB));
    // 24 GiB: 18 GiB = 18,432 MiB; 4 GiB: 3 GiB is under a 4,144 MiB default, which stays
    expect(trainingHeapLimitMiB(24 * GiB, 4144 * MiB)).toBe(18432);
    expect(trainingHeapLimitMiB(4 * GiB, 4144 * MiB)).toBe(4144);
    expect(trainingHeapLimitMiB(64 * GiB, 4144 * MiB)).toBe(49152);
    // a container limited to 8 GiB on a 64 GiB host: 6 GiB = 6,144 MiB, not the host's 49,152
    expect(trainingHeapLimitMiB(totalMemoryBytes({ memoryLimitBytes: 8 * GiB }, 64 * GiB), 4144 * MiB)).toBe(6144);
    // by default, this machine's total within its own container's limit
    expect(trainingHeapLimitMiB(undefined, 4144 * MiB)).toBe(Math.floor(Math.max(4144 * MiB, 0.75 * totalMemoryBytes()) / MiB));
    expect(trainingHeapArgs({}, 24 * GiB)).toEqual([`--max-old-space-size=${trainingHeapLimitMiB(24 * GiB)}`]);
    // the user's own limit stands
    expect(trainingHeapArgs({ NODE_OPTIONS: '--max-old-space-size=2048 --trace-warnings' }, 24 * GiB)).toEqual([]);
    expect(trainingHeapArgs({ NODE_OPTIONS: '--trace-warnings' }, 24 * GiB)).toHaveLength(1);
  });

  it("recognises V8's fatal heap error", () => {
    expect(isHeapOutOfMemoryLine('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory')).toBe(true);
    expect(isHeapOutOfMemoryLine('FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory')).toBe(true);
    expect(isHeapOutOfMemoryLine('the engine could not allocate 4 GiB (out of memory)')).toBe(false);
  });
});

describe('a run whose JavaScript heap runs out', () => {
  let config: ReturnType<typeof trainConfigFromArgs>;
  beforeAll(async () => {
    const model = await tinyModel({ seed: 3 });
    const work = tempDir('heap');
    // 300,000 short text rows: ~100 MiB of row objects on the heap, far past the 64 MiB the child gets below
    const data = join(work, 'many.jsonl');
    const lines: string[] = [];
    for (let i = 0; i < 300_000; i++) lines.push(JSON.stringify({ text: `row ${i} of the many` }));
    writeFileSync(data, lines.join('\n') + '\n');
    config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', join(work, 'run'), '--steps', '1', '--threads', '1']));
  });

  it('says the training process ran out of JavaScript heap (its limit), not that the engine faulted; before run.json it offers no resume', async () => {
    // a limit in NODE_OPTIONS stands (the user's), so the child gets 64 MiB
    const run = new TrainingRun({ config, fork: { env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=64' } } });
    const events: RunEvent[] = [];
    run.onEvent((e) => events.push(e));
    run.start();
    const end = await run.wait();
    expect(end.type).toBe('failed');
    const failed = end as Extract<RunEvent, { type: 'failed' }>;
    expect(failed.kind).toBe('crashed');
    // the limit it had (NODE_OPTIONS's), not the one it would have got
    expect(failed.message).toMatch(/^the training process ran out of JavaScript heap before its first step: Node stops a process whose heap passes its limit \(about 64 MiB for the training process\)/);
    expect(failed.message).toContain('Train on fewer rows');
    expect(failed.message).not.toContain('native engine');
    expect(failed.message).not.toContain('Native stack trace');
    // it died reading the data, before run.json: nothing to resume, and it does not offer a resume that would refuse
    expect(await readRunRecord(config.out)).toBeNull();
    expect(failed.resumable).toBe(false);
    expect(failed.message).not.toContain('--resume');
    expect(failed.message).toMatch(/Nothing of the run was saved \(it stopped before writing .*run\.json\): start it again\.$/);
  }, 180_000);
});
