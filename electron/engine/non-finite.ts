// What to say once a loss, a gradient norm or the logits came out NaN / Inf:
// whether the weights themselves hold such values (a damaged model file or
// adapter: no learning rate helps) or the values grew in the computation.
// The weights are scanned only then (NativeEngine.nonFiniteTensors reads
// every value: seconds on an 8B model), never on a normal load.
import { countOf } from '../text/plural.js';
import type { NativeEngine, NonFiniteTensor } from './native.js';

/** Where the engine's tensors came from, for the advice. */
export interface WeightSources {
  /** the base model folder */
  model: string;
  /** where the adapter / trainable tensors came from (an adapter folder, --init-adapter, a checkpoint); null: set up fresh */
  adapter?: string | null;
  /** full fine-tuning: the base weights are the trainable tensors (from the model, or from `adapter`, a checkpoint) */
  fullModel?: boolean;
}

/** How many tensors the message names before "and N more". */
const NAMED = 3;

function counts(t: NonFiniteTensor): string {
  const parts: string[] = [];
  if (t.nan > 0) parts.push(`${t.nan} NaN`);
  if (t.inf > 0) parts.push(`${t.inf} Inf`);
  return parts.join(' and ');
}

function listed(tensors: readonly NonFiniteTensor[]): string {
  const named = tensors.slice(0, NAMED).map((t) => `${t.name} holds ${counts(t)}`);
  const more = tensors.length > NAMED ? `, and ${countOf(tensors.length - NAMED, 'more tensor', 'more tensors')}` : '';
  return named.join(', ') + more;
}

/**
 * Names the tensors holding NaN / Inf and what to do, or null when every
 * weight is finite (then the computation itself overflowed).
 */
export function describeNonFiniteTensors(found: readonly NonFiniteTensor[], sources: WeightSources): string | null {
  if (found.length === 0) return null;
  if (sources.fullModel) {
    const from = sources.adapter ? `the checkpoint ${sources.adapter} or the model ${sources.model} is damaged; restore it from a good copy` : `the model file is damaged: ${sources.model}; download the model again or restore it from a good copy`;
    return `${listed(found)} (${from})`;
  }
  const base = found.filter((t) => !t.trainable);
  const trained = found.filter((t) => t.trainable);
  const parts: string[] = [];
  if (base.length > 0) {
    parts.push(`${listed(base)} (the model file is damaged: ${sources.model}; download the model again or restore it from a good copy)`);
  }
  if (trained.length > 0) {
    const from = sources.adapter ? `the adapter is damaged: ${sources.adapter}; train it again or use an earlier checkpoint` : 'the trainable tensors hold non-finite values';
    parts.push(`${listed(trained)} (${from})`);
  }
  return parts.join('; ');
}

/** Scans the engine's weights (see the file comment) and describes what it found, or null when all are finite. */
export async function diagnoseNonFiniteWeights(engine: NativeEngine, sources: WeightSources): Promise<string | null> {
  return describeNonFiniteTensors(await engine.nonFiniteTensors(), sources);
}

/** A learning rate as a person writes it: 2e-6 or 0.000002, not 0.0000020000000000000003. */
export function formatLearningRate(lr: number): string {
  return String(Number(lr.toPrecision(6)));
}
