// LoRA and DoRA side by side, as a user would try them: two short runs of the
// demo task through the wizard, the second with DoRA switched on. Its
// adapter on disk is a PEFT DoRA adapter (use_dora, a magnitude per adapted
// module, read without the app's code); its Export page offers no GGUF LoRA
// and says why; then both runs, picked on the Runs page, are compared: both
// on the charts, "LoRA with DoRA" as the one setting that differs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures.js';
import { readSafetensors } from './peft-files.js';
import { chooseBundledDataset, chooseDemoModel, chooseMethod, demoConfig, openStep, setHyperparameters, startTraining, waitForStatus } from './wizard-steps.js';

const STEPS = 40;

test('a LoRA run and a DoRA run of the demo task, compared on the Runs page', async ({ page, studio, shots }) => {
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'lora');
  await chooseBundledDataset(page, 'task-train');
  await setHyperparameters(page, { steps: String(STEPS), batchSize: '8', lr: '0.002', evalSplit: '0.1', evalEvery: '10' });
  const loraDir = await startTraining(page);
  await waitForStatus(page, 'finished');

  // the same settings, DoRA on
  await openStep(page, 'hyperparameters');
  await expect(page.getByTestId('hyper-form')).toBeVisible();
  const advanced = page.getByTestId('hyper-advanced');
  if ((await advanced.getAttribute('open')) === null) await advanced.locator('summary').click();
  await page.getByTestId('input-dora').check();
  await expect(page.getByTestId('check-pending')).toHaveCount(0, { timeout: 30_000 });
  const doraDir = await startTraining(page);
  expect(doraDir).not.toBe(loraDir);
  await waitForStatus(page, 'finished');

  // the adapter on disk: PEFT's DoRA layout, a magnitude [out] beside each module's A and B
  const adapterConfig = JSON.parse(readFileSync(join(doraDir, 'adapter_config.json'), 'utf8')) as { use_dora: boolean; target_modules: string[] };
  expect(adapterConfig.use_dora).toBe(true);
  const weights = readSafetensors(join(doraDir, 'adapter_model.safetensors'));
  const magnitudes = [...weights.tensors.keys()].filter((k) => k.endsWith('.lora_magnitude_vector'));
  const config = demoConfig();
  expect(magnitudes.length).toBe(config.num_hidden_layers * adapterConfig.target_modules.length);
  for (const k of magnitudes) {
    const module = k.slice(0, -'.lora_magnitude_vector'.length);
    expect(weights.tensors.get(k)?.shape, k).toEqual([weights.tensors.get(`${module}.lora_B.weight`)!.shape[0]]);
  }

  // Export: no GGUF LoRA for a DoRA run, and the page says why
  await page.getByTestId('go-export').click();
  await expect(page.getByTestId('page-export')).toBeVisible();
  await expect(page.getByTestId('export-dora-note')).toBeVisible();
  await expect(page.getByTestId('format-gguf')).toHaveCount(0);
  await expect(page.getByTestId('format-gguf-model')).toBeVisible();

  // Runs: pick both, compare
  await openStep(page, 'runs');
  for (const dir of [loraDir, doraDir]) {
    const row = page.locator(`[data-testid="run-row"][data-dir="${dir}"]`);
    await expect(row).toHaveAttribute('data-status', 'finished');
    await row.getByTestId('run-compare-pick').check();
  }
  await expect(page.locator(`[data-testid="run-row"][data-dir="${doraDir}"]`)).toContainText('LoRA + DoRA');
  await expect(page.locator(`[data-testid="run-row"][data-dir="${loraDir}"]`)).not.toContainText('DoRA');
  const compare = page.getByTestId('run-compare');
  await expect(compare).toBeVisible();
  await expect(compare.getByTestId('run-compare-column')).toHaveCount(2);
  const method = compare.locator('[data-testid="run-compare-setting"][data-label="Method"]');
  await expect(method).toContainText('LoRA with DoRA');
  await expect(compare.getByTestId('run-compare-setting')).toHaveCount(1); // nothing else differs
  await expect(compare.getByTestId('run-compare-eval-chart')).toHaveAttribute('data-points', String(2 * (STEPS / 10)));
  // its top below the app's sticky header
  await compare.evaluate((el) => {
    el.scrollIntoView({ block: 'start' });
    const header = document.querySelector('header');
    el.closest('main')?.scrollBy(0, -(header?.getBoundingClientRect().height ?? 60) - 8);
    window.scrollBy(0, -(header?.getBoundingClientRect().height ?? 60) - 8);
  });
  await shots.take('08-compare-runs', '08-compare-runs.png');
});
