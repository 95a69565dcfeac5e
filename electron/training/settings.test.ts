// The settings resolver shared by `train` and the app: defaults, the field
// an error names, the naming of fields in messages (plain for the app, flags
// for the CLI), limits, and the resumed configuration.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../cli/args.js';
import { resumeConfig, settingsFromArgs, trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { TINY_FLOP_SPEC } from '../testing/flop-fixtures.js';
import { cgroupLimits } from '../system/cgroup-limits.js';
import { cpuBudget, defaultThreads } from '../system/machine.js';
import { TRAIN_DEFAULTS } from './config.js';
import { defaultSeqLenFor, resumedConfig, SETTING_LIMITS, SettingsError, trainConfigFromSettings, type TrainSettings } from './settings.js';

const base: TrainSettings = { model: 'm', data: 'd.jsonl', out: 'o' };
function refusal(settings: TrainSettings): SettingsError {
  try {
    trainConfigFromSettings({ ...base, ...settings });
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return e as SettingsError;
  }
  throw new Error(`${JSON.stringify(settings)} should be refused`);
}

describe('trainConfigFromSettings', () => {
  it('fills every default as train does', () => {
    const c = trainConfigFromSettings(base);
    expect(c).toMatchObject({
      model: resolve('m'), data: resolve('d.jsonl'), out: resolve('o'), method: 'lora', lr: TRAIN_DEFAULTS.loraLr, steps: null, epochs: 1,
      seqLen: 512, threads: defaultThreads(), completionOnly: true, pack: false, quantization: null, prompt: null, prefix: null,
      lora: { rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false, init: 'default', layers: null },
    });
    expect(trainConfigFromSettings({ ...base, method: 'qlora' }).quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    expect(trainConfigFromSettings({ ...base, method: 'qlora', doubleQuant: false, quantBlocksize: 128 }).quantization).toEqual({ type: 'nf4', blocksize: 128, doubleQuant: false });
  });

  it('defaults the threads to the machine\'s within a container\'s CPU quota; given threads stand', () => {
    // a cgroup v2 container with half a CPU's quota, on a 32-thread machine: 1 thread (not os.availableParallelism())
    const root = mkdtempSync(join(tmpdir(), 'ps-settings-cgroup-'));
    mkdirSync(join(root, 'proc/self'), { recursive: true });
    mkdirSync(join(root, 'sys/fs/cgroup'), { recursive: true });
    writeFileSync(join(root, 'proc/self/cgroup'), '0::/\n');
    writeFileSync(join(root, 'sys/fs/cgroup/cpu.max'), '50000 100000\n');
    const inContainer = () => cpuBudget(cgroupLimits(root), 32).threads;
    expect(trainConfigFromSettings(base, undefined, inContainer).threads).toBe(1);
    expect(trainConfigFromSettings({ ...base, threads: 6 }, undefined, inContainer).threads).toBe(6);
    // the default reads this machine's own cgroup
    expect(trainConfigFromSettings(base).threads).toBe(cpuBudget(cgroupLimits('/')).threads);
  });

  it('errors name their field, in plain words', () => {
    expect(refusal({ method: 'prompt', rank: 4 })).toMatchObject({ field: 'rank', message: 'rank applies to method lora and qlora only' });
    expect(refusal({ steps: 3, epochs: 2 })).toMatchObject({ field: 'steps', message: 'give either steps or epochs, not both' });
    expect(refusal({ lr: -1 })).toMatchObject({ field: 'lr', message: 'lr expects a number >= 0 and <= 3.4028234663852886e+38, got -1' });
    // past fp32, which the optimizer takes: refused here, naming the setting, not in the optimizer
    expect(refusal({ lr: 1e39 })).toMatchObject({ field: 'lr', message: 'lr expects a number >= 0 and <= 3.4028234663852886e+38, got 1e+39' });
    // far past any fine-tuning rate but representable: a warning (warnings.test.ts), not a refusal
    expect(() => trainConfigFromSettings({ ...base, lr: 1e30 })).not.toThrow();
    expect(refusal({ dropout: 1 })).toMatchObject({ field: 'dropout', message: 'dropout expects a number >= 0 and < 1, got 1' });
    expect(refusal({ rank: 2.5 })).toMatchObject({ field: 'rank' });
    expect(refusal({ targets: ['q_proj', 'all-linear'] })).toMatchObject({ field: 'targets', message: 'targets all-linear cannot be combined with other module names' });
    expect(refusal({ method: 'qlora', quantBlocksize: 96 })).toMatchObject({ field: 'quantBlocksize' });
    expect(refusal({ method: 'prompt', pack: true }).field).toBe('pack');
    expect(refusal({ model: undefined })).toMatchObject({ field: 'model', missing: true });
  });

  it('switches set to their default count as not given', () => {
    const c = trainConfigFromSettings({ ...base, method: 'prompt', rslora: false, prefixProjection: false, doubleQuant: true, completionOnly: true });
    expect(c.lora).toBeNull();
  });

  it('the CLI keeps its flag-named messages and maps flags to the same settings', () => {
    const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', ...argv]);
    expect(settingsFromArgs(args('--all-tokens', '--no-double-quant', '--method', 'qlora', '--batch-size', '4', '--targets', 'q_proj,k_proj')))
      .toEqual({ ...base, completionOnly: false, doubleQuant: false, method: 'qlora', batchSize: 4, targets: ['q_proj', 'k_proj'] });
    expect(() => trainConfigFromArgs(args('--method', 'prompt', '--rank', '4'))).toThrow(new UsageError('--rank applies to --method lora and qlora only', 'train'));
    expect(() => trainConfigFromArgs(parseArgs(trainSpec, ['--data', 'd'])) ).toThrow('train needs --model');
    // the flags' bounds are the settings' limits
    let compared = 0;
    for (const flag of trainSpec.flags) {
      const field = Object.entries(SETTING_LIMITS).find(([f]) => f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) === flag.name);
      if (field) compared++;
      if (field) expect({ min: flag.min, max: flag.max, above: flag.above, below: flag.below }).toEqual({ min: undefined, max: undefined, above: undefined, below: undefined, ...field[1], kind: undefined });
    }
    expect(compared).toBe(Object.keys(SETTING_LIMITS).length);
  });

  it('resumedConfig keeps the stored settings but the few overrides; the CLI resume goes through it', () => {
    const stored = trainConfigFromSettings({ ...base, lr: 0.1, threads: 3 });
    expect(resumedConfig(stored, '/moved/run')).toEqual({ ...stored, out: '/moved/run' });
    expect(resumedConfig(stored, '/r', { lr: 0.5, gradientCheckpointing: true })).toEqual({ ...stored, out: '/r', lr: 0.5, gradientCheckpointing: true });
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--threads', '1']))).toEqual({ ...stored, out: '/r', threads: 1 });
  });

  it('device: auto by default, checked by name, and a resumed run keeps the recorded one unless --device is given', () => {
    expect(trainConfigFromSettings(base).device).toBe('auto');
    expect(trainConfigFromSettings({ ...base, device: 'cuda:1' }).device).toBe('cuda:1');
    expect(refusal({ device: 'gpu' })).toMatchObject({ field: 'device', message: expect.stringMatching(/^device: unknown device 'gpu'; use auto \(the first NVIDIA GPU/) });
    const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', ...argv]);
    expect(trainConfigFromArgs(args('--device', 'cpu')).device).toBe('cpu');
    expect(() => trainConfigFromArgs(args('--device', 'cuda:x'))).toThrow(/^--device: unknown device 'cuda:x'/);
    // run.json holds the device the run used
    const stored = { ...trainConfigFromSettings(base), device: 'cuda:0' as const };
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r'])).device).toBe('cuda:0');
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--device', 'cpu'])).device).toBe('cpu');
    expect(() => resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--device', 'tpu']))).toThrow(new UsageError(
      "--device: unknown device 'tpu'; use auto (the first NVIDIA GPU when there is one, else the CPU), cpu, cuda (the first GPU) or cuda:N (the N-th, from 0)", 'train'));
  });

  it('precision: auto by default, checked by name, and a resumed run keeps the recorded one unless --precision is given', () => {
    expect(trainConfigFromSettings(base).precision).toBe('auto');
    expect(trainConfigFromSettings({ ...base, precision: 'bf16' }).precision).toBe('bf16');
    expect(refusal({ precision: 'fp16' })).toMatchObject({ field: 'precision', message: expect.stringMatching(/^precision: unknown precision 'fp16'; use auto \(bf16 on an NVIDIA GPU/) });
    const args = (...argv: string[]) => parseArgs(trainSpec, ['--model', 'm', '--data', 'd.jsonl', '--out', 'o', ...argv]);
    expect(trainConfigFromArgs(args('--precision', 'fp32')).precision).toBe('fp32');
    expect(settingsFromArgs(args('--precision', 'bf16')).precision).toBe('bf16');
    expect(settingsFromArgs(args()).precision).toBeUndefined();
    expect(() => trainConfigFromArgs(args('--precision', 'half'))).toThrow(new UsageError(
      "--precision: unknown precision 'half'; use auto (bf16 on an NVIDIA GPU with bf16 tensor cores, compute capability 8.0 or later; else fp32), fp32 or bf16", 'train'));
    // run.json holds the precision the run used: a resumed run computes the same unless told otherwise
    const stored = { ...trainConfigFromSettings(base), device: 'cuda:0' as const, precision: 'bf16' as const };
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r'])).precision).toBe('bf16');
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--device', 'cpu'])).precision).toBe('bf16');
    expect(resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--device', 'cpu', '--precision', 'fp32']))).toEqual({ ...stored, out: '/r', device: 'cpu', precision: 'fp32' });
    expect(() => resumeConfig(stored, '/r', parseArgs(trainSpec, ['--resume', '/r', '--precision', 'fp8']))).toThrow(/^--precision: unknown precision 'fp8'/);
    expect(trainSpec.notes!.join(' ')).toContain('--device cpu --precision fp32');
  });

  it('defaultSeqLenFor: the default, shrunk to the positions left after the virtual tokens', () => {
    expect(defaultSeqLenFor({ ...TINY_FLOP_SPEC, maxPositionEmbeddings: 4096 })).toBe(512);
    expect(defaultSeqLenFor({ ...TINY_FLOP_SPEC, maxPositionEmbeddings: 256 }, 20)).toBe(236);
    expect(defaultSeqLenFor({ ...TINY_FLOP_SPEC, maxPositionEmbeddings: 8 }, 20)).toBe(2);
  });
});
