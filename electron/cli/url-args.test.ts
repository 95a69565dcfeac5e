// A URL given as --model, --data or --eval-data is refused by name, saying that
// nothing is downloaded and what to give instead; before, it became a path under
// the working directory ("…/https:/huggingface.co/…: not found").
import { describe, expect, it } from 'vitest';
import { cli } from '../testing/e2e-fixtures.js';
import { trainConfigFromSettings } from '../training/settings.js';

describe('a URL where a model or a dataset goes', () => {
  it.each([
    [['--model', 'https://huggingface.co/org/name', '--data', 'd.jsonl'], '--model https://huggingface.co/org/name: is a URL; URLs are not read and nothing is downloaded. Download it first (for the Hugging Face hub: hf download ORG/NAME), then give its repo id'],
    [['--model', 'm', '--data', 's3://bucket/train.jsonl'], '--data s3://bucket/train.jsonl: is a URL; URLs are not read and nothing is downloaded. Download it first (for the Hugging Face hub: hf download ORG/NAME --repo-type dataset)'],
    [['--model', 'm', '--data', 'd.jsonl', '--eval-data', 'hf://datasets/org/name'], '--eval-data hf://datasets/org/name: is a URL'],
  ])('train %j is refused by name', async (flags, message) => {
    const r = await cli(['train', ...flags, '--out', '/tmp/never-written']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`peft-studio: ${message}`);
  });

  it("the app's settings refuse it with the field", () => {
    expect(() => trainConfigFromSettings({ model: 'HTTPS://example.com/m', data: 'd.jsonl', out: 'o' })).toThrow(/^model HTTPS:\/\/example\.com\/m: is a URL; URLs are not read and nothing is downloaded/);
    expect(() => trainConfigFromSettings({ model: 'm', data: 'd.jsonl', out: 'o', evalData: 'https://x/e.jsonl' })).toThrow(/^evalData https:\/\/x\/e\.jsonl: is a URL/);
    // a Windows drive path is no URL
    expect(() => trainConfigFromSettings({ model: 'C:/models/m', data: 'd.jsonl', out: 'o' })).not.toThrow();
  });
});
