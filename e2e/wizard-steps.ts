// The wizard's steps as the specs drive them, one function per step, so the
// LoRA, QLoRA, cancel/resume and bad-data specs walk the same UI the same way.
// Locators: roles and labels where the page has them, data-testid (listed at
// the top of each page component) for the rest.
import type { Page } from '@playwright/test';
import { expect, DEMO_MODEL } from './fixtures.js';
import { readModelConfig, type LlamaConfig } from './peft-files.js';

export const METHODS = ['full', 'lora', 'qlora', 'prompt', 'prefix'] as const;

/** The digits of the first number in a text ("1,881,408\n0.52% of the model" -> 1881408). */
export function firstCount(text: string | null): number {
  const m = /\d[\d,]*/.exec(text ?? '');
  if (!m) throw new Error(`no number in ${JSON.stringify(text)}`);
  return Number(m[0].replace(/,/g, ''));
}

/** Parameters of a Llama model, counted from config.json (untied embeddings, no biases). */
export function llamaParameterCount(c: LlamaConfig & { vocab_size: number; tie_word_embeddings?: boolean }): number {
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const q = c.hidden_size * c.num_attention_heads * headDim;
  const kv = 2 * c.hidden_size * c.num_key_value_heads * headDim;
  const o = c.num_attention_heads * headDim * c.hidden_size;
  const mlp = 3 * c.hidden_size * c.intermediate_size;
  const norms = 2 * c.hidden_size;
  const embeddings = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
  return c.num_hidden_layers * (q + kv + o + mlp + norms) + embeddings + c.hidden_size;
}

export function demoConfig(): LlamaConfig & { vocab_size: number; tie_word_embeddings?: boolean } {
  return readModelConfig(DEMO_MODEL) as LlamaConfig & { vocab_size: number };
}

/** Step 1: the bundled demo model, its facts, and the resource table with a verdict per method. */
export async function chooseDemoModel(page: Page): Promise<void> {
  await expect(page.getByTestId('page-model')).toBeVisible();
  await page.getByRole('button', { name: 'Use the bundled demo model' }).click();
  const table = page.getByTestId('resource-table');
  await expect(table).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('model-architecture')).toHaveText('LlamaForCausalLM');
  expect(firstCount(await page.getByTestId('model-parameters').textContent())).toBe(llamaParameterCount(demoConfig()));
  await expect(table.locator('tbody tr')).toHaveCount(METHODS.length);
  for (const method of METHODS) {
    const row = page.getByTestId(`resource-row-${method}`);
    await expect(row).toHaveAttribute('data-fits', /^(true|false)$/);
    const fits = (await row.getAttribute('data-fits')) === 'true';
    await expect(page.getByTestId(`resource-fits-${method}`)).toContainText(fits ? 'fits' : "doesn't fit");
  }
  // a 1.9 M-parameter model fits everywhere this suite runs
  await expect(page.getByTestId('resource-row-lora')).toHaveAttribute('data-fits', 'true');
}

/** Opens a wizard step from the sidebar. */
export async function openStep(page: Page, step: 'model' | 'method' | 'data' | 'hyperparameters' | 'train' | 'export' | 'runs'): Promise<void> {
  await page.getByTestId(`nav-${step}`).click();
  await expect(page.getByTestId(`page-${step}`)).toBeVisible();
}

/** Step 2: a method card, chosen; its verdict is shown before anything starts. */
export async function chooseMethod(page: Page, method: (typeof METHODS)[number]): Promise<void> {
  await page.getByTestId('model-next').click();
  await expect(page.getByTestId('page-method')).toBeVisible();
  await expect(page.getByTestId('method-recommendation')).toBeVisible();
  for (const m of METHODS) {
    await expect(page.getByTestId(`method-fits-${m}`)).toHaveText(/^\s*(fits|doesn't fit)\s*$/);
  }
  await page.getByTestId(`method-choose-${method}`).click();
  await expect(page.getByTestId(`method-card-${method}`)).toHaveAttribute('data-selected', 'true');
  await expect(page.getByRole('radio', { checked: true })).toHaveCount(1);
}

/** Step 3, bundled dataset: the button named after it. */
export async function chooseBundledDataset(page: Page, name: string): Promise<void> {
  await page.getByTestId('method-next').click();
  await expect(page.getByTestId('page-data')).toBeVisible();
  await page.locator(`[data-testid="data-demo-item"][data-name="${name}"]`).click();
  await expect(page.getByTestId('data-report')).toBeVisible({ timeout: 30_000 });
}

/** Step 3, any file: typed into the path field (browser mode has no native dialog). */
export async function typeDatasetPath(page: Page, file: string): Promise<void> {
  await page.getByTestId('method-next').click();
  await expect(page.getByTestId('page-data')).toBeVisible();
  await page.getByLabel('Dataset file').fill(file);
  await page.getByTestId('data-picker-use').click();
}

/** Step 4: set fields (by key) and wait for a passing verdict. Advanced fields are opened first. */
export async function setHyperparameters(page: Page, values: Record<string, string>): Promise<void> {
  await page.getByTestId('data-next').click();
  await expect(page.getByTestId('page-hyperparameters')).toBeVisible();
  await expect(page.getByTestId('hyper-form')).toBeVisible({ timeout: 30_000 });
  const advanced = page.getByTestId('hyper-advanced');
  if (!(await advanced.getAttribute('open').then((v) => v !== null))) await advanced.locator('summary').click();
  for (const [key, value] of Object.entries(values)) {
    await page.getByTestId(`input-${key}`).fill(value);
    await expect(page.getByTestId(`error-${key}`)).toBeHidden();
  }
  await expect(page.getByTestId('check-pending')).toHaveCount(0, { timeout: 30_000 });
  await expect(page.getByTestId('start-training')).toBeEnabled();
}

/** Clicks Start and waits for the Train page. */
export async function startTraining(page: Page): Promise<string> {
  await page.getByTestId('start-training').click();
  await expect(page.getByTestId('page-train')).toBeVisible({ timeout: 30_000 });
  const runDir = await page.getByTestId('run-dir').getAttribute('title');
  if (!runDir) throw new Error('the Train page shows no run folder');
  return runDir;
}

const TERMINAL = ['finished', 'failed', 'cancelled', 'interrupted'];

/**
 * Waits for the run on the Train page to reach this status; a different
 * terminal status fails at once, with the run's message.
 */
export async function waitForStatus(page: Page, status: string, timeout = 90_000): Promise<void> {
  const badge = page.getByTestId('run-status');
  await expect
    .poll(async () => {
      const now = await badge.getAttribute('data-status');
      return now === status || TERMINAL.includes(now ?? '') ? now : 'pending';
    }, { timeout, intervals: [100, 250, 500] })
    .not.toBe('pending');
  const now = await badge.getAttribute('data-status');
  if (now !== status) {
    const message = await page.getByTestId('run-message').textContent().catch(() => null);
    throw new Error(`the run ended '${now}', not '${status}': ${message ?? '(no message)'}`);
  }
}
