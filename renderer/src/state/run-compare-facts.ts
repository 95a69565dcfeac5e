// What the Runs page's comparison says of several runs: the settings that
// differ between them (the rest is "same in all"), each run's results, the
// lowest best eval loss, and when eval losses do not compare because the
// runs were not evaluated on the same rows. Plain data in and out: no API,
// no Svelte, no Node, so it is tested on run.json configs alone.
import type { TrainConfig } from '../../../electron/api/contract.js';
import { METHOD_LABELS } from '../components/methods.js';
import { formatCount, formatDuration } from '../format.js';
import { batchWords, evaluationWords, isDora, lengthWords, neftuneWords, optimizerWords, schedulerWords } from './run-config-facts.js';

/** The name a run goes by on the page: its folder's last part ("20261129-165704-lora"). */
export function runName(dir: string): string {
  return dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
}

/** A setting in the comparison's words; value null: it does not apply to this run (a rank under prompt tuning). */
export interface CompareSetting {
  label: string;
  value: string | null;
}

/** What a cell says for a setting that does not apply to its run. */
export const NOT_APPLICABLE = '—';

/** "LoRA", "QLoRA with DoRA", "Prompt tuning, 4-bit base" (QLoRA's 4-bit base is in its name). */
export function methodWords(c: TrainConfig): string {
  const dora = isDora(c) ? ' with DoRA' : '';
  // an older run.json may lack quantization (LATER_DEFAULTS reads it as null)
  const base4 = c.quantization != null && c.method !== 'qlora' ? ', 4-bit base' : '';
  return `${METHOD_LABELS[c.method]}${dora}${base4}`;
}

/**
 * Every setting the comparison looks at, in the table's order, with the same
 * labels for every run: those the run's own facts show (run-config-facts.ts),
 * LoRA and virtual-token settings one per row (a rank that differs is a row
 * of its own, not a long LoRA line), and the few that move the loss or the
 * time without being a hyperparameter (tokens the loss counts, packing,
 * device and precision).
 */
export function compareSettings(c: TrainConfig): CompareSetting[] {
  const lora = c.lora;
  const virtualTokens = c.prompt?.numVirtualTokens ?? c.prefix?.numVirtualTokens ?? null;
  return [
    { label: 'Method', value: methodWords(c) },
    { label: 'Model', value: c.model },
    { label: 'Data', value: c.data },
    { label: 'Evaluation', value: evaluationWords(c) ?? 'none' },
    { label: 'Learning rate', value: String(c.lr) },
    { label: 'Scheduler', value: schedulerWords(c) },
    { label: 'Length', value: lengthWords(c) },
    { label: 'Batch', value: batchWords(c) },
    { label: 'Sequence length', value: String(c.seqLen) },
    { label: 'Rank', value: lora ? String(lora.rank) : null },
    { label: 'Alpha', value: lora ? `${lora.alpha}${lora.rslora ? ' (rsLoRA)' : ''}` : null },
    { label: 'LoRA dropout', value: lora ? String(lora.dropout) : null },
    { label: 'Target modules', value: lora ? lora.targets.join(', ') : null },
    // init is absent from an older run.json: PEFT's default
    { label: 'LoRA init', value: lora ? (lora.init ?? 'default') : null },
    // null (or absent in an older run.json): every layer, PEFT's default
    { label: 'Adapted layers', value: lora ? (lora.layers == null ? 'all' : lora.layers.join(', ')) : null },
    { label: 'Virtual tokens', value: virtualTokens === null ? null : String(virtualTokens) },
    { label: 'Prompt init', value: c.prompt ? c.prompt.init : null },
    // encoderHiddenSize null: PEFT's default, the model's hidden size
    { label: 'Prefix projection', value: c.prefix ? (c.prefix.projection ? (c.prefix.encoderHiddenSize === null ? 'on' : `on, hidden size ${c.prefix.encoderHiddenSize}`) : 'off') : null },
    { label: 'Starts from', value: c.initAdapter ?? 'a fresh adapter' },
    // an older run.json may lack quantization (read as null)
    { label: '4-bit base', value: c.quantization != null ? `NF4, blocks of ${c.quantization.blocksize}, double quantization ${c.quantization.doubleQuant ? 'on' : 'off'}` : null },
    { label: 'Optimizer', value: optimizerWords(c) },
    { label: 'NEFTune noise', value: neftuneWords(c) },
    { label: 'Loss on', value: c.completionOnly ? 'completion tokens only' : 'every token' },
    { label: 'Packing', value: c.pack ? 'rows packed into sequences' : 'one row per sequence' },
    { label: 'Data format', value: c.dataFormat },
    { label: 'Early stopping', value: c.earlyStop > 0 ? `after ${c.earlyStop} evaluations without improvement${c.earlyStopDelta > 0 ? ` (by more than ${c.earlyStopDelta})` : ''}` : 'off' },
    { label: 'Keep best', value: c.keepBest ? 'on' : 'off' },
    { label: 'Device', value: `${c.device}, ${c.precision}` },
    { label: 'Gradient checkpointing', value: c.gradientCheckpointing ? 'on' : 'off' },
    { label: 'Seed', value: String(c.seed) },
    { label: 'Threads', value: String(c.threads) },
  ];
}

export interface SettingsComparison {
  /** the settings whose value is not the same for every run: one value per run, NOT_APPLICABLE where it does not apply */
  differ: { label: string; values: string[] }[];
  /** the settings every run has, with the same value (those that apply to none are left out) */
  same: { label: string; value: string }[];
}

