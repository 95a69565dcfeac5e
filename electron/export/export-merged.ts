// Export format merged: the adapter merged into its base as a Hugging Face
// folder, opened with the loader every model goes through and scored. A QLoRA
// adapter is merged into the dequantized 4-bit weights: the base the source
// was scored on (merge.ts).
import { openModelFolder } from '../models/folder.js';
import { countOf } from '../text/plural.js';
import type { FormatStep } from './format-step.js';
import { mergeAdapter } from './merge.js';
import { lossOfModel, mergedTolerance } from './verify.js';

/**
 * Writes and checks the merged folder of the LoRA adapter in `adapterDir`,
 * with the chat layout the run trained on when the base cannot carry it
 * (step.chatTemplate). Returns its files.
 */
export async function exportMerged(step: FormatStep, adapterDir: string): Promise<string[]> {
  const { chatTemplate } = step;
  const summary = await mergeAdapter(step.folder.dir, adapterDir, step.dir, { addon: step.addon, threads: step.threads, quantization: step.quantization, chatTemplate });
  step.log(`merged ${countOf(summary.mergedTensors, 'weight')} (scaling ${summary.scaling})`);
  if (chatTemplate) step.log('wrote the fallback chat layout the run trained on as the merged model\'s chat template (chat_template.jinja): the base has none');
  const merged = await openModelFolder(step.dir);
  // the merged weights are stored in the base's dtype, which rounds them: the tolerance is that dtype's
  const tolerance = mergedTolerance(merged.storedDType);
  step.check('merged', (await lossOfModel(step.addon, merged, step.examples, step.threads)).loss, tolerance);
  return summary.files;
}
