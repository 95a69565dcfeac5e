// optimizer.safetensors: the engine's AdamW moments, exp_avg (m) and
// exp_avg_sq (v) of every trainable tensor as F32 under
// "<engine name>.exp_avg" / "<engine name>.exp_avg_sq" (the state_dict names
// torch.optim.AdamW uses), and the step count in the metadata. SGD, and AdamW
// before its first step, keep no moments: the file then holds no tensors.
import type { NativeEngine, OptimizerState } from '../engine/native.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';

const FORMAT = 'peft-studio-optimizer';

export async function writeOptimizerFile(file: string, state: OptimizerState): Promise<void> {
  const tensors: [string, TensorToWrite][] = [];
  for (const t of state.tensors) {
    tensors.push([`${t.name}.exp_avg`, { dtype: 'F32', shape: [t.m.length], data: t.m }]);
    tensors.push([`${t.name}.exp_avg_sq`, { dtype: 'F32', shape: [t.v.length], data: t.v }]);
  }
  await writeSafetensors(file, tensors, { format: FORMAT, step: String(state.step) });
}

/**
 * Reads the moments back in the order the engine lists its trainable tensors
 * (the order setOptimizerState expects); a file for another layout is an error
 * that says so.
 */
export async function readOptimizerFile(file: string, engine: NativeEngine): Promise<OptimizerState> {
  const header = await readSafetensorsHeader(file);
  const step = Number(header.metadata?.step);
  if (header.metadata?.format !== FORMAT || !Number.isSafeInteger(step) || step < 0) {
    throw new Error(`${file}: is not a peft-studio optimizer state (metadata format/step missing)`);
  }
  if (header.tensors.length === 0) return { step, tensors: [] };
  const trainable = engine.parameters().filter((p) => p.trainable);
  if (header.tensors.length !== 2 * trainable.length) {
    throw new Error(`${file}: holds moments of ${header.tensors.length / 2} tensors but the run trains ${trainable.length}; the checkpoint belongs to another method or adapter layout`);
  }
  const tensors: OptimizerState['tensors'] = [];
  for (const p of trainable) {
    const elements = p.shape.reduce((a, d) => a * d, 1);
    const m = await readTensorAsFloat32(header, `${p.name}.exp_avg`, elements);
    const v = await readTensorAsFloat32(header, `${p.name}.exp_avg_sq`, elements);
    if (m.data.length !== elements || v.data.length !== elements) {
      throw new Error(`${file}: the moments of "${p.name}" have ${m.data.length} values, the tensor has ${elements}`);
    }
    tensors.push({ name: p.name, m: m.data, v: v.data });
  }
  return { step, tensors };
}
