// Cancel and resume: a run cancelled mid-way stops at a checkpoint and says
// so; the Runs page resumes it from that checkpoint; it finishes with every
// step done exactly once (metrics.jsonl on disk has one row per step, 1..N).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { watchAnswers } from './api-answers.js';
import { expect, test } from './fixtures.js';
import { holdRunAt } from './hold-run.js';
import { chooseBundledDataset, chooseDemoModel, chooseMethod, openStep, setHyperparameters, startTraining, waitForStatus } from './wizard-steps.js';

// The cancel lands mid-run on any machine because the test holds the run
// still while it sends it (hold-run.ts): before, 200 steps of batches of 4
// took 1.4 s on one core, less than the page needed to draw the first few,
// and the run ended before the click. Held, the run needs no more steps than
// a checkpoint and a few after it, and the resume has few left to train (the
// test took 1.5 min of its 2 with both cores busy with other work).
const STEPS = 60;
const BATCH = 4;
const SAVE_EVERY = 20;

function stepOf(progressText: string | null): number {
  const m = /step (\d+)/.exec(progressText ?? '');
  return m ? Number(m[1]) : 0;
}

test('cancel stops at a checkpoint; Runs → Resume finishes the run with every step once', async ({ page, studio, shots }) => {
  const answers = watchAnswers(page);
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'lora');
  await chooseBundledDataset(page, 'task-train');
  await setHyperparameters(page, { steps: String(STEPS), batchSize: String(BATCH), saveEvery: String(SAVE_EVERY) });
  const runDir = await startTraining(page);

  // cancel once the first checkpoint is behind it: the run is held there
  // until the service has the cancel, then stops at the next step boundary
  const progress = page.getByTestId('progress-text');
  // (no wait for the page to show the held step: its last events may still be
  // in the held process's send queue)
  const held = await holdRunAt(runDir, SAVE_EVERY + 2);
  try {
    await page.getByTestId('cancel').click();
    await expect.poll(() => answers.count('cancelRun'), { timeout: 30_000 }).toBe(1);
  } finally {
    held.release();
  }
  await waitForStatus(page, 'cancelled');
  const cancelledAt = stepOf(await progress.textContent());
  expect(cancelledAt).toBeGreaterThanOrEqual(held.step); // not before the steps it had written when held
  expect(cancelledAt).toBeGreaterThan(SAVE_EVERY);
  expect(cancelledAt).toBeLessThan(STEPS);
  // in the app's words: the checkpoint it kept and the way on (not the CLI's `train --resume`)
  const cancelledText = `Cancelled after step ${cancelledAt} of ${STEPS}; a checkpoint at step ${cancelledAt} was saved — Resume continues from it.`;
  await expect(page.getByTestId('run-message')).toHaveText(cancelledText);
  // the page offers to resume only when the cancel left a checkpoint
  await expect(page.getByTestId('resume-run')).toBeVisible();
  await shots.take('01-cancelled');

  // cancelling saves a checkpoint at the step it stopped on
  const cancelled = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as {
    status: string;
    last_checkpoint: number | null;
    config: { device: string; precision: string };
  };
  expect(cancelled.status).toBe('cancelled');
  expect(cancelled.last_checkpoint).toBe(cancelledAt);

  // Runs: the run is listed as cancelled and resumable
  await openStep(page, 'runs');
  const row = page.locator(`[data-testid="run-row"][data-dir="${runDir}"]`);
  await expect(row).toHaveAttribute('data-status', 'cancelled');
  await row.getByTestId('run-select').click();
  await expect(page.getByTestId('run-detail')).toBeVisible();
  await expect(page.getByTestId('run-detail-message')).toHaveText(cancelledText);
  // where Resume continues it: the device and precision run.json recorded, this machine's choices preselected on them
  const recorded = cancelled.config;
  await expect(page.getByTestId('resume-recorded')).toContainText(`device ${recorded.device}, precision ${recorded.precision}`);
  await expect(page.getByTestId('resume-device')).toHaveValue(recorded.device);
  await expect(page.getByTestId('resume-note')).toHaveCount(0);
  if (recorded.device === 'cpu') await expect(page.getByTestId('resume-precision-cpu-note')).toHaveText('fp32 (CPU)');
  else await expect(page.getByTestId('resume-precision')).toHaveValue(recorded.precision);
  // from here on with gradient checkpointing (less memory; the same steps)
  await expect(page.getByTestId('resume-checkpointing')).not.toBeChecked();
  await page.getByTestId('resume-checkpointing').check();
  await shots.take('02-runs-cancelled');
  // record every status the Train page shows from here on, and whether it offers to resume again
  await page.evaluate(() => {
    const seen: string[] = [];
    const watch = { seen, resumeOffered: false };
    Object.assign(window, { afterResume: watch });
    new MutationObserver(() => {
      const now = document.querySelector('[data-testid="page-train"] [data-testid="run-status"]')?.getAttribute('data-status');
      if (now && seen[seen.length - 1] !== now) seen.push(now);
      if (document.querySelector('[data-testid="resume-run"]')) watch.resumeOffered = true;
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  });
  await page.getByTestId('run-resume').click();

  // back on the Train page, it continues and finishes; until the resumed
  // session's worker reports in, it is starting (not the folder's old
  // 'cancelled', and no second resume offered)
  await expect(page.getByTestId('page-train')).toBeVisible();
  await waitForStatus(page, 'finished');
  const afterResume = await page.evaluate(() => (window as unknown as { afterResume: { seen: string[]; resumeOffered: boolean } }).afterResume);
  expect(afterResume.seen, 'statuses shown after Resume').not.toContain('cancelled');
  expect(afterResume.seen[afterResume.seen.length - 1]).toBe('finished');
  expect(afterResume.resumeOffered, 'a second resume was offered while the first was starting').toBe(false);
  await expect(progress).toContainText(`step ${STEPS} of ${STEPS}`);
  await shots.take('03-resumed-finished');

  const finished = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as {
    config: { device: string; precision: string; gradientCheckpointing: boolean };
    status: string;
    steps_done: number;
    total_steps: number;
    resumes: { from_step: number }[];
  };
  expect(finished.status).toBe('finished');
  // it continued where it was, now with gradient checkpointing (ticked in the Resume options)
  expect(finished.config).toMatchObject({ ...recorded, gradientCheckpointing: true });
  expect(finished.steps_done).toBe(STEPS);
  expect(finished.total_steps).toBe(STEPS);
  expect(finished.resumes).toHaveLength(1);
  expect(finished.resumes[0].from_step).toBe(cancelled.last_checkpoint);
  const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss?: number })
    .filter((r) => typeof r.loss === 'number')
    .map((r) => r.step);
  expect(steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
});
