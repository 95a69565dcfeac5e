// The commands with a model from the Hugging Face hub cache (laid out as
// huggingface_hub writes it, holding the bundled demo model): `org/name` or
// the models--org--name folder becomes the snapshot refs/main names, with one
// note, for inspect (in process and the built binary), data inspect and
// train (whose run.json records the snapshot); what cannot be resolved fails
// with the reason and nothing downloaded; `models` lists the cache.
import { readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, runBinary, tempDir } from '../testing/e2e-fixtures.js';
import { packageRoot } from '../engine/load.js';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from '../models/hf-cache-fixture.js';
import { listCachedModels } from '../models/hf-cache-list.js';

const REPO = 'tiny-org/demo-llama';
const cache = tempDir('hf-cli');
const revision = commitOf('cli');
const { repoDir, snapshot } = writeCachedRevision(cache, REPO, revision, filesOf(demoModelDir()));
const note = `note: using ${REPO} at revision ${revision.slice(0, 12)} (refs/main): ${snapshot}\n`;

// the in-process commands read the cache folder from this process's environment
const saved = process.env.HF_HUB_CACHE;
beforeAll(() => {
  process.env.HF_HUB_CACHE = cache;
});
afterAll(() => {
  if (saved === undefined) delete process.env.HF_HUB_CACHE;
  else process.env.HF_HUB_CACHE = saved;
});

/** An inspect report without what changes from one moment to the next (free memory) or names the folder. */
function stable(stdout: string) {
  const { model: _model, machine: _machine, fits_in: _fits, memory, ...rest } = JSON.parse(stdout);
  const rows = Object.fromEntries(Object.entries(memory as Record<string, { fits: boolean }>).map(([k, { fits: _f, ...row }]) => [k, row]));
  return { ...rest, memory: rows };
}

describe('a model from the Hugging Face cache on the command line', () => {
  it('inspect org/name, --model org/name and the repo folder: the snapshot, one note, the same report as the model folder', async () => {
    const original = await cli(['inspect', demoModelDir(), '--device', 'cpu', '--seq-len', '64']);
    expect(original.code, original.stderr).toBe(0);
    for (const argv of [['inspect', REPO], ['inspect', '--model', REPO], ['inspect', repoDir]]) {
      const r = await cli([...argv, '--device', 'cpu', '--seq-len', '64']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe(note);
      expect(JSON.parse(r.stdout).model).toBe(snapshot);
      expect(stable(r.stdout)).toEqual(stable(original.stdout));
    }
    const twice = await cli(['inspect', REPO, '--model', REPO]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('as <modelDir> or as --model, not both');
  });

  it('the built binary: inspect --model org/name with HF_HUB_CACHE set', () => {
    const r = runBinary(['inspect', '--model', REPO, '--device', 'cpu', '--seq-len', '64'], { HF_HUB_CACHE: cache });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(note);
    expect(JSON.parse(r.stdout)).toMatchObject({ model: snapshot, architecture: 'LlamaForCausalLM', parameters: expect.any(Number) });
    // a repo the cache lacks: where it looked, and nothing downloaded
    const absent = runBinary(['inspect', '--model', 'someone/not-here'], { HF_HUB_CACHE: cache });
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain(`no model someone/not-here in the Hugging Face cache (looked for ${join(cache, 'models--someone--not-here')}`);
    expect(absent.stderr).toContain('Nothing is downloaded');
  }, 120_000);

  it('a single-file download cut short (a .incomplete blob, no model.safetensors yet): inspect org/name and --model org/name say so and name hf download', async () => {
    // a cache of its own: `models` below lists exactly the one repo of `cache`
    const cut = tempDir('hf-cli-cut');
    const partial = writeCachedRevision(cut, 'org/partial', commitOf('partial'), filesOf(demoModelDir()));
    renameSync(partial.blobs['model.safetensors'], partial.blobs['model.safetensors'] + '.incomplete');
    unlinkSync(join(partial.snapshot, 'model.safetensors'));
    const says = [`${partial.snapshot}: the download of org/partial is incomplete: the snapshot has no weights`, 'A download was interrupted (a .incomplete blob): finish it with `hf download org/partial`'];
    process.env.HF_HUB_CACHE = cut;
    try {
      const r = await cli(['inspect', 'org/partial']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      for (const part of says) expect(r.stderr).toContain(part);
      expect(r.stderr).not.toContain('Pick a Hugging Face model folder');
      // `models` says the same of it
      const listed = (await listCachedModels({ HF_HUB_CACHE: cut })).models[0];
      expect(listed).toMatchObject({ repoId: 'org/partial', usable: false });
      expect(listed.reason).toContain(says[1]);
    } finally {
      process.env.HF_HUB_CACHE = cache;
    }
    const bin = runBinary(['generate', '--model', 'org/partial', '--prompt', 'x'], { HF_HUB_CACHE: cut });
    expect(bin.code).toBe(1);
    expect(bin.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1); // one line
    for (const part of says) expect(bin.stderr).toContain(part);
  }, 60_000);

  it('data inspect --model org/name uses the cached tokenizer', async () => {
    const data = join(packageRoot(), 'resources', 'demo', 'task-train.jsonl');
    const viaCache = await cli(['data', 'inspect', data, '--model', REPO]);
    expect(viaCache.code, viaCache.stderr).toBe(0);
    expect(viaCache.stderr.startsWith(note)).toBe(true);
    const direct = await cli(['data', 'inspect', data, '--model', demoModelDir()]);
    expect(viaCache.stdout.split(snapshot).join('<model>')).toBe(direct.stdout.split(demoModelDir()).join('<model>'));
  });

  it('models lists the cache: a table, or JSON as listCachedModels gives it', async () => {
    const table = await cli(['models']);
    expect(table.code, table.stderr).toBe(0);
    const bytes = Object.values(filesOf(demoModelDir())).reduce((sum, b) => sum + b.length, 0);
    const [header, row, ...rest] = table.stdout.trimEnd().split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['MODEL', 'REVISION', 'SIZE', 'OPENS']);
    expect(row.split(/\s{2,}/)).toEqual([REPO, `${revision.slice(0, 12)} (main)`, `${(bytes / 1024 / 1024).toFixed(1)} MiB`, 'yes']);
    expect(rest).toEqual([]);
    expect(table.stderr).toContain(`cache: ${cache}`);
    const json = await cli(['models', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(await listCachedModels({ HF_HUB_CACHE: cache }));
    process.env.HF_HUB_CACHE = join(cache, 'absent');
    try {
      expect((await cli(['models'])).stdout).toBe(`no models in the Hugging Face cache (${join(cache, 'absent')} does not exist)\n`);
    } finally {
      process.env.HF_HUB_CACHE = cache;
    }
  });

  it('train --model org/name records the snapshot in run.json', async () => {
    const out = join(tempDir('hf-train'), 'run');
    const data = join(packageRoot(), 'resources', 'demo', 'task-train.jsonl');
    const r = await cli(['train', '--model', REPO, '--data', data, '--out', out, '--steps', '1', '--batch-size', '1', '--seq-len', '32', '--threads', '1', '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.startsWith(note)).toBe(true);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { config: { model: string } };
    expect(run.config.model).toBe(snapshot);
  }, 120_000);
});
