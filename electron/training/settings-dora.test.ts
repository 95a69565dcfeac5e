// The DoRA setting (train --dora, the app's dora): LoRA and QLoRA only, taken
// from an --init-adapter rather than given beside it, recorded as
// config.lora.dora and kept by a resumed run.
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../cli/args.js';
import { resumeConfig, trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { cli, tempDir } from '../testing/e2e-fixtures.js';
import { resumedConfig, SettingsError, trainConfigFromSettings, type TrainSettings } from './settings.js';

const base: TrainSettings = { model: 'm', data: 'd.jsonl', out: 'o' };
const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', ...argv]);

describe('the dora setting', () => {
  it('is recorded in the LoRA settings: false by default, true when given, for lora and qlora', () => {
    expect(trainConfigFromSettings(base).lora!.dora).toBe(false);
    expect(trainConfigFromSettings({ ...base, dora: true }).lora!.dora).toBe(true);
    expect(trainConfigFromSettings({ ...base, method: 'qlora', dora: true }).lora).toMatchObject({ dora: true, rank: 8 });
    expect(trainConfigFromArgs(args('--dora')).lora!.dora).toBe(true);
    expect(trainConfigFromArgs(args('--method', 'qlora', '--dora')).lora!.dora).toBe(true);
    expect(trainConfigFromArgs(args()).lora!.dora).toBe(false);
  });

  it('is refused with the methods that train no LoRA, naming the field (the CLI: the flag)', () => {
    for (const method of ['prompt', 'prefix', 'full'] as const) {
      const refused = (() => {
        try {
          trainConfigFromSettings({ ...base, method, dora: true });
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(refused, method).toBeInstanceOf(SettingsError);
      expect(refused).toMatchObject({ field: 'dora', message: 'dora applies to method lora and qlora only' });
      expect(() => trainConfigFromArgs(args('--method', method, '--dora'))).toThrow(new UsageError('--dora applies to --method lora and qlora only', 'train'));
    }
    // false is "not given": the app's form may send it with any method
    expect(trainConfigFromSettings({ ...base, method: 'prompt', dora: false }).lora).toBeNull();
  });

  it('comes from an --init-adapter, which decides it', () => {
    expect(() => trainConfigFromArgs(args('--init-adapter', 'a', '--dora')))
      .toThrow(new UsageError("--dora cannot be combined with --init-adapter: the adapter's adapter_config.json decides it", 'train'));
  });

  it('is kept by a resumed run and cannot be changed by one', () => {
    const stored = trainConfigFromSettings({ ...base, dora: true });
    expect(resumedConfig(stored, '/r').lora!.dora).toBe(true);
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--threads', '1'])).lora!.dora).toBe(true);
    expect(() => resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--dora']))).toThrow(/^--dora cannot be given with --resume/);
  });

  it('peft-studio train --dora --method prompt exits with the usage error naming the flag', async () => {
    const dir = tempDir('dora-cli');
    const r = await cli(['train', '--model', dir, '--data', `${dir}/d.jsonl`, '--out', `${dir}/run`, '--method', 'prompt', '--dora']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--dora applies to --method lora and qlora only');
    expect(r.stdout).toBe('');
  });

  it('train --help describes --dora', async () => {
    const r = await cli(['train', '--help']);
    expect(r.stdout + r.stderr).toMatch(/--dora\s+DoRA \(weight-decomposed LoRA, PEFT use_dora\): a trained magnitude per output row; slower per step than LoRA/);
  });
});
