// A write of the run that fails (the final adapter, a checkpoint) loses no
// training: the state is kept as a checkpoint (the run folder's when it still
// takes one, else the studio home's), the message names the failed file,
// where the weights are and the exact `train --resume` command, and that
// command finishes the run without training again, with the adapter an
// uninterrupted run writes, bit for bit. The failures are real ones of the
// file system: a folder in the way of adapter_model.safetensors (rename
// fails with EISDIR), a file in the way of checkpoints/ or of a checkpoint.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { adapterOf, messageOf, runFixture, runKeyOf, runOnce } from '../testing/run-fixture.js';
import { FileWriteError } from '../files/atomic.js';
import { describeWriteError, keptStateDir, writeErrorRemedy } from './kept-state.js';

const fx = runFixture('kept', { seed: 7, rows: 8, base: ['--steps', '3', '--batch-size', '2', '--threads', '2', '--eval-split', '0', '--lr', '1e-2', '--seed', '3'] });
const configFor = fx.configFor;




describe('a failed final save', () => {
  let reference: Buffer;
  beforeAll(async () => {
    const ref = join(fx.work(), 'reference');
    expect((await runOnce(configFor(ref), false)).end.type).toBe('finished');
    reference = adapterOf(ref);
  });

  it('keeps the final state as a checkpoint in the run folder; --resume writes the adapter without training', async () => {
    const out = join(fx.work(), 'final-in-run');
    const blocker = join(out, 'adapter_model.safetensors');
    const { end, steps } = await runOnce(configFor(out), false, (e) => { if (e.type === 'started') mkdirSync(join(blocker, 'in-the-way'), { recursive: true }); });
    expect(steps).toEqual([1, 2, 3]);
    const kept = join(out, 'checkpoints', 'step-3');
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: 3, checkpoint: kept });
    const m = messageOf(end);
    expect(m).toContain(`${blocker}: writing failed (EISDIR). Training finished (step 3 of 3), but the final adapter could not be written.`);
    expect(m).toContain(`The trained weights of step 3 are kept as a checkpoint in ${kept}.`);
    expect(m).toContain(`then run peft-studio train --resume ${out}: it writes the final adapter without training again.`);
    expect(m).not.toContain('try again');
    expect(existsSync(join(kept, 'COMPLETE'))).toBe(true);

    rmSync(blocker, { recursive: true });
    const again = await runOnce(configFor(out), true);
    expect(again.end.type).toBe('finished');
    expect(again.steps).toEqual([]); // nothing trained again
    expect(adapterOf(out).equals(reference)).toBe(true);
  });

  it('keeps it in the studio home when the run folder takes no checkpoint either; --resume finds it there', async () => {
    const out = join(fx.work(), 'final-in-home');
    const blocker = join(out, 'adapter_model.safetensors');
    const { end } = await runOnce(configFor(out), false, (e) => {
      if (e.type !== 'started') return;
      mkdirSync(join(blocker, 'in-the-way'), { recursive: true });
      writeFileSync(join(out, 'checkpoints'), 'a file where the checkpoints folder goes');
    });
    const kept = join(keptStateDir(runKeyOf(out)), 'checkpoints', 'step-3');
    expect(kept.startsWith(join(fx.work(), 'home', 'kept'))).toBe(true);
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: 3, checkpoint: kept });
    expect(messageOf(end)).toContain(`The trained weights of step 3 are kept as a checkpoint in ${kept}. Fix the cause above, then run peft-studio train --resume ${out}`);

    rmSync(blocker, { recursive: true });
    rmSync(join(out, 'checkpoints'));
    const again = await runOnce(configFor(out), true);
    expect(again.end.type).toBe('finished');
    expect(again.steps).toEqual([]);
    expect(adapterOf(out).equals(reference)).toBe(true);
    expect(existsSync(keptStateDir(runKeyOf(out)))).toBe(false); // dropped once the adapter is written
  });

  it('a failed checkpoint keeps that step in the studio home; --resume continues from it to the same adapter', async () => {
    const out = join(fx.work(), 'checkpoint-fails');
    const blocker = join(out, 'checkpoints', 'step-2');
    const { end, steps } = await runOnce(configFor(out, ['--save-every', '1']), false, (e) => {
      if (e.type === 'checkpoint' && e.step === 1) writeFileSync(blocker, 'a file where step-2 goes');
    });
    expect(steps).toEqual([1, 2]);
    const kept = join(keptStateDir(runKeyOf(out)), 'checkpoints', 'step-2');
    expect(end).toMatchObject({ type: 'failed', resumable: true, step: 2, checkpoint: kept });
    const m = messageOf(end);
    expect(m).toContain('The checkpoint of step 2 of 3 could not be written, so the run stopped.');
    expect(m).toContain(`kept as a checkpoint in ${kept}. Fix the cause above, then run peft-studio train --resume ${out}: it continues from step 2.`);

    rmSync(blocker);
    // the run folder moved (to a disk with room, say) before the resume: its kept state is the run's, not the path's
    const moved = join(fx.work(), 'checkpoint-fails-moved');
    renameSync(out, moved);
    const again = await runOnce(configFor(moved, ['--save-every', '1']), true);
    expect(again.end.type).toBe('finished');
    expect(again.steps).toEqual([3]);
    expect(adapterOf(moved).equals(reference)).toBe(true);
  });
});

describe('the wording of a failed write', () => {
  it('drops the generic "try again" and says what to fix from the error code', () => {
    const full = new FileWriteError('/r/adapter_model.safetensors', 'writing failed (ENOSPC)', 'Check free disk space and permissions, then try again.');
    expect(describeWriteError(full)).toBe('/r/adapter_model.safetensors: writing failed (ENOSPC)');
    expect(describeWriteError(new Error(full.message))).toBe('/r/adapter_model.safetensors: writing failed (ENOSPC)');
    expect(writeErrorRemedy(full, '/r')).toBe('free space on the disk of /r');
    expect(writeErrorRemedy(new FileWriteError('/r/x', 'writing failed (EACCES)', ''), '/r')).toBe('make /r writable again');
    expect(writeErrorRemedy(new Error('/r/x: is a file'), '/r')).toBe('fix the cause above');
  });
});
