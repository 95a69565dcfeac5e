// One hyperparameter field of the form: what its input shows, how the
// user's text becomes a value (with the message shown under the field when
// it cannot), and how a value lands in the run settings (only values that
// differ from the method's default are kept, so the Node side's defaults
// stay the single source of truth for everything the user did not touch).
import type { HyperparameterSpec, RunCheck, RunSettings } from '../../../electron/api/contract.js';
import { percentWords, warmupRatioWords } from '../../../electron/training/warmup.js';
import { countOf } from '../format.js';

export type Hyper = RunSettings['hyper'];
export type HyperKey = keyof Hyper;
export type HyperValue = HyperparameterSpec['default'];
/** What an input holds: text for numbers, lists and free text; a boolean for a checkbox. */
export type FieldInput = string | boolean;

export type ParsedField = { ok: true; value: HyperValue } | { ok: false; error: string };

/** Free text (e.g. the prompt-tuning init text): kind 'text', or a choice without choices. */
export function isFreeText(spec: HyperparameterSpec): boolean {
  if (spec.kind === 'text') return true;
  return spec.kind === 'choice' && (spec.choices === undefined || spec.choices.length === 0);
}

/** The input's content for a value. */
export function inputFor(spec: HyperparameterSpec, value: HyperValue): FieldInput {
  if (spec.kind === 'boolean') return value === true;
  if (value === null) return '';
  if (Array.isArray(value)) return value.join(', ');
  return String(value);
}

/** The default, in words, for "default: …" beside the field. */
export function describeDefault(spec: HyperparameterSpec): string {
  const d = spec.default;
  if (d === null) return 'none';
  if (typeof d === 'boolean') return d ? 'on' : 'off';
  if (Array.isArray(d)) return d.length === 0 ? 'none' : d.join(', ');
  if (d === '') return 'none';
  return String(d);
}

/**
 * The limits in words, exactly what the run accepts: "1 to 256", "at least 0",
 * "at most 1", "more than 0", "0 up to but not including 1" (empty when none).
 * An exclusive bound (above / below) is never said as an inclusive one: 0 is
 * not a LoRA alpha the run takes.
 */
export function describeRange(spec: HyperparameterSpec): string {
  const { min, max, above, below } = spec;
  const low = min !== undefined ? { at: min, included: true } : above !== undefined ? { at: above, included: false } : null;
  const high = max !== undefined ? { at: max, included: true } : below !== undefined ? { at: below, included: false } : null;
  const lowWords = low && `${low.included ? 'at least' : 'more than'} ${low.at}`;
  const highWords = high && `${high.included ? 'at most' : 'less than'} ${high.at}`;
  if (low && high && low.included) return `${low.at} ${high.included ? 'to' : 'up to but not including'} ${high.at}`;
  return [lowWords, highWords].filter(Boolean).join(' and ');
}

// A plain decimal or scientific number; Number() alone would also accept
// "0x10", "Infinity" and whitespace, which are not settings anyone means.
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** What to type instead of a text that is no number, in the field's own terms. */
function notANumberHint(spec: HyperparameterSpec): string {
  if (spec.kind === 'int') return 'Enter a whole number.';
  // recipes say a warmup fraction as a percentage ("3%"), and some keyboards write 0,03: either way, the number meant
  if (isWarmupRatio(spec)) return 'Enter the fraction as a number: type 0.03 for 3%.';
  return 'Enter a number, e.g. 0.0002 or 2e-4.';
}

function parseNumber(spec: HyperparameterSpec, text: string): ParsedField {
  const t = text.trim();
  if (t === '') {
    // an empty box means "none" only where none is the default (steps: none = run the epochs)
    if (spec.default === null) return { ok: true, value: null };
    return { ok: false, error: `Enter a value (default ${describeDefault(spec)}).` };
  }
  const whole = spec.kind === 'int';
  if (!NUMBER_TEXT.test(t)) return { ok: false, error: notANumberHint(spec) };
  const value = Number(t);
  if (!Number.isFinite(value)) return { ok: false, error: 'Enter a finite number.' };
  if (whole && !Number.isInteger(value)) return { ok: false, error: 'Enter a whole number.' };
  if (spec.min !== undefined && value < spec.min) return { ok: false, error: `Must be at least ${spec.min}.` };
  if (spec.max !== undefined && value > spec.max) return { ok: false, error: `Must be at most ${spec.max}.` };
  if (spec.above !== undefined && value <= spec.above) return { ok: false, error: `Must be more than ${spec.above}.` };
  if (spec.below !== undefined && value >= spec.below) return { ok: false, error: `Must be less than ${spec.below}.` };
  return { ok: true, value };
}

function parseList(spec: HyperparameterSpec, text: string): ParsedField {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length > 0) {
    const allowed = spec.choices;
    const unknown = allowed && allowed.length > 0 ? items.filter((i) => !allowed.includes(i)) : [];
    if (unknown.length > 0) return { ok: false, error: `Unknown: ${unknown.join(', ')}. Use any of ${allowed!.join(', ')}.` };
    return { ok: true, value: items };
  }
  if (spec.default === null) return { ok: true, value: null };
  if (Array.isArray(spec.default) && spec.default.length === 0) return { ok: true, value: [] };
  return { ok: false, error: 'Enter at least one name, separated by commas.' };
}

