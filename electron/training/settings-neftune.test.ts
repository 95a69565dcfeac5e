// The NEFTune setting (train --neftune-alpha X, the app's neftuneAlpha):
// every method, 0 (off) by default, a finite number >= 0 or a message naming
// the field (the CLI: the flag); an older run.json without it reads as 0,
// and a resumed run keeps its own, never another.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../cli/args.js';
import { resumeConfig, trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { readRunRecord } from '../runs/run-record.js';
import { cli, tempDir } from '../testing/e2e-fixtures.js';
import { TRAIN_METHODS } from './config.js';
import { resumedConfig, SettingsError, trainConfigFromSettings, type TrainSettings } from './settings.js';

const base: TrainSettings = { model: 'm', data: 'd.jsonl', out: 'o' };
const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', ...argv]);

/** The error a call throws (null: none), to look at its field and message. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

describe('the neftuneAlpha setting', () => {
  it('is 0 (off) unless given, and is taken as given by every method', () => {
    expect(trainConfigFromSettings(base).neftuneAlpha).toBe(0);
    expect(trainConfigFromArgs(args()).neftuneAlpha).toBe(0);
    for (const method of TRAIN_METHODS) {
      expect(trainConfigFromSettings({ ...base, method, neftuneAlpha: 5 }).neftuneAlpha, method).toBe(5);
      expect(trainConfigFromArgs(args('--method', method, '--neftune-alpha', '15')).neftuneAlpha, method).toBe(15);
    }
    expect(trainConfigFromArgs(args('--neftune-alpha', '0')).neftuneAlpha).toBe(0);
    expect(trainConfigFromArgs(args('--neftune-alpha', '2.5e-1')).neftuneAlpha).toBe(0.25);
  });

  it('a negative or non-finite alpha is refused, naming the field (the CLI: the flag)', () => {
    for (const bad of [-1, -1e-9, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = thrown(() => trainConfigFromSettings({ ...base, neftuneAlpha: bad }));
      expect(e, String(bad)).toBeInstanceOf(SettingsError);
      expect(e).toMatchObject({ field: 'neftuneAlpha', message: `neftuneAlpha expects a number >= 0 and <= 10000, got ${bad}` });
      // the resolver's message names the flag when the CLI asks
      const named = thrown(() => trainConfigFromSettings({ ...base, neftuneAlpha: bad }, (f) => `--${f === 'neftuneAlpha' ? 'neftune-alpha' : f}`));
      expect((named as Error).message).toBe(`--neftune-alpha expects a number >= 0 and <= 10000, got ${bad}`);
    }
    // the flag's own parse refuses what the resolver would
    expect(() => args('--neftune-alpha', 'nan')).toThrow(new UsageError("--neftune-alpha expects a number >= 0 and <= 10000, got 'nan'", 'train'));
    expect(() => args('--neftune-alpha', '1e999')).toThrow(new UsageError("--neftune-alpha expects a number >= 0 and <= 10000, got '1e999'", 'train'));
    expect(() => args('--neftune-alpha=-5')).toThrow(new UsageError('--neftune-alpha expects a number >= 0 and <= 10000, got -5', 'train'));
    // finite as a double, past fp32 as the engine holds it
    expect(() => args('--neftune-alpha', '1e39')).toThrow(new UsageError('--neftune-alpha expects a number >= 0 and <= 10000, got 1e39', 'train'));
  });

  it('peft-studio train --neftune-alpha -5 exits with the usage error naming the flag, before anything runs', async () => {
    const dir = tempDir('neftune-cli');
    const r = await cli(['train', '--model', dir, '--data', `${dir}/d.jsonl`, '--out', `${dir}/run`, '--neftune-alpha=-5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--neftune-alpha expects a number >= 0 and <= 10000, got -5');
    expect(r.stdout).toBe('');
  });

  it('train --help says what it does and its default', async () => {
    const r = await cli(['train', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--neftune-alpha X');
    const text = r.stdout.slice(r.stdout.indexOf('--neftune-alpha')).replace(/\s+/g, ' ');
    expect(text).toContain("NEFTune: noise on the input embeddings while training, uniform within X / sqrt(sequence length x hidden size) (Hugging Face's neftune_noise_alpha; 5 is usual; 0: off; at most 10000)");
    expect(text).toContain("0: off; at most 10000) (default: 0)");
  });

  it('is kept by a resumed run and cannot be changed by one', () => {
    const stored = trainConfigFromSettings({ ...base, neftuneAlpha: 5 });
    expect(resumedConfig(stored, '/r').neftuneAlpha).toBe(5);
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--threads', '1'])).neftuneAlpha).toBe(5);
    expect(() => resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--neftune-alpha', '0'])))
      .toThrow(/^--neftune-alpha cannot be given with --resume: the run continues with the settings in its run.json/);
  });

  it('a run.json from before NEFTune (no neftuneAlpha) reads as 0: it trained without noise', async () => {
    const dir = tempDir('neftune-old-record');
    const { neftuneAlpha: _dropped, ...older } = trainConfigFromSettings({ ...base, out: dir });
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ status: 'stopped', steps_done: 2, config: older }));
    const record = await readRunRecord(dir);
    expect(record!.config.neftuneAlpha).toBe(0);
    expect(resumedConfig(record!.config, dir).neftuneAlpha).toBe(0);
  });
});
