// The Model step offers the models already in the Hugging Face cache (a
// cache laid out as huggingface_hub writes it, holding the bundled demo
// model), rendered in jsdom against the real studio service: each with its
// size; one that cannot be opened is shown with its reason, not hidden; a
// click reads the snapshot folder, which then names the model everywhere.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { tempDir } from '../../../electron/testing/e2e-fixtures.js';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from '../../../electron/models/hf-cache-fixture.js';
import { formatBytes } from '../format.js';
import { Studio } from '../state/studio.svelte.js';
import { byId, until } from '../testing/dom-waits.js';
import { pageHarness } from '../testing/page-harness.js';

// the service lists the cache HF_HUB_CACHE names when the page asks
const cache = tempDir('hf-page');
process.env.HF_HUB_CACHE = cache;
const revision = commitOf('page');
const good = writeCachedRevision(cache, 'tiny-org/demo-llama', revision, filesOf(demoModelDir()));
const demo = filesOf(demoModelDir());
writeCachedRevision(cache, 'tiny-org/bin-only', commitOf('bin'), { 'config.json': demo['config.json'], 'tokenizer.json': demo['tokenizer.json'], 'pytorch_model.bin': Buffer.alloc(2048, 3) });

const harness = pageHarness<{ studio: Studio }>({
  homePrefix: 'peft-studio-model-cache-page-',
  allowedRoots: null,
  load: () => import('./Model.svelte'),
});

/** What the repo's blobs take on disk (the size the page should show). */
function blobBytes(repoDir: string): number {
  return readdirSync(join(repoDir, 'blobs')).reduce((sum, n) => sum + statSync(join(repoDir, 'blobs', n)).size, 0);
}

describe('models in the Hugging Face cache', () => {
  it('are listed with their size and reason, and one is picked as its snapshot folder', async () => {
    const studio = new Studio();
    const root = harness.mount({ studio });
    await until('the cached models', () => root.querySelectorAll('[data-testid="model-cached-item"]').length === 2);
    expect(byId(root, 'model-cached')!.textContent).toContain(cache);
    const [binRow, goodRow] = [...root.querySelectorAll<HTMLElement>('[data-testid="model-cached-item"]')];

    // sorted by repo id; the .bin-only one is there, with why it cannot be used and no button
    expect(binRow.textContent).toContain('tiny-org/bin-only');
    expect(byId(binRow, 'model-cached-use')).toBeNull();
    expect(byId(binRow, 'model-cached-reason')!.textContent).toContain('only PyTorch .bin weights');
    expect(byId(binRow, 'model-cached-size')!.textContent).toBe(formatBytes(blobBytes(join(cache, 'models--tiny-org--bin-only'))));

    expect(goodRow.textContent).toContain(`${revision.slice(0, 7)} (main)`);
    expect(byId(goodRow, 'model-cached-reason')).toBeNull();
    expect(byId(goodRow, 'model-cached-size')!.textContent).toBe(formatBytes(blobBytes(good.repoDir)));
    byId(goodRow, 'model-cached-use')!.click();
    await until('the cached model read', () => studio.model === good.snapshot && byId(root, 'model-facts') !== null);
    expect(byId(root, 'model-facts')!.textContent).toContain(good.snapshot);
    expect(byId(root, 'model-architecture')!.textContent).toBe('LlamaForCausalLM');
    // the recent list names it by its repo id, not by the commit hash folder
    await until('the recent list', () => byId(root, 'model-recent-item') !== null);
    expect(byId(root, 'model-recent-item')!.textContent).toBe(`tiny-org/demo-llama @ ${revision.slice(0, 7)}`);
  }, 60_000);
});