/** The value the user's input stands for, or why it stands for none. */
export function parseField(spec: HyperparameterSpec, input: FieldInput): ParsedField {
  switch (spec.kind) {
    case 'boolean':
      return { ok: true, value: input === true };
    case 'int':
    case 'number':
      return parseNumber(spec, String(input));
    case 'list':
      return parseList(spec, String(input));
    default: {
      // 'choice' and 'text'
      const text = String(input);
      if (isFreeText(spec)) return { ok: true, value: text === '' && spec.default === null ? null : text };
      if (!spec.choices!.includes(text)) return { ok: false, error: `Choose one of ${spec.choices!.join(', ')}.` };
      return { ok: true, value: text };
    }
  }
}

export function sameValue(a: HyperValue | undefined, b: HyperValue | undefined): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

/** The settings with `key` set to `value`, or without it when `value` is the default. A new object. */
export function withValue(hyper: Hyper, spec: HyperparameterSpec, value: HyperValue): Hyper {
  const next: Record<string, unknown> = { ...hyper };
  if (sameValue(value, spec.default)) delete next[spec.key];
  else next[spec.key] = Array.isArray(value) ? [...value] : value;
  return next as Hyper;
}

/** Only the settings these specs know (a method switch leaves the old method's settings behind). */
export function keepKnown(hyper: Hyper, specs: readonly HyperparameterSpec[]): Hyper {
  const known = new Set<string>(specs.map((s) => s.key));
  const next: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hyper)) if (known.has(k) && v !== undefined) next[k] = v;
  return next as Hyper;
}

/** The server's messages about one field ('hyper.lr' belongs to the lr field). */
export function serverErrorsFor(errors: readonly { field: string; message: string }[] | undefined, key: HyperKey): string[] {
  return (errors ?? []).filter((e) => e.field === `hyper.${key}` || e.field === key).map((e) => e.message);
}

/**
 * Whether the precision choice matters: the device field offers an NVIDIA GPU
 * and the device chosen (`deviceInput`, else the default) is not the CPU.
 * Elsewhere the engine computes in fp32 whatever is asked, and the form says
 * so instead of offering a choice.
 */
export function precisionMatters(specs: readonly HyperparameterSpec[], deviceInput: FieldInput | undefined): boolean {
  const device = specs.find((s) => s.key === 'device');
  if (!device || !(device.choices ?? []).some((c) => c.startsWith('cuda'))) return false;
  const chosen = typeof deviceInput === 'string' ? deviceInput : device.default;
  return chosen !== 'cpu';
}

/** The settings that judge the evaluations during the run (train --keep-best, --early-stop, --early-stop-delta). */
export const EVAL_JUDGED: readonly HyperKey[] = ['keepBest', 'earlyStop', 'earlyStopDelta'];

/**
 * Why a setting of EVAL_JUDGED does not apply to the run the form describes
 * (null: it does): the run must evaluate during training, on an evaluation
 * file (`evalData`) or a split above 0, every evalEvery > 0 steps; the
 * threshold needs a patience. An absent evalSplit / evalEvery is its default, 0.
 * The form shows the field off with this reason, and the settings sent leave
 * it out (the run would refuse it), as the eval split with an evaluation file.
 */
export function evalJudgedOff(key: HyperKey, hyper: Hyper, evalData: string | null): string | null {
  if (!EVAL_JUDGED.includes(key)) return null;
  if (evalData === null && !((hyper.evalSplit ?? 0) > 0)) return 'needs evaluation: choose an evaluation file on the Data page, or set Eval split above 0';
  if (!((hyper.evalEvery ?? 0) > 0)) return 'needs Evaluate every above 0 (evaluating at the end only gives a single eval loss)';
  if (key === 'earlyStopDelta' && (hyper.earlyStop ?? null) === null) return 'applies with an Early stopping patience';
  return null;
}

/**
 * The form's warmup is one field, Warmup steps, given either in steps or as
 * a fraction of the run (the spec of this key: `train --warmup-ratio`,
 * Hugging Face's warmup_ratio). The run refuses both, so choosing one way
 * sets the other back to its default.
 */
export const WARMUP_RATIO_KEY: string = 'warmupRatio';

export function isWarmupRatio(spec: HyperparameterSpec): boolean {
  return spec.key === WARMUP_RATIO_KEY;
}

export type WarmupMode = 'steps' | 'fraction';

/** How the settings give the warmup: as a fraction when they hold one. */
export function warmupModeOf(hyper: Hyper): WarmupMode {
  const ratio = (hyper as Record<string, unknown>)[WARMUP_RATIO_KEY];
  return typeof ratio === 'number' ? 'fraction' : 'steps';
}

/**
 * What a fraction comes to over the run the check counted: "3% of 400 steps
 * = 12 steps" (ceil, as the run computes it: electron/training/warmup.ts).
 * A check without a time estimate (it could not be made) still counted the
 * run: the steps its configuration resolved for this fraction, "3% of the
 * run = 12 steps". Null when there is no fraction, or no check of it yet.
 */
export function warmupFractionLine(ratio: number | null, check: Pick<RunCheck, 'time' | 'config'> | null): string | null {
  if (ratio === null || check === null) return null;
  if (check.time) return warmupRatioWords(ratio, check.time.steps, countOf);
  // the check of another fraction (one being typed) says nothing of this one's steps
  if (check.config?.warmupRatio === ratio) return `${percentWords(ratio)} of the run = ${countOf(check.config.warmupSteps, 'step')}`;
  return null;
}
