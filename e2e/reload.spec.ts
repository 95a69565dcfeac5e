// A reload in the middle of a run (F5, a crashed tab) loses nothing: the
// page comes back on the Train page following the same run, which kept
// training on the server the whole time, with this tab's wizard choices
// (model, method, dataset, settings) still made; then the run is cancelled
// from the reloaded page, which proves the controls reach it.
import { expect, test } from './fixtures.js';
import { chooseBundledDataset, chooseDemoModel, chooseMethod, setHyperparameters, startTraining, waitForStatus } from './wizard-steps.js';

// More steps than any machine trains while the test runs (it cancels the run
// at the end): 5000 steps of batches of 4 took 28 s on one core, and the
// test, its page drawing every step on that core, reached Cancel after the
// run had ended. Batches of 32 keep the steps few enough a second for the
// page to follow on one core (27 a second there): at batches of 4 (175 a
// second) it fell behind for good, showing step 769 when the run was at
// thousands, and the test's reads of it timed out.
const STEPS = 1_000_000;
const BATCH = 32;

function stepOf(progressText: string | null): number {
  const m = /step (\d+)/.exec(progressText ?? '');
  return m ? Number(m[1]) : 0;
}

test('a reload mid-run comes back on the Train page following the live run, with the wizard as it was', async ({ page, studio, shots }) => {
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'lora');
  await chooseBundledDataset(page, 'task-train');
  await setHyperparameters(page, { steps: String(STEPS), batchSize: String(BATCH) });
  const runDir = await startTraining(page);
  const progress = page.getByTestId('progress-text');
  await expect.poll(async () => stepOf(await progress.textContent()), { timeout: 60_000, intervals: [50] }).toBeGreaterThan(2);
  const before = stepOf(await progress.textContent());

  await page.reload();
  // the Train page again, on the same run, still training and moving on
  await expect(page.getByTestId('page-train')).toBeVisible();
  await expect(page.getByTestId('run-dir')).toHaveText(runDir);
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');
  await expect.poll(async () => stepOf(await progress.textContent()), { timeout: 60_000, intervals: [50] }).toBeGreaterThan(before);
  // the wizard's earlier steps keep their choices: every step is open again, and the batch size typed before is still set
  for (const step of ['model', 'method', 'data', 'hyperparameters']) {
    await expect(page.getByTestId(`nav-${step}`)).not.toHaveAttribute('aria-disabled', 'true');
  }
  await page.getByTestId('nav-hyperparameters').click();
  await expect(page.getByTestId('input-batchSize')).toHaveValue(String(BATCH));
  await page.getByTestId('nav-train').click();
  await shots.take('01-after-reload');

  await page.getByTestId('cancel').click();
  await waitForStatus(page, 'cancelled');
});
