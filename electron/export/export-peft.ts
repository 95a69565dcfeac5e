// Export format peft: the adapter written as a PEFT folder, read back with the
// reader every import uses (config, names, shapes) and scored on the base the
// source was scored on.
import { readPeftAdapter, writePeftAdapter, type PeftLoraAdapter } from '../adapters/peft.js';
import type { FormatStep } from './format-step.js';
import { quantizedBaseCardNote } from '../adapters/base-quantization.js';
import { LOSS_TOLERANCE, lossWithLora } from './verify.js';

export const PEFT_FILES: readonly string[] = ['adapter_config.json', 'adapter_model.safetensors', 'README.md'];

/** Writes and checks the PEFT folder; `baseModelNameOrPath` goes into its adapter_config.json. Returns its files. */
export async function exportPeft(step: FormatStep, adapter: PeftLoraAdapter, baseModelNameOrPath: string): Promise<string[]> {
  const { dir, folder } = step;
  // the base's revision too: from_pretrained loads the base at it (null: the newest main)
  await writePeftAdapter({ dir, spec: folder.spec, lora: adapter.lora, baseModelNameOrPath, revision: adapter.revision, tensors: adapter.tensors, modelCardNotes: quantizedBaseCardNote(step.quantization) });
  step.log(`wrote the PEFT adapter`);
  const reread = await readPeftAdapter(dir, folder.spec);
  step.check('peft', (await lossWithLora(step.addon, folder, reread.lora, reread.tensors, step.examples, step.threads, step.quantization)).loss, LOSS_TOLERANCE.peft);
  return [...PEFT_FILES];
}
