// A QLoRA run through the wizard: the demo model held in 4-bit NF4, a LoRA
// trained on top. The run folder's run.json (written by the training child
// process, read here from disk) records the method and the NF4 base.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures.js';
import { chooseBundledDataset, chooseDemoModel, chooseMethod, setHyperparameters, startTraining, waitForStatus } from './wizard-steps.js';

const STEPS = 6;

test('a QLoRA run on the demo model finishes and its run.json says qlora', async ({ page, studio, shots }) => {
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'qlora');
  await shots.take('01-method');
  await chooseBundledDataset(page, 'task-train');
  await setHyperparameters(page, { steps: String(STEPS) });
  // QLoRA's own settings are offered
  await expect(page.getByTestId('field-quantBlocksize')).toBeVisible();
  await shots.take('02-hyperparameters');

  const runDir = await startTraining(page);
  await waitForStatus(page, 'finished');
  await expect(page.getByTestId('progress-text')).toContainText(`step ${STEPS} of ${STEPS}`);
  await shots.take('03-finished');

  const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as {
    status: string;
    steps_done: number;
    config: { method: string; quantization: { type: string; blocksize: number } | null; lora: { rank: number } | null };
  };
  expect(run.status).toBe('finished');
  expect(run.steps_done).toBe(STEPS);
  expect(run.config.method).toBe('qlora');
  expect(run.config.quantization).toMatchObject({ type: 'nf4', blocksize: 64 });
  // the adapter it saved is a LoRA (QLoRA only changes how the base is held)
  const adapter = JSON.parse(readFileSync(join(runDir, 'adapter_config.json'), 'utf8')) as { peft_type: string; r: number };
  expect(adapter.peft_type).toBe('LORA');
  expect(adapter.r).toBe(run.config.lora?.rank);
});
