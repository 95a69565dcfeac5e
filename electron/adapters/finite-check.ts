// Adapters are small, so every tensor is checked for NaN / Inf as it is read
// (a base model is not: engine/non-finite.ts scans it only once an output
// came out non-finite). A NaN in lora_A would otherwise pass an export's
// reload check, be merged into the base weights and poison every output.
import { AdapterError } from './peft.js';

/** Throws naming the file, the tensor and the counts when `data` holds NaN or Inf. */
export function checkAdapterTensorFinite(file: string, key: string, data: Float32Array): void {
  let nan = 0;
  let inf = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (Number.isFinite(x)) continue;
    if (Number.isNaN(x)) nan++;
    else inf++;
    if (first < 0) first = i;
  }
  if (first < 0) return;
  const counts = [nan > 0 ? `${nan} NaN` : '', inf > 0 ? `${inf} Inf` : ''].filter(Boolean).join(' and ');
  throw new AdapterError(
    `${file}: tensor "${key}" holds ${counts} (the first at element ${first}): the adapter is damaged, or its training diverged. ` +
      'Train it again, or use an earlier checkpoint of its run.',
  );
}
