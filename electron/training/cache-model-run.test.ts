// A run on a model from the Hugging Face cache (review): its adapters name
// the repo id as their base, as PEFT writes it (so they load anywhere, and
// export finds the base in the cache again); run.json records the revision
// and the weight blobs, and a resume refuses another revision whose weights
// differ (the model fingerprint covers shapes and the tokenizer, not weights),
// naming the snapshot to resume with.
import { mkdirSync, readFileSync, renameSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from '../models/hf-cache-fixture.js';
import { cli, tempDir } from '../testing/e2e-fixtures.js';

const REPO = 'tiny-org/demo-llama';
const DATA = join(demoModelDir(), '..', 'task-train.jsonl');
const THREADS = ['--threads', '2'];
let cache: string;
let before: string | undefined;

beforeAll(() => {
  cache = tempDir('cache-run-hub');
  before = process.env.HF_HUB_CACHE;
  process.env.HF_HUB_CACHE = cache; // the CLI runs in this process
});
afterAll(() => {
  if (before === undefined) delete process.env.HF_HUB_CACHE;
  else process.env.HF_HUB_CACHE = before;
});

/** The demo model's files with one weight changed (same shapes, same tokenizer: the same fingerprint). */
function otherWeights(): Record<string, Buffer> {
  const files = filesOf(demoModelDir());
  const weights = Buffer.from(files['model.safetensors']);
  const header = Number(weights.readBigUInt64LE(0));
  const at = 8 + header + 64; // inside the first tensor's data
  weights[at] ^= 0x40;
  return { ...files, 'model.safetensors': weights };
}

describe('a run on a model from the Hugging Face cache', () => {
  it('names the repo id as its adapters\' base, records the revision, and refuses to resume on other weights', async () => {
    const v1 = commitOf('v1');
    const first = writeCachedRevision(cache, REPO, v1, filesOf(demoModelDir()));
    const dir = tempDir('cache-run');
    const out = join(dir, 'run');
    process.env.PEFT_STUDIO_CRASH_AT = 'step-start@3';
    try {
      const r = await cli(['train', '--model', REPO, '--data', DATA, '--out', out, '--steps', '4', '--batch-size', '4', '--save-every', '2', ...THREADS]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`note: using ${REPO} at revision ${v1.slice(0, 12)} (refs/main): ${first.snapshot}`);
    } finally {
      delete process.env.PEFT_STUDIO_CRASH_AT;
    }
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.model).toBe(first.snapshot);
    expect(record.config.modelSnapshot).toEqual({ repoId: REPO, revision: v1, weights: { 'model.safetensors': first.blobs['model.safetensors'].split('/').pop() } });
    const checkpoint = JSON.parse(readFileSync(join(out, 'checkpoints', 'step-2', 'adapter_config.json'), 'utf8'));
    expect(checkpoint.base_model_name_or_path).toBe(REPO);
    expect(checkpoint.revision).toBe(v1);

    // a new revision with other weights becomes refs/main, and the old snapshot is gone
    const v2 = commitOf('v2');
    const second = writeCachedRevision(cache, REPO, v2, otherWeights());
    const parked = join(dir, 'parked-v1');
    renameSync(first.snapshot, parked);
    const refused = await cli(['train', '--resume', out, '--model', REPO, ...THREADS]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${second.snapshot}: holds other weights than the model this run started with (${REPO} at revision ${v1.slice(0, 12)}; this is revision ${v2.slice(0, 12)}, whose weight files differ). ` +
      `Resume with --model set to that revision's snapshot (${first.snapshot}), or start a new run`);

    // the old snapshot back: the run resumes and finishes on it
    renameSync(parked, first.snapshot);
    const resumed = await cli(['train', '--resume', out, ...THREADS]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe(REPO);

    // the adapter alone, elsewhere: export finds its base in the cache by the repo id, at the revision it was
    // trained on (v1), not at refs/main (v2, other weights of the same shapes)
    const adapterOnly = join(dir, 'adapter-only');
    mkdirSync(adapterOnly);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) cpSync(join(out, f), join(adapterOnly, f));
    const exported = await cli(['export', adapterOnly, '--format', 'merged', '--out', join(dir, 'exported')]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout).base_model).toBe(first.snapshot);
    // that revision gone from the cache: refused, not merged onto refs/main's weights
    renameSync(first.snapshot, parked);
    const refusedExport = await cli(['export', adapterOnly, '--format', 'merged', '--out', join(dir, 'exported-2')]);
    expect(refusedExport.code).not.toBe(0);
    expect(refusedExport.stderr).toContain(`${adapterOnly}: was trained on revision ${v1} of ${REPO}, which is not in the Hugging Face cache (refs/main is ${v2.slice(0, 12)})`);
    renameSync(parked, first.snapshot);
    writeFileSync(join(dir, 'done'), '');
  });
});
