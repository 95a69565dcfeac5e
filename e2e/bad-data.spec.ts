// Bad data gets a clear error that names the file and the line, in the page,
// before anything trains. Browser mode has no native dialog: one file is
// picked with the in-page file browser (listDir over the work folder), the
// other typed into the path field.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures.js';
import { chooseDemoModel, chooseMethod, typeDatasetPath } from './wizard-steps.js';

test('a dataset with no usable rows shows an error naming the file and the broken line', async ({ page, studio, shots }) => {
  // rows 1 and 2 have empty answers, row 3 is broken JSON: nothing to train on
  const file = join(studio.workDir, 'broken-answers.jsonl');
  writeFileSync(
    file,
    ['{"prompt":"Question: What color is the fox?\\nAnswer:","completion":""}', '{"prompt":"Question: Where does the cat live?\\nAnswer:","completion":""}', '{"prompt":"Question: What does the dog eat?\\nAnswer:", "completion": oops}', ''].join('\n'),
  );
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'lora');
  await page.getByTestId('method-next').click();
  await expect(page.getByTestId('page-data')).toBeVisible();

  // the in-page browser starts at the top of what may be browsed: the work folder
  await page.getByTestId('data-picker-browse').click();
  const browser = page.getByTestId('file-browser');
  await expect(browser).toBeVisible();
  await browser.locator(`[data-testid="file-browser-entry"][data-path="${file}"]`).click();
  await expect(browser).toBeHidden();

  const error = page.getByTestId('data-error');
  await expect(error).toBeVisible({ timeout: 30_000 });
  await expect(error).toContainText(`${file}:3`);
  await expect(error).toContainText('not valid JSON');
  await expect(error).toContainText('"completion" is empty');
  await expect(page.getByTestId('data-report')).toHaveCount(0);
  await expect(page.getByTestId('nav-hyperparameters')).toBeDisabled();
  await shots.take('01-no-usable-rows');
});

test('a broken line among good rows is skipped and listed with its file and line', async ({ page, studio, shots }) => {
  const file = join(studio.workDir, 'one-broken-line.jsonl');
  writeFileSync(
    file,
    ['{"prompt":"Question: What color is the fox?\\nAnswer:","completion":" white"}', '{"prompt":"Question: What color is the cat?\\nAnswer:","completion":" grey"}', '{"prompt": "Question: What color is the dog?\\nAnswer:", "completion": oops}', '{"prompt":"Question: Where does the fox live?\\nAnswer:","completion":" forest"}', ''].join('\n'),
  );
  await page.goto(studio.url);
  await chooseDemoModel(page);
  await chooseMethod(page, 'lora');
  await typeDatasetPath(page, file);

  await expect(page.getByTestId('data-report')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('data-rows-total')).toHaveText('4');
  await expect(page.getByTestId('data-rows-used')).toHaveText('3');
  await expect(page.getByTestId('data-rows-skipped')).toHaveText('1');
  const skipped = page.getByTestId('data-skipped-row');
  await expect(skipped).toHaveCount(1);
  await expect(skipped).toContainText('one-broken-line.jsonl:3');
  await expect(skipped).toContainText('not valid JSON');
  await shots.take('01-skipped-row');
});
