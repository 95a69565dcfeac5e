// generationDefaults: what the Try page's sampling fields start from. It is
// what `peft-studio generate` uses without flags (the CLI's own note, run
// here, says the same settings), which of them the model's
// generation_config.json gives, and what in the file cannot be used. For a
// value that cannot be used the two differ, as the page says: transformers'
// default is filled in here, where the CLI refuses the file until the setting
// is given as a flag (both run here). A file that is there but broken is
// named, not taken for none. Through the service, the model path obeys the
// same policy as generate's.
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiMethod, GenerationDefaults } from '../api/contract.js';
import { bundledDemoFiles } from '../demo/paths.js';
import { createStudioService } from '../service/service.js';
import { cli, tempDir } from '../testing/e2e-fixtures.js';
import { generationDefaults } from './generation-defaults.js';
import { samplingWords } from './sampling-settings.js';

process.env.PEFT_STUDIO_HOME ??= tempDir('gen-defaults-home');
const demo = bundledDemoFiles().model;

/** The demo model in a folder of its own, with this generation_config.json. */
function modelWith(config: string): string {
  const dir = join(tempDir('gen-defaults'), 'model');
  cpSync(demo, dir, { recursive: true });
  writeFileSync(join(dir, 'generation_config.json'), config);
  return dir;
}

describe('generationDefaults', () => {
  it("is the file's settings where it gives them, transformers' defaults elsewhere, as the CLI takes them without flags", async () => {
    const dir = modelWith(JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.95, min_p: 0.05, typical_p: 0.9, eta_cutoff: 0.002, no_repeat_ngram_size: 3 }));
    const d = await generationDefaults(dir);
    expect(d).toEqual({
      sampling: { temperature: 0.6, topK: 20, topP: 0.95, minP: 0.05, typicalP: 0.9, epsilonCutoff: 0, etaCutoff: 0.002, repetitionPenalty: 1, noRepeatNgramSize: 3, seed: 42 },
      file: join(dir, 'generation_config.json'),
      fromFile: ['temperature', 'topK', 'topP', 'minP', 'typicalP', 'etaCutoff', 'noRepeatNgramSize'],
      problems: [],
      unapplied: null,
    } satisfies GenerationDefaults);
    const printed = await cli(['generate', '--model', dir, '--prompt', 'The fox', '--max-new-tokens', '2', '--threads', '2']);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stderr).toContain(`note: ${samplingWords(d.sampling)}\n`);
  });

  it("names what cannot be used: a bad value (transformers' default filled in), a broken file, keys not applied", async () => {
    const dir = modelWith(JSON.stringify({ do_sample: true, top_p: 1.5, min_p: 0.1, typical_p: 0.9, min_new_tokens: 2 }));
    const file = join(dir, 'generation_config.json');
    const d = await generationDefaults(dir);
    expect(d.sampling).toMatchObject({ temperature: 1, topP: 1, minP: 0.1, typicalP: 0.9 });
    expect(d.fromFile).toEqual(['temperature', 'minP', 'typicalP']);
    expect(d.problems).toEqual([`${file}: top_p 1.5 must be a number >= 0 and <= 1, so transformers' default top_p 1 is filled in; fix the file (or remove top_p)`]);
    // typical_p is applied now: only min_new_tokens is named
    expect(d.unapplied).toBe(`${file}: sets min_new_tokens 2, which transformers' generate() applies and PEFT Studio does not, so its answers can differ from model.generate()'s`);
    // the CLI without flags does not fill the default in: it refuses the file, naming the flag that gives the setting instead
    const refused = await cli(['generate', '--model', dir, '--prompt', 'The fox', '--max-new-tokens', '2', '--threads', '2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file}: top_p 1.5 must be a number >= 0 and <= 1; fix the file (or remove top_p), or pass --top-p`);
    // given transformers' default as that flag, it generates with the settings the page filled in
    const given = await cli(['generate', '--model', dir, '--prompt', 'The fox', '--max-new-tokens', '2', '--threads', '2', '--top-p', String(d.sampling.topP)]);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stderr).toContain(`note: ${samplingWords(d.sampling)}\n`);
    // a file that is there but is no JSON (or no object) is named, with why it is not used: the model does have one
    const sameAsNone = { fromFile: [], sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 } };
    const escaped = file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    writeFileSync(file, '{broken');
    const broken = await generationDefaults(dir);
    expect(broken).toMatchObject({ file, ...sameAsNone });
    expect(broken.problems).toHaveLength(1);
    expect(broken.problems[0]).toMatch(new RegExp(`^${escaped}: not valid JSON`));
    writeFileSync(file, '[1, 2]');
    const notObject = await generationDefaults(dir);
    expect(notObject).toMatchObject({ file, ...sameAsNone });
    expect(notObject.problems).toEqual([expect.stringMatching(new RegExp(`^${escaped}: is not a JSON object \\(found an array\\)`))]);
  });

  it('has no file only when the model has none', async () => {
    const dir = join(tempDir('gen-defaults-none'), 'model');
    cpSync(demo, dir, { recursive: true });
    rmSync(join(dir, 'generation_config.json'), { force: true });
    const d = await generationDefaults(dir);
    expect([d.file, d.problems]).toEqual([null, []]);
  });

  it('refuses a path that is no folder, by the model field', async () => {
    const missing = join(tempDir('gen-defaults-missing'), 'nothing');
    await expect(generationDefaults(missing)).rejects.toMatchObject({ body: { code: 'invalid', field: 'model', message: `${missing}: is not a folder; choose the model's folder` } });
  });
});

describe('the generationDefaults call', () => {
  const roots = tempDir('gen-defaults-roots');
  const inside = join(roots, 'inside');
  mkdirSync(inside, { recursive: true });
  const service = createStudioService({ mode: 'browser', allowedRoots: [inside] });
  afterAll(() => service.close());
  const call = (method: ApiMethod, request: unknown) => service.call(method, request);

  it('answers for a model folder within the roots, and refuses one outside them or a request without a model', async () => {
    const model = join(inside, 'model');
    cpSync(demo, model, { recursive: true });
    const r = await call('generationDefaults', { model });
    expect(r).toEqual({ ok: true, value: await generationDefaults(model) });
    // (the bundled demo is always allowed: a copy elsewhere is outside)
    const elsewhere = join(tempDir('gen-defaults-outside'), 'model');
    cpSync(demo, elsewhere, { recursive: true });
    const outside = await call('generationDefaults', { model: elsewhere });
    expect(outside.ok).toBe(false);
    expect(!outside.ok && outside.error.code).toBe('forbidden');
    const none = await call('generationDefaults', {});
    expect(!none.ok && none.error).toMatchObject({ code: 'invalid', field: 'model' });
  });
});
