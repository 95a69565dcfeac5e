// Listing the models of a Hugging Face hub cache (laid out as huggingface_hub
// writes it): sizes against the blob files on disk, the reason each model
// that cannot be opened is given, and what is not a model left out.
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';
import { listCachedModels } from './hf-cache-list.js';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from './hf-cache-fixture.js';

/** The size of every blob file of a repo, summed (what the snapshot's files take on disk). */
function blobBytes(repoDir: string): number {
  return readdirSync(join(repoDir, 'blobs')).reduce((sum, name) => sum + statSync(join(repoDir, 'blobs', name)).size, 0);
}

describe('listing the cache', () => {
  it('lists each snapshot with its size, refs and whether it opens; skips datasets, spaces and .locks', async () => {
    const cache = tempDir('hf-list');
    const demo = filesOf(demoModelDir());
    // two names of one content (as when a repo holds a file twice): one blob, counted once
    const good = writeCachedRevision(cache, 'org/good', commitOf('good'), { ...demo, 'config-copy.json': demo['config.json'] });
    expect(readdirSync(join(good.repoDir, 'blobs'))).toHaveLength(Object.keys(demo).length);
    const older = commitOf('older');
    writeCachedRevision(cache, 'org/two', older, demo, false);
    utimesSync(join(cache, 'models--org--two', 'snapshots', older), new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T00:00:00Z'));
    const newer = writeCachedRevision(cache, 'org/two', commitOf('newer'), demo);
    const bin = writeCachedRevision(cache, 'org/bin-only', commitOf('bin'), { 'config.json': demo['config.json'], 'tokenizer.json': demo['tokenizer.json'], 'pytorch_model.bin': Buffer.alloc(1000, 7) });
    writeCachedRevision(cache, 'org/gguf-only', commitOf('gguf'), { 'llama.Q4_K_M.gguf': Buffer.alloc(500, 1) });
    writeCachedRevision(cache, 'org/no-tokenizer', commitOf('notok'), { 'config.json': demo['config.json'], 'model.safetensors': demo['model.safetensors'] });
    const bert = Buffer.from(JSON.stringify({ architectures: ['BertModel'], model_type: 'bert', hidden_size: 8 }));
    writeCachedRevision(cache, 'org/bert', commitOf('bert'), { 'config.json': bert, 'model.safetensors': demo['model.safetensors'], 'tokenizer.json': demo['tokenizer.json'] });
    writeCachedRevision(cache, 'org/data', commitOf('data'), { 'train.jsonl': Buffer.from('{}\n') }, true, 'datasets--org--data');
    mkdirSync(join(cache, 'spaces--org--app', 'snapshots'), { recursive: true });
    mkdirSync(join(cache, '.locks', 'models--org--good'), { recursive: true });
    // a download that never got a snapshot
    mkdirSync(join(cache, 'models--org--started', 'blobs'), { recursive: true });

    const list = await listCachedModels({ HF_HUB_CACHE: cache });
    expect(list.cacheDir).toBe(cache);
    expect(list.exists).toBe(true);
    expect(list.models.map((m) => [m.repoId, m.revision])).toEqual([
      ['org/bert', commitOf('bert')],
      ['org/bin-only', commitOf('bin')],
      ['org/gguf-only', commitOf('gguf')],
      ['org/good', commitOf('good')],
      ['org/no-tokenizer', commitOf('notok')],
      ['org/started', null],
      ['org/two', commitOf('newer')], // newest first
      ['org/two', older],
    ]);
    const byRevision = new Map(list.models.map((m) => [m.revision, m]));

    const g = byRevision.get(commitOf('good'))!;
    expect(g).toMatchObject({ repoDir: good.repoDir, snapshot: good.snapshot, refs: ['main'], usable: true, reason: null });
    expect(g.bytes).toBe(blobBytes(good.repoDir));
    expect(g.bytes).toBe(Object.values(demo).reduce((s, b) => s + b.length, 0));

    // the two revisions of org/two share their blobs: each snapshot's size is all of them
    expect(byRevision.get(commitOf('newer'))).toMatchObject({ snapshot: newer.snapshot, refs: ['main'], usable: true, bytes: blobBytes(newer.repoDir) });
    expect(byRevision.get(older)).toMatchObject({ refs: [], usable: true, modifiedMs: Date.parse('2025-01-01T00:00:00Z') });

    expect(byRevision.get(commitOf('bin'))).toMatchObject({ usable: false, bytes: blobBytes(bin.repoDir) });
    expect(byRevision.get(commitOf('bin'))!.reason).toContain('only PyTorch .bin weights; this app reads safetensors');
    expect(byRevision.get(commitOf('gguf'))!.reason).toContain('only GGUF weights');
    expect(byRevision.get(commitOf('gguf'))!.bytes).toBe(500);
    expect(byRevision.get(commitOf('notok'))!.reason).toContain('no tokenizer.json');
    expect(byRevision.get(commitOf('bert'))!.reason).toContain('BertModel');
    const started = list.models.find((m) => m.repoId === 'org/started')!;
    expect(started).toMatchObject({ snapshot: null, usable: false, bytes: 0 });
    expect(started.reason).toContain('hf download org/started');
  });

  it('an incomplete snapshot is listed with the missing file; an interrupted download with the command that finishes it', async () => {
    const cache = tempDir('hf-list-incomplete');
    const demo = filesOf(demoModelDir());
    const dangling = writeCachedRevision(cache, 'org/dangling', commitOf('d'), demo);
    unlinkSync(dangling.blobs['tokenizer.json']);
    // as huggingface_hub leaves an interrupted download: the blob is <sha>.incomplete and the snapshot has no link yet
    const cut = writeCachedRevision(cache, 'org/cut', commitOf('c'), demo);
    renameSync(cut.blobs['model.safetensors'], cut.blobs['model.safetensors'] + '.incomplete');
    unlinkSync(join(cut.snapshot, 'model.safetensors'));

    const list = await listCachedModels({ HF_HUB_CACHE: cache });
    const d = list.models.find((m) => m.repoId === 'org/dangling')!;
    expect(d.usable).toBe(false);
    expect(d.reason).toContain('tokenizer.json (it links to');
    expect(d.reason).toContain('hf download org/dangling');
    // the size is what is there
    expect(d.bytes).toBe(blobBytes(dangling.repoDir));
    const c = list.models.find((m) => m.repoId === 'org/cut')!;
    expect(c.usable).toBe(false);
    expect(c.reason).toContain('no weights (model.safetensors or model.safetensors.index.json)');
    expect(c.reason).toContain('A download was interrupted (a .incomplete blob): finish it with `hf download org/cut`');
  });

  it('a cache folder that does not exist: nothing listed, and said so', async () => {
    const missing = join(tempDir('hf-none'), 'hub');
    expect(await listCachedModels({ HF_HUB_CACHE: missing })).toEqual({ cacheDir: missing, exists: false, models: [] });
  });
});
