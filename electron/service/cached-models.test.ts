// cachedModels through the service (the call the Model page makes, in the
// desktop app and in browser mode): the cache HF_HUB_CACHE names is listed
// as listCachedModels lists it; browser mode lists only what the server may
// use and says how many it left out; a request that is no object is refused.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiResult, CachedModels } from '../api/contract.js';
import { listCachedModels } from '../models/hf-cache-list.js';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from '../models/hf-cache-fixture.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('cached-models-home');
const saved = process.env.HF_HUB_CACHE;
const cache = tempDir('hf-service');
const good = writeCachedRevision(cache, 'tiny-org/demo-llama', commitOf('svc'), filesOf(demoModelDir()));
writeCachedRevision(cache, 'tiny-org/gguf', commitOf('gguf'), { 'm.gguf': Buffer.alloc(64, 1) });

const services: StudioService[] = [];
function service(allowedRoots: string[] | null): StudioService {
  const s = createStudioService({ mode: 'browser', allowedRoots });
  services.push(s);
  return s;
}

beforeAll(() => {
  process.env.HF_HUB_CACHE = cache;
});
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
});
afterAll(() => {
  if (saved === undefined) delete process.env.HF_HUB_CACHE;
  else process.env.HF_HUB_CACHE = saved;
});

async function call(s: StudioService, request: unknown): Promise<ApiResult<'cachedModels'>> {
  return (await s.call('cachedModels', request)) as ApiResult<'cachedModels'>;
}

describe('cachedModels', () => {
  it('no folder limits (the desktop app, serve without --root): every cached model, as listed from the cache folder', async () => {
    const r = await call(service(null), {});
    expect(r.ok).toBe(true);
    const value = (r as { ok: true; value: CachedModels }).value;
    const listed = await listCachedModels({ HF_HUB_CACHE: cache });
    expect(value).toEqual({ cacheDir: cache, models: listed.models, hidden: 0 });
    expect(value.models.map((m) => [m.repoId, m.usable])).toEqual([['tiny-org/demo-llama', true], ['tiny-org/gguf', false]]);
    expect(value.models[0].snapshot).toBe(good.snapshot);
  });

  it('browser mode: only models inside the served folders; the others counted, the cache folder not named', async () => {
    const outside = await call(service([tempDir('served')]), {});
    expect((outside as { ok: true; value: CachedModels }).value).toEqual({ cacheDir: null, models: [], hidden: 2 });
    const inside = await call(service([good.repoDir]), {});
    const value = (inside as { ok: true; value: CachedModels }).value;
    expect(value.models.map((m) => m.snapshot)).toEqual([good.snapshot]);
    expect(value.hidden).toBe(1);
    expect(value.cacheDir).toBeNull();
    const whole = (await call(service([cache]), {})) as { ok: true; value: CachedModels };
    expect(whole.value.cacheDir).toBe(cache);
    expect(whole.value.models).toHaveLength(2);
  });

  it('a request that is no object is refused', async () => {
    const r = await call(service(null), 'list');
    expect(r.ok).toBe(false);
    expect((r as { ok: false; error: { code: string } }).error.code).toBe('invalid');
  });

  it('no cache folder: an empty list', async () => {
    process.env.HF_HUB_CACHE = join(cache, 'nothing-here');
    try {
      const r = (await call(service(null), {})) as { ok: true; value: CachedModels };
      expect(r.value).toEqual({ cacheDir: join(cache, 'nothing-here'), models: [], hidden: 0 });
    } finally {
      process.env.HF_HUB_CACHE = cache;
    }
  });
});
