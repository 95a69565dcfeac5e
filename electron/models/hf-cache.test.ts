// Resolving a model in the Hugging Face hub cache, on a cache laid out as
// huggingface_hub writes it (hf-cache-fixture.ts) and filled with the bundled
// demo model: every accepted form reaches the snapshot refs/main names, the
// model opened there is the demo model (same logits, same inspect report),
// and each way a cache can be unusable is an error that names the file and
// the command that fixes it.
import { mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';
import { loadAddon } from '../engine/load.js';
import { openSession } from '../session.js';
import { inspectModel, type InspectReport } from '../cli/commands/inspect.js';
import { openModelFolder } from './folder.js';
import { chooseSnapshot, hubCacheDir, HfCacheError, resolveCachedModel, resolutionNote } from './hf-cache.js';
import { commitOf, demoModelDir, filesOf, sha256, writeCachedRevision } from './hf-cache-fixture.js';

const REPO = 'tiny-org/demo-llama';

function demoCache(tag: string, revision = commitOf('v1')) {
  const cache = tempDir(`hf-${tag}`);
  const written = writeCachedRevision(cache, REPO, revision, filesOf(demoModelDir()));
  return { cache, env: { HF_HUB_CACHE: cache }, revision, ...written };
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('where the cache is', () => {
  it('follows huggingface_hub: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a/hub', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' })).toBe('/a/hub');
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' })).toBe('/b');
    expect(hubCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/d' })).toBe('/c/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/d' })).toBe('/d/huggingface/hub');
    expect(hubCacheDir({})).toBe(join(homedir(), '.cache', 'huggingface', 'hub'));
    expect(hubCacheDir({ HF_HOME: '~/hf' })).toBe(join(homedir(), 'hf', 'hub'));
    expect(hubCacheDir({ HF_HUB_CACHE: '', HF_HOME: '/c' })).toBe('/c/hub'); // set but empty: not set
  });
});

describe('resolving each accepted form', () => {
  it('the repo folder, its snapshots folder and the repo id (HF_HUB_CACHE or HF_HOME) give the snapshot refs/main names', async () => {
    const c = demoCache('forms');
    const expected = { repoId: REPO, repoDir: c.repoDir, snapshot: c.snapshot, revision: c.revision, how: 'refs/main' };
    expect(await resolveCachedModel(c.repoDir, {})).toEqual(expected);
    expect(await resolveCachedModel(join(c.repoDir, 'snapshots'), {})).toEqual(expected);
    expect(await resolveCachedModel(REPO, c.env)).toEqual(expected);
    // HF_HOME: the cache is its hub/ folder
    const home = tempDir('hf-home');
    writeCachedRevision(join(home, 'hub'), REPO, c.revision, filesOf(demoModelDir()));
    expect((await resolveCachedModel(REPO, { HF_HOME: home }))?.snapshot).toBe(join(home, 'hub', 'models--tiny-org--demo-llama', 'snapshots', c.revision));
    expect(resolutionNote(expected as Awaited<ReturnType<typeof chooseSnapshot>>)).toBe(`using ${REPO} at revision ${c.revision.slice(0, 12)} (refs/main): ${c.snapshot}`);
  });

  it('opening a cache folder as a model folder (the app\'s field) names the snapshot refs/main names', async () => {
    const c = demoCache('open');
    await expect(openModelFolder(c.repoDir)).rejects.toThrow(`${c.repoDir}: is a Hugging Face cache folder, not a model folder; its refs/main names ${c.snapshot}: pick that folder`);
    await expect(openModelFolder(join(c.repoDir, 'snapshots'))).rejects.toThrow(`refs/main names ${c.snapshot}: pick that folder`);
  });

  it('leaves alone what is no cache model: a model folder (a snapshot too), another folder, a missing single word', async () => {
    const c = demoCache('plain');
    expect(await resolveCachedModel(demoModelDir(), c.env)).toBeNull();
    expect(await resolveCachedModel(c.snapshot, c.env)).toBeNull();
    expect(await resolveCachedModel(tempDir('other'), c.env)).toBeNull();
    expect(await resolveCachedModel('no-such-folder-here', c.env)).toBeNull();
  });

  it('the model opened from the snapshot is the demo model: same tensors, logits and inspect report', async () => {
    const c = demoCache('same');
    const choice = (await resolveCachedModel(REPO, c.env))!;
    const [cached, original] = [await openModelFolder(choice.snapshot), await openModelFolder(demoModelDir())];
    expect(cached.spec).toEqual(original.spec);
    expect(cached.weights.map((w) => ({ ...w, file: undefined }))).toEqual(original.weights.map((w) => ({ ...w, file: undefined })));
    // the report differs only in the folder it names
    const addon = loadAddon();
    const settings: InspectReport['settings'] = { batch_size: 2, seq_len: 64, rank: 8, targets: ['q_proj', 'v_proj'], optimizer: 'adamw', gradient_checkpointing: false };
    const machine = { cpu_model: 'test', cpu_threads: 2, total_memory_bytes: 8e9, available_memory_bytes: 4e9 };
    const target = { device: 'cpu', precision: 'fp32' } as const;
    const a = inspectModel(addon, cached, settings, machine, target);
    const b = inspectModel(addon, original, settings, machine, target);
    expect(a.model).toBe(choice.snapshot);
    expect({ ...a, model: '' }).toEqual({ ...b, model: '' });
    // the logits of a few tokens, bit for bit
    const tokens = Int32Array.from([0, 17, 250, 3, 798]);
    const logitsOf = async (dir: string) => {
      const session = await openSession(dir, { threads: 1, device: 'cpu', precision: 'fp32' });
      try {
        session.engine.resetCache(tokens.length);
        return await session.engine.decode(tokens);
      } finally {
        session.dispose();
      }
    };
    const [la, lb] = [await logitsOf(choice.snapshot), await logitsOf(demoModelDir())];
    expect(la.length).toBe(799);
    expect(Array.from(la)).toEqual(Array.from(lb));
  }, 60_000);
});

describe('which snapshot', () => {
  it('several snapshots: refs/main decides; without it, an error listing them with their dates; one alone is used', async () => {
    const c = demoCache('several');
    const old = commitOf('v0');
    writeCachedRevision(c.cache, REPO, old, filesOf(demoModelDir()), false);
    utimesSync(join(c.repoDir, 'snapshots', old), new Date('2025-03-04T05:06:00Z'), new Date('2025-03-04T05:06:00Z'));
    expect((await resolveCachedModel(REPO, c.env))?.revision).toBe(c.revision);

    unlinkSync(join(c.repoDir, 'refs', 'main'));
    const e = await errorOf(resolveCachedModel(REPO, c.env));
    expect(e).toBeInstanceOf(HfCacheError);
    expect(e.message).toContain('has 2 snapshots and no refs/main');
    expect(e.message).toContain(join(c.repoDir, 'snapshots', old) + ' (downloaded 2025-03-04 05:06 UTC)');
    expect(e.message).toContain(c.snapshot);
    expect(e.message).toContain('Pass the snapshot folder you want');

    rmSync(join(c.repoDir, 'snapshots', old), { recursive: true });
    expect(await resolveCachedModel(REPO, c.env)).toMatchObject({ snapshot: c.snapshot, how: 'the only snapshot' });
  });

  it('a detached ref: refs/main names a snapshot that is not there', async () => {
    const c = demoCache('detached');
    const gone = commitOf('v2');
    writeFileSync(join(c.repoDir, 'refs', 'main'), gone);
    const e = await errorOf(resolveCachedModel(c.repoDir, {}));
    expect(e.message).toContain(`refs/main: names revision ${gone}`);
    expect(e.message).toContain(`hf download ${REPO}`);
    expect(e.message).toContain(`Snapshots there: ${c.snapshot}`);
  });

  it('a repo with no snapshot at all', async () => {
    const c = demoCache('empty');
    rmSync(c.snapshot, { recursive: true });
    rmSync(join(c.repoDir, 'refs'), { recursive: true }); // a download cut short before any ref was written
    const e = await errorOf(resolveCachedModel(REPO, c.env));
    expect(e.message).toContain('no snapshot');
    expect(e.message).toContain(`huggingface-cli download ${REPO}`);
  });
});

describe('snapshots whose files are not all there', () => {
  it('a dangling symlink names its file and the command that finishes the download', async () => {
    const c = demoCache('dangling');
    unlinkSync(c.blobs['tokenizer.json']);
    const e = await errorOf(resolveCachedModel(REPO, c.env));
    expect(e.message).toContain(`tokenizer.json (it links to ${c.blobs['tokenizer.json']}, which is missing)`);
    expect(e.message).toContain(`hf download ${REPO}`);
    expect(e.message).toContain('nothing is downloaded here');
  });

  it('a blob still .incomplete (an interrupted download)', async () => {
    const c = demoCache('incomplete');
    const blob = c.blobs['model.safetensors'];
    expect(blob.endsWith(sha256(readFileSync(join(demoModelDir(), 'model.safetensors'))))).toBe(true);
    renameSync(blob, blob + '.incomplete');
    const e = await errorOf(resolveCachedModel(REPO, c.env));
    expect(e.message).toContain(`model.safetensors (its blob ${blob} is still ${blob}.incomplete (3766936 bytes): the download was interrupted)`);
  });

  it('a single-file download cut short before its link was made (no model.safetensors, a .incomplete blob): interrupted, with the command that finishes it', async () => {
    // what huggingface_hub leaves: it links the snapshot's file only after blobs/<etag>.incomplete became the blob
    const c = demoCache('unlinked');
    const blob = c.blobs['model.safetensors'];
    renameSync(blob, blob + '.incomplete');
    unlinkSync(join(c.snapshot, 'model.safetensors'));
    const expected = `${c.snapshot}: the download of ${REPO} is incomplete: the snapshot has no weights (model.safetensors or model.safetensors.index.json) yet, `
      + `and ${join(c.repoDir, 'blobs')} holds ${basename(blob)}.incomplete. A download was interrupted (a .incomplete blob): `
      + `finish it with \`hf download ${REPO}\` (or \`huggingface-cli download ${REPO}\`). Nothing is downloaded here.`;
    for (const value of [REPO, c.repoDir, c.snapshot]) {
      const e = await errorOf(resolveCachedModel(value, c.env));
      expect(e).toBeInstanceOf(HfCacheError);
      expect(e.message).toBe(expected);
    }
    // the app's Model page, given the snapshot folder, says the same
    const { modelOverview } = await import('../service/model.js');
    const machine = { cpuThreads: 1, cpuQuota: null, memoryLimitBytes: null } as unknown as Parameters<typeof modelOverview>[1];
    expect((await errorOf(modelOverview({ model: c.snapshot }, machine))).message).toBe(expected);
    // config.json cut short the same way is named too
    unlinkSync(join(c.snapshot, 'config.json'));
    expect((await errorOf(resolveCachedModel(REPO, c.env))).message).toContain('the snapshot has no config.json and no weights (model.safetensors or model.safetensors.index.json) yet');
  });

  it('a .incomplete blob beside a snapshot that has its files does not stop it; no weights and no such blob is left to openModelFolder', async () => {
    const c = demoCache('stale-incomplete');
    writeFileSync(join(c.repoDir, 'blobs', 'other.incomplete'), 'partial'); // e.g. an extra file still downloading
    expect(await resolveCachedModel(REPO, c.env)).toMatchObject({ snapshot: c.snapshot, how: 'refs/main' });
    const plain = demoCache('no-weights');
    unlinkSync(join(plain.snapshot, 'model.safetensors'));
    expect(await resolveCachedModel(REPO, plain.env)).toMatchObject({ snapshot: plain.snapshot });
    await expect(openModelFolder(plain.snapshot)).rejects.toThrow('has neither model.safetensors nor model.safetensors.index.json');
  });

  it('a shard the index names that the snapshot lacks', async () => {
    const cache = tempDir('hf-shard');
    const files = filesOf(demoModelDir());
    const { 'model.safetensors': weights, ...rest } = files;
    const index = { metadata: {}, weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors', 'lm_head.weight': 'model-00002-of-00002.safetensors' } };
    const { snapshot } = writeCachedRevision(cache, REPO, commitOf('sharded'), {
      ...rest, 'model-00001-of-00002.safetensors': weights, 'model.safetensors.index.json': Buffer.from(JSON.stringify(index)),
    });
    const e = await errorOf(resolveCachedModel(REPO, { HF_HUB_CACHE: cache }));
    expect(e.message).toContain(`${snapshot}: the download of ${REPO} is incomplete: model-00002-of-00002.safetensors (model.safetensors.index.json names it, but the snapshot lacks it)`);
  });

  it('a repo id not in the cache: says where it looked and that nothing is downloaded', async () => {
    const c = demoCache('absent');
    const e = await errorOf(resolveCachedModel('meta-llama/Llama-3.2-1B', c.env));
    expect(e.message).toContain(`no model meta-llama/Llama-3.2-1B in the Hugging Face cache (looked for ${join(c.cache, 'models--meta-llama--Llama-3.2-1B')}`);
    expect(e.message).toContain('Nothing is downloaded');
    expect(e.message).toContain('hf download meta-llama/Llama-3.2-1B');
  });

  it('files in subfolders are checked too', async () => {
    const c = demoCache('nested');
    const extra = writeCachedRevision(c.cache, REPO, c.revision, { 'original/params.json': Buffer.from('{}') });
    mkdirSync(join(c.snapshot, 'original'), { recursive: true });
    unlinkSync(extra.blobs['original/params.json']);
    const e = await errorOf(resolveCachedModel(REPO, c.env));
    expect(e.message).toContain('original/params.json (it links to');
  });
});

describe('review fixes', () => {
  it('a snapshot folder given as it is is checked for an incomplete download too', async () => {
    const c = demoCache('snapshot-direct');
    expect(await resolveCachedModel(c.snapshot, {})).toBeNull(); // complete: opened as it is
    unlinkSync(c.blobs['model.safetensors']);
    const e = await errorOf(resolveCachedModel(c.snapshot, {}));
    expect(e).toBeInstanceOf(HfCacheError);
    expect(e.message).toContain(`${c.snapshot}: the download of ${REPO} is incomplete: model.safetensors (it links to ${c.blobs['model.safetensors']}, which is missing)`);
  });

  it('a dataset in the cache given as a model says to give it as the data', async () => {
    const cache = tempDir('hf-dataset-as-model');
    const written = writeCachedRevision(cache, 'org/data', commitOf('d1'), { 'train.jsonl': Buffer.from('{"text": "a"}\n') }, true, 'datasets--org--data');
    const byFolder = await errorOf(resolveCachedModel(written.repoDir, {}));
    expect(byFolder.message).toBe(`${written.repoDir}: is a dataset in the Hugging Face cache, not a model; give it as the data (--data ${written.repoDir}), and a model as --model`);
    const byId = await errorOf(resolveCachedModel('org/data', { HF_HUB_CACHE: cache }));
    expect(byId.message).toBe('org/data: is a dataset in the Hugging Face cache, not a model; give it as the data (--data org/data), and a model as --model');
  });

  it('$VAR and ${VAR} in the cache variables are expanded, as huggingface_hub does', () => {
    expect(hubCacheDir({ HF_HOME: '$BASE/hf', BASE: '/srv' })).toBe('/srv/hf/hub');
    expect(hubCacheDir({ HF_HUB_CACHE: '${BASE}/hub-cache', BASE: '/srv' })).toBe('/srv/hub-cache');
    expect(hubCacheDir({ HF_HOME: '/x/$UNSET/y' })).toBe('/x/$UNSET/y/hub');
  });
});
