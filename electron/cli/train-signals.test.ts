// Stop signals of `peft-studio train`: the first one stops the run at the
// next step with a checkpoint, a second press stops it at once; the same
// signal delivered twice (GNU timeout sends it to the command and then to
// its whole process group) is one stop, not two (review).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtCli, tempDir } from '../testing/e2e-fixtures.js';
import { SAME_SIGNAL_MS, stopSignalAction } from './stop-signal.js';

describe('stop signals', () => {
  it('first: cancel; again soon after: the same signal twice, ignored; again later: kill', () => {
    expect(stopSignalAction(1, 0)).toBe('cancel');
    expect(stopSignalAction(2, 0)).toBe('ignore');
    expect(stopSignalAction(2, SAME_SIGNAL_MS - 1)).toBe('ignore');
    expect(stopSignalAction(2, SAME_SIGNAL_MS)).toBe('kill');
    expect(stopSignalAction(3, 10_000)).toBe('kill');
  });

  it('the signal sent to the command and then to its process group (as GNU timeout does) stops the run at a step with a checkpoint, not at once', async () => {
    const out = join(tempDir('train-double-signal'), 'run');
    const demo = resolve('resources/demo');
    // its own process group, as a command under timeout is
    const child = spawn(process.execPath, [builtCli(), 'train', '--model', join(demo, 'model'), '--data', join(demo, 'task-train.jsonl'),
      '--out', out, '--steps', '100000', '--batch-size', '64', '--threads', '1'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    const training = new Promise<void>((resolveStarted) => child.stderr!.on('data', (t: string) => {
      stderr += t;
      if (/step \d+\//.test(stderr)) resolveStarted();
    }));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await training;
    process.kill(child.pid!, 'SIGINT'); // to the command
    // (a moment later, so that the kernel does not merge the two into one pending signal)
    await new Promise((r) => setTimeout(r, 50));
    process.kill(-child.pid!, 'SIGINT'); // and to its group: the command again, and the training child
    await exited;
    expect(stderr).toContain('SIGINT: stopping after the current step with a checkpoint');
    expect(stderr).not.toContain('again: stopping at once');
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('cancelled');
    expect(record.last_checkpoint).toBe(record.steps_done);
    expect(existsSync(join(out, 'checkpoints', `step-${record.steps_done}`))).toBe(true);
  });
});
