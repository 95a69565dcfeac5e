// The whole wizard in browser mode, as a user walks it: the bundled demo
// model → LoRA → the bundled task dataset → a short run whose chart grows
// live → a PEFT export, checked on disk as a PEFT adapter by an independent
// reader → the try panel answering with the base model and with the adapter
// → the run on the Runs page. A screenshot of every step (the README's
// screenshots when PEFT_STUDIO_SCREENSHOTS is set).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_DIR, expect, test } from './fixtures.js';
import { expectedLoraTensors, hasNonZero, readSafetensors } from './peft-files.js';
import {
  chooseBundledDataset,
  chooseDemoModel,
  chooseMethod,
  demoConfig,
  firstCount,
  openStep,
  setHyperparameters,
  startTraining,
  waitForStatus,
} from './wizard-steps.js';

// the bundled demo's own LoRA settings (electron/demo/run-demo.ts): enough for
// the adapter to answer held-out questions of the task (about 10 s on two cores)
const STEPS = 160;
const EVAL_EVERY = 40;
const BATCH = 8;
const LR = '0.002';
const WARMUP = 10;
const RANK = 8;
const ALPHA = 16;
// not the default (q_proj, v_proj): the export must carry what was set
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Rows of a .jsonl file that parse (the bundled files have no bad rows). */
function jsonlRows(file: string): unknown[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
}

