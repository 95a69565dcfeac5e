// The error banner: one alert, and the field a request names in the page's
// words, never the internal key ("in model", "in hyper.lr").
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';

import type { ApiErrorBody } from '../../../electron/api/contract.js';
import ErrorBanner from './ErrorBanner.svelte';
import { fieldWords } from './field-words.js';

let component: ReturnType<typeof mount> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

function render(error: ApiErrorBody): HTMLElement {
  const target = document.createElement('div');
  document.body.append(target);
  component = mount(ErrorBanner, { target, props: { error, ondismiss: () => {} } });
  flushSync();
  return target;
}

describe('the error banner', () => {
  it('names the field in words, as one alert', () => {
    const root = render({ code: 'invalid', field: 'model', message: '/tmp/x: no config.json' });
    expect(root.querySelector('[data-testid="error-field"]')!.textContent).toBe('the model folder');
    expect(root.querySelector('[data-testid="error-banner"]')!.textContent).not.toMatch(/\bin\s+model\b/);
    expect(root.querySelectorAll('[role="alert"]')).toHaveLength(1);
  });

  it('words every key it may meet', () => {
    expect(fieldWords('data')).toBe('the dataset file');
    expect(fieldWords('hyper.lr')).toBe('learning rate');
    expect(fieldWords('hyper.batchSize')).toBe('batch size');
    expect(fieldWords('seqLen')).toBe('sequence length');
    // a key without its own words: its camelCase split
    expect(fieldWords('hyper.maxGradNorm')).toBe('max grad norm');
    expect(fieldWords('seed')).toBe('seed');
  });
});
