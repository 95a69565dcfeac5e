// A model output that came out NaN / Inf (an evaluation loss, generation
// logits) is refused with the reason: the weights are scanned once then
// (engine/non-finite.ts) and the tensors holding NaN / Inf named, instead of
// printing {"loss": null} or an empty answer.
import type { NativeEngine } from '../engine/native.js';
import { diagnoseNonFiniteWeights, type WeightSources } from '../engine/non-finite.js';

/** Thrown by generate() when the logits hold NaN / Inf; explainNonFiniteOutput says why. */
export class NonFiniteOutputError extends Error {
  constructor(readonly what: string) {
    super(`${what} is not finite (NaN or Inf)`);
    this.name = 'NonFiniteOutputError';
  }
}

/** Whether x holds a NaN or an infinity. */
export function hasNonFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return true;
  return false;
}

/** `what` (e.g. "the evaluation loss") came out non-finite: the message that names the damaged tensors, or says all weights are finite. */
export async function explainNonFiniteOutput(engine: NativeEngine, what: string, sources: WeightSources): Promise<string> {
  const damaged = await diagnoseNonFiniteWeights(engine, sources);
  if (damaged !== null) return `${what} is NaN or Inf because ${damaged}`;
  const adapter = sources.adapter ? ` and the adapter ${sources.adapter}` : '';
  return `${what} is NaN or Inf although every weight of the model ${sources.model}${adapter} is finite: values overflowed inside the model. ` +
    'Check the model with the tool that made it (an fp16 export of a bf16 model overflows like this).';
}
