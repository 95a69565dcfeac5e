// checkRun's refusals in the form's words, through the real service on the
// bundled demo: each setting named by its label on the page (the labels the
// `hyperparameters` call gives the form, asked here), a limit said as the
// form's help says it, a setting of another page named with its page, and
// never a key ("hyper.alpha", "batchSize") or a flag ("--seq-len").
import { describe, expect, it } from 'vitest';
import type { HyperparameterSpec, RunCheck } from '../api/contract.js';
import { MAX_TOKENS_PER_STEP } from '../training/config.js';
import { serviceForTests } from '../testing/service-fixture.js';
import { openModelFolder } from '../models/folder.js';

const studio = serviceForTests('service-form-words-home');
const { ok, taskTrain } = studio;

/** An internal name of a setting: the request's key, a camelCase key, or a CLI flag. */
const INTERNAL = /hyper\.|--[a-z]|\b(batchSize|gradAccum|seqLen|evalSplit|virtualTokens|neftuneAlpha)\b/;

async function check(method: string, hyper: Record<string, unknown>, top: Record<string, unknown> = {}): Promise<RunCheck> {
  return ok<RunCheck>('checkRun', { model: studio.demo.model, data: taskTrain(), method, hyper: { threads: 1, ...hyper }, ...top });
}

/** The form's label of a field, as the Hyperparameters page shows it. */
async function label(method: string, key: string): Promise<string> {
  const specs = await ok<HyperparameterSpec[]>('hyperparameters', { model: studio.demo.model, method });
  return specs.find((s) => s.key === key)!.label;
}

describe('checkRun: a refused setting named by its label', () => {
  it('a limit: exclusive bounds as exclusive, whole numbers as such', async () => {
    const cases: [string, Record<string, unknown>, string, string][] = [
      ['lora', { alpha: 0 }, 'alpha', 'must be more than 0, got 0'],
      ['lora', { dropout: 1 }, 'dropout', 'must be from 0 up to but not including 1, got 1'],
      ['lora', { evalSplit: 1 }, 'evalSplit', 'must be from 0 up to but not including 1, got 1'],
      ['lora', { batchSize: 0 }, 'batchSize', 'must be a whole number of at least 1, got 0'],
      ['lora', { batchSize: 2.5 }, 'batchSize', 'must be a whole number of at least 1, got 2.5'],
      ['lora', { neftuneAlpha: -1 }, 'neftuneAlpha', 'must be from 0 to 10000, got -1'],
      ['lora', { steps: 0 }, 'steps', 'must be a whole number of at least 1, got 0'],
    ];
    for (const [method, hyper, key, rest] of cases) {
      const c = await check(method, hyper);
      expect(c.errors, key).toEqual([{ field: `hyper.${key}`, message: `${await label(method, key)} ${rest}` }]);
      expect(c.verdict).toBe(`Cannot start: ${c.errors[0].message}`);
    }
    // the label is the form's own, not a copy of it: LoRA alpha, as the page shows it
    expect((await check('lora', { alpha: 0 })).errors[0].message).toBe('LoRA alpha must be more than 0, got 0');
  });

  it('a setting of another method: the field by its label, the method as the method', async () => {
    const c = await check('prompt', { rank: 4 });
    expect(c.errors).toEqual([{ field: 'hyper.rank', message: 'LoRA rank applies to the method lora and qlora only' }]);
  });

  it('an eval split beside an evaluation file: both by their names on the pages', async () => {
    const evalFile = studio.demo.datasets.find((d) => d.name === 'task-eval')!.path;
    const c = await check('lora', { evalSplit: 0.1 }, { evalData: evalFile });
    expect(c.errors[0].field).toBe('hyper.evalSplit');
    expect(c.errors[0].message).toMatch(/^Eval split cannot be combined with the evaluation file \(Data page\): /);
    expect(c.errors[0].message).not.toMatch(INTERNAL);
  });
});

describe('checkRun: settings that judge evaluations name the settings they need, without the CLI\'s placeholders', () => {
  it('early stopping without an eval set, keep-best evaluating at the end only, a threshold without a patience', async () => {
    const evalFile = studio.demo.datasets.find((d) => d.name === 'task-eval')!.path;
    expect((await check('lora', { steps: 4, earlyStop: 2, evalEvery: 2 })).errors).toEqual([{
      field: 'hyper.earlyStop',
      message: 'Early stopping patience stops when the eval loss stops improving, so it needs an eval set: give the evaluation file (Data page), or Eval split above 0',
    }]);
    expect((await check('lora', { steps: 4, keepBest: true }, { evalData: evalFile })).errors).toEqual([{
      field: 'hyper.keepBest',
      message: 'Keep the best adapter keeps the adapter of the lowest eval loss during the run, so it needs Evaluate every above 0 (with evaluation at the end only there is one eval loss)',
    }]);
    expect((await check('lora', { steps: 4, earlyStopDelta: 0.1 })).errors).toEqual([{
      field: 'hyper.earlyStopDelta',
      message: 'Early stopping threshold needs Early stopping patience (the evaluations without improvement that stop the run)',
    }]);
  });
});

describe('checkRun: packing under prompt tuning says where packing is switched off', () => {
  it('names "Pack short rows" on the Data page, and the methods that can pack', async () => {
    const c = await check('prompt', {}, { pack: true });
    expect(c.errors).toEqual([{
      field: 'pack',
      message: '"Pack short rows" (Data page) cannot be used with the method prompt: prompt tuning prepends the virtual tokens to each sequence, so every document needs its own row. ' +
        'Untick "Pack short rows" on the Data page, or choose prefix tuning or LoRA on the Method page (they can pack)',
    }]);
    // the methods it names can pack: the same settings check without that refusal
    for (const method of ['prefix', 'lora']) expect((await check(method, { steps: 1 }, { pack: true })).errors.filter((e) => e.field === 'pack'), method).toEqual([]);
  });
});

describe('checkRun: the model checks name the form\'s fields', () => {
  it('a step too large: Batch size, Gradient accumulation, Sequence length', async () => {
    const batch = 100000;
    const seqLen = 256;
    const c = await check('lora', { batchSize: batch, seqLen });
    const [b, g, s] = await Promise.all(['batchSize', 'gradAccum', 'seqLen'].map((k) => label('lora', k)));
    expect(c.errors).toEqual([{
      field: 'hyper.batchSize',
      message: `${b} ${batch} x ${s} ${seqLen} = ${batch * seqLen} tokens per step, more than one step can hold (${MAX_TOKENS_PER_STEP}): ` +
        `lower ${b} (raise ${g} to keep the effective batch) or ${s}`,
    }]);
    expect(c.errors[0].message).toContain('lower Batch size (raise Gradient accumulation to keep the effective batch) or Sequence length');
  });

  it('a sequence longer than the model holds: Sequence length, and the longest it takes', async () => {
    const positions = (await openModelFolder(studio.demo.model)).spec.maxPositionEmbeddings;
    const c = await check('lora', { seqLen: positions + 1 });
    expect(c.errors).toEqual([{ field: 'hyper.seqLen', message: `Sequence length ${positions + 1} exceeds the model's max_position_embeddings (${positions}); use Sequence length ${positions} or less` }]);
  });
});