/** The settings of the runs (in the table's column order) split into those that differ and those that do not. */
export function compareRunSettings(configs: readonly TrainConfig[]): SettingsComparison {
  const perRun = configs.map(compareSettings);
  const result: SettingsComparison = { differ: [], same: [] };
  if (perRun.length === 0) return result;
  perRun[0].forEach(({ label }, row) => {
    const values = perRun.map((settings) => settings[row].value);
    if (values.every((v) => v === null)) return;
    if (values.every((v) => v === values[0])) result.same.push({ label, value: values[0]! });
    else result.differ.push({ label, values: values.map((v) => v ?? NOT_APPLICABLE) });
  });
  return result;
}

/**
 * Why the runs' eval losses do not measure the same thing, or null when they
 * do: another data or evaluation file, another share held out, another seed
 * choosing the held-out rows, another sequence length (truncation), or other
 * tokens counted by the loss.
 */
export function evalLossCaveat(configs: readonly TrainConfig[]): string | null {
  const differs = (of: (c: TrainConfig) => unknown) => configs.some((c) => of(c) !== of(configs[0]));
  const reasons: string[] = [];
  if (differs((c) => c.data)) reasons.push('data');
  if (differs((c) => c.evalData ?? null) || differs((c) => c.evalSplit)) reasons.push('evaluation rows');
  else if (configs.some((c) => !c.evalData && c.evalSplit > 0) && differs((c) => c.seed)) reasons.push('seed (it picks the held-out rows)');
  if (differs((c) => c.seqLen)) reasons.push('sequence length');
  if (differs((c) => c.completionOnly)) reasons.push('tokens the loss counts');
  if (differs((c) => c.dataFormat)) reasons.push('data format');
  if (reasons.length === 0) return null;
  return `These runs differ in ${reasons.join(', ')}, so their eval losses are not measured on the same tokens and do not compare directly.`;
}

export interface EvalPoint {
  step: number;
  evalLoss: number;
}
export interface LossPoint {
  step: number;
  loss: number;
}

/** The lowest eval loss and the first step that reached it; null: no (finite) evaluation. */
export function bestEval(evals: readonly EvalPoint[]): EvalPoint | null {
  let best: EvalPoint | null = null;
  for (const e of evals) if (Number.isFinite(e.evalLoss) && (best === null || e.evalLoss < best.evalLoss)) best = e;
  return best;
}

/** The newest training loss; null: no step yet. */
export function lastLoss(points: readonly LossPoint[]): LossPoint | null {
  return points.length > 0 ? points[points.length - 1] : null;
}

/**
 * The runs (column indexes) whose value is the lowest; ties all count. Empty
 * unless two or more runs have a value: one run alone is not "the best of".
 */
export function lowestOf(values: readonly (number | null)[]): number[] {
  const known = values.flatMap((v, i) => (v !== null && Number.isFinite(v) ? [{ v, i }] : []));
  if (known.length < 2) return [];
  const min = Math.min(...known.map((k) => k.v));
  return known.filter((k) => k.v === min).map((k) => k.i);
}

/** What the comparison knows of one run's progress and results. */
export interface RunOutcome {
  /** whether its settings evaluate at all (an eval file or a held-out share) */
  evaluates: boolean;
  evals: readonly EvalPoint[];
  points: readonly LossPoint[];
  stepsDone: number;
  totalSteps: number | null;
  /** its status in the app's words */
  status: string;
  /** null: not known to the page */
  trainableParams: number | null;
  /** training time so far; null: not known to the page */
  elapsedSeconds: number | null;
}

export interface ResultRow {
  label: string;
  /** one per run */
  values: string[];
  /** the runs (indexes) this row marks as the best: the lowest best eval loss */
  lowest: number[];
}

/** What stands for a run's missing best eval loss (a cell, a legend entry): it has not evaluated yet, or never will. */
export function missingEvalWords(evaluates: boolean): string {
  return evaluates ? 'no evaluations yet' : 'no evaluation set up';
}

const lossAt = (loss: number, step: number) => `${loss.toFixed(4)} at step ${step}`;

/**
 * The results part of the table, one value per run: best eval loss (its
 * lowest marked), last training loss, steps, status, and trainable
 * parameters and training time when any run's are known.
 */
export function resultRows(runs: readonly RunOutcome[]): ResultRow[] {
  const bests = runs.map((r) => bestEval(r.evals));
  const rows: ResultRow[] = [
    {
      label: 'Best eval loss',
      values: runs.map((r, i) => (bests[i] ? lossAt(bests[i].evalLoss, bests[i].step) : missingEvalWords(r.evaluates))),
      lowest: lowestOf(bests.map((b) => b?.evalLoss ?? null)),
    },
    {
      label: 'Last training loss',
      values: runs.map((r) => {
        const last = lastLoss(r.points);
        return last ? lossAt(last.loss, last.step) : 'no steps yet';
      }),
      lowest: [],
    },
    { label: 'Steps', values: runs.map((r) => (r.totalSteps === null ? String(r.stepsDone) : `${r.stepsDone} / ${r.totalSteps}`)), lowest: [] },
    { label: 'Status', values: runs.map((r) => r.status), lowest: [] },
  ];
  if (runs.some((r) => r.trainableParams !== null)) {
    rows.push({ label: 'Trainable parameters', values: runs.map((r) => (r.trainableParams === null ? 'not known' : formatCount(r.trainableParams))), lowest: [] });
  }
  if (runs.some((r) => r.elapsedSeconds !== null)) {
    rows.push({ label: 'Training time', values: runs.map((r) => (r.elapsedSeconds === null ? 'not known' : formatDuration(r.elapsedSeconds))), lowest: [] });
  }
  return rows;
}