test('the wizard: demo model, LoRA, bundled data, a live run, PEFT export checked on disk, try panel', async ({ page, studio, shots }) => {
  await page.goto(studio.url);

  // 1. Model
  await chooseDemoModel(page);
  await shots.take('01-model', '01-model.png');

  // 2. Method
  await chooseMethod(page, 'lora');
  await shots.take('02-method', '02-method.png');

  // 3. Data: the report's counts come from the file itself; the mask preview
  // of row 1 marks the answer's tokens as trained and the prompt's as not
  const trainFile = join(DEMO_DIR, 'task-train.jsonl');
  const rows = jsonlRows(trainFile).length;
  await chooseBundledDataset(page, 'task-train');
  await expect(page.getByTestId('data-detected-format')).toContainText('completion');
  expect(firstCount(await page.getByTestId('data-rows-total').textContent())).toBe(rows);
  expect(firstCount(await page.getByTestId('data-rows-used').textContent())).toBe(rows);
  expect(firstCount(await page.getByTestId('data-rows-skipped').textContent())).toBe(0);
  await expect(page.getByTestId('preview-status')).toContainText('used');
  const tokens = page.getByTestId('mask-token');
  await expect(tokens.first()).toBeVisible();
  const trained = await page.locator('[data-testid="mask-token"][data-trained="true"]').count();
  const context = await page.locator('[data-testid="mask-token"][data-trained="false"]').count();
  expect(trained).toBeGreaterThan(0);
  expect(context).toBeGreaterThan(trained); // "Question: ... Answer:" is longer than the one-word answer
  // the trained tokens spell the completion of row 1 (plus the end-of-sequence token)
  const completion = (jsonlRows(trainFile)[0] as { completion: string }).completion.trim();
  await expect(page.locator('[data-testid="mask-token"][data-trained="true"]').first()).toBeVisible();
  const trainedText = (await page.locator('[data-testid="mask-token"][data-trained="true"]').allTextContents()).join('');
  expect(trainedText).toContain(completion);
  await page.getByTestId('mask-preview').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shots.take('03-data', '03-data.png');

  // 4. Hyperparameters
  await setHyperparameters(page, {
    steps: String(STEPS),
    batchSize: String(BATCH),
    lr: LR,
    rank: String(RANK),
    alpha: String(ALPHA),
    warmupSteps: String(WARMUP),
    targets: TARGETS.join(', '),
    evalSplit: '0.1',
    evalEvery: String(EVAL_EVERY),
  });
  await expect(page.getByTestId('check-verdict')).toBeVisible();
  // trainable parameters of rank-4 LoRA on these modules, from config.json
  const config = demoConfig();
  const expected = expectedLoraTensors(config, RANK, TARGETS);
  const trainable = [...expected.values()].reduce((n, shape) => n + shape[0] * shape[1], 0);
  await expect(page.getByTestId('trainable-params')).toHaveText(trainable.toLocaleString('en-US'));
  // precision: the engine here lists no GPU, so the field reads fp32 (CPU) and the check says the run computes in fp32
  await expect(page.getByTestId('precision-cpu-note')).toHaveText('fp32 (CPU)');
  await expect(page.getByTestId('check-precision')).toHaveText('fp32: the CPU computes in fp32');
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.getByTestId('check-verdict').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shots.take('04-hyperparameters', '04-hyperparameters.png');

  // 5. Train: record every value the loss chart's point count takes, to see it grow live
  // (oldValue catches counts replaced before the observer ran; the values read
  // at each callback show the order)
  await page.evaluate(() => {
    const all = new Set<number>();
    const order: number[] = [];
    Object.assign(window, { pointsSeen: { all, order } });
    new MutationObserver((records) => {
      for (const r of records) if (r.oldValue !== null) all.add(Number(r.oldValue));
      const fig = document.querySelector('[data-testid="loss-chart"]');
      const now = fig?.getAttribute('data-points');
      if (now !== null && now !== undefined) {
        all.add(Number(now));
        if (order[order.length - 1] !== Number(now)) order.push(Number(now));
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-points'], attributeOldValue: true });
  });
  const runDir = await startTraining(page);
  await waitForStatus(page, 'finished');
  await expect(page.getByTestId('progress-text')).toContainText(`step ${STEPS} of ${STEPS}`);
  const evalSteps = STEPS / EVAL_EVERY;
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-points', String(STEPS + evalSteps));
  const seen = await page.evaluate(() => {
    const { all, order } = (window as unknown as { pointsSeen: { all: Set<number>; order: number[] } }).pointsSeen;
    return { all: [...all].sort((a, b) => a - b), order };
  });
  // live: several intermediate counts were drawn before the last one, and the count only grew
  const intermediate = seen.all.filter((n) => n > 0 && n < STEPS + evalSteps);
  expect(intermediate.length, `point counts seen: ${seen.all.join(', ')}`).toBeGreaterThan(2);
  expect(seen.order, 'the point count went down').toEqual([...seen.order].sort((a, b) => a - b));
  // the run folder agrees: one metrics row per step, an eval row every EVAL_EVERY steps
  const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(metrics.filter((m) => typeof m.loss === 'number' && m.eval_loss === undefined).length).toBe(STEPS);
  expect(metrics.filter((m) => typeof m.eval_loss === 'number').map((m) => m.step)).toEqual(Array.from({ length: evalSteps }, (_, i) => (i + 1) * EVAL_EVERY));
  await shots.take('05-train', '05-train.png');

  // 6. Export: PEFT format into the work folder
  await page.getByTestId('go-export').click();
  await expect(page.getByTestId('page-export')).toBeVisible();
  await expect(page.getByTestId('format-peft')).toBeChecked();
  await expect(page.getByTestId('format-merged')).not.toBeChecked();
  await expect(page.getByTestId('format-gguf')).not.toBeChecked();
  const out = join(studio.workDir, 'exported-adapter');
  await page.getByTestId('export-out-input').fill(out);
  await page.getByTestId('export-out-use').click();
  await expect(page.getByTestId('export-out')).toHaveText(out);
  await page.getByTestId('export-button').click();
  await expect(page.getByTestId('export-result')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('export-check-peft')).toContainText('passed');

  // the folder on disk, read without the app's code
  const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  expect(adapterConfig.peft_type).toBe('LORA');
  expect(adapterConfig.task_type).toBe('CAUSAL_LM');
  expect(adapterConfig.r).toBe(RANK);
  expect(adapterConfig.lora_alpha).toBe(ALPHA);
  expect([...(adapterConfig.target_modules as string[])].sort()).toEqual([...TARGETS].sort());
  const weights = readSafetensors(join(out, 'adapter_model.safetensors'));
  expect([...weights.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, shape] of expected) {
    expect(weights.tensors.get(name)?.shape, name).toEqual(shape);
  }
  // B starts at zero in LoRA: a non-zero B in every module shows training reached the file
  for (const name of expected.keys()) {
    if (name.endsWith('lora_B.weight')) expect(hasNonZero(weights, name), `${name} is all zeros`).toBe(true);
  }
  expect(readdirSync(out).sort()).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));

  // Try: a held-out question (task-eval.jsonl, never trained on) through the base model and through the adapter
  const heldOut = jsonlRows(join(DEMO_DIR, 'task-eval.jsonl'))[0] as { prompt: string; completion: string };
  await page.getByTestId('try-prompt').fill(heldOut.prompt);
  await page.getByTestId('try-max-tokens').fill('8');
  await page.getByTestId('generate-button').click();
  // "1 token in 4 ms", "8 tokens in 0.12 s"
  await expect(page.getByTestId('adapter-stats')).toContainText(/\d+ tokens? in /, { timeout: 60_000 });
  await expect(page.getByTestId('base-stats')).toContainText(/\d+ tokens? in /);
  const answers: string[] = [];
  for (const side of ['base', 'adapter']) {
    const text = ((await page.getByTestId(`${side}-output`).textContent()) ?? '').trim();
    expect(text, `${side} answer`).not.toBe('');
    expect(text).not.toBe('—');
    answers.push(text);
  }
  // greedy decoding of the same prompt: only the adapter can make them differ, and it learned the task
  expect(answers[1], 'the adapter changed nothing').not.toBe(answers[0]);
  expect(answers[1].split(/\s+/)[0], 'the adapter\'s answer to a held-out question').toBe(heldOut.completion.trim());
  await page.getByTestId('page-export').getByRole('heading', { name: 'Try it' }).scrollIntoViewIfNeeded();
  await shots.take('06-export-try', '06-export-try.png');

  // Runs: the run is listed as finished, with its charts
  await openStep(page, 'runs');
  const row = page.locator(`[data-testid="run-row"][data-dir="${runDir}"]`);
  await expect(row).toHaveAttribute('data-status', 'finished');
  await row.getByTestId('run-select').click();
  await expect(page.getByTestId('run-loss-chart')).toHaveAttribute('data-points', String(STEPS + evalSteps));
  await shots.take('07-runs', '07-runs.png');
});
