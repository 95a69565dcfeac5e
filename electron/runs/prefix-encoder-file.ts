// prefix_encoder.safetensors: what a checkpoint of prefix tuning WITH
// projection keeps beside the PEFT adapter. The adapter holds what PEFT saves,
// the MLP's output table, from which the embedding and the MLP cannot be
// recovered; resuming bit-exactly needs the trained tensors themselves, so
// they are stored here under their engine names (F32). Final adapters do not
// carry this file: they are the plain PEFT table.
import type { NativeEngine } from '../engine/native.js';
import { PREFIX_ENCODER_TENSORS } from '../adapters/layout.js';
import { readSafetensorsHeader } from '../safetensors/read.js';
import { readTensorAsFloat32 } from '../safetensors/convert.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors/write.js';

export const PREFIX_ENCODER_FILE = 'prefix_encoder.safetensors';
const FORMAT = 'peft-studio-prefix-encoder';

export async function writePrefixEncoderFile(file: string, engine: NativeEngine): Promise<void> {
  const shapes = new Map(engine.parameters().map((p) => [p.name, p.shape]));
  const tensors: [string, TensorToWrite][] = PREFIX_ENCODER_TENSORS.map((name) => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`the engine has no tensor "${name}"; prefix tuning with projection is not set up`);
    return [name, { dtype: 'F32', shape, data: engine.getTensor(name) }];
  });
  await writeSafetensors(file, tensors, { format: FORMAT });
}

/** Puts the stored embedding and MLP back into an engine set up for prefix tuning with the same projection. */
export async function restorePrefixEncoderFile(file: string, engine: NativeEngine): Promise<void> {
  const header = await readSafetensorsHeader(file);
  if (header.metadata?.format !== FORMAT) throw new Error(`${file}: is not a peft-studio prefix encoder file (metadata format missing)`);
  const shapes = new Map(engine.parameters().map((p) => [p.name, p.shape]));
  for (const name of PREFIX_ENCODER_TENSORS) {
    const shape = shapes.get(name);
    const info = header.byName.get(name);
    if (!shape || !info) throw new Error(`${file}: ${!info ? `has no tensor "${name}"` : `holds "${name}" but the run has no projection`}; the checkpoint belongs to another prefix tuning layout`);
    if (info.shape.join() !== shape.join()) {
      throw new Error(`${file}: tensor "${name}" has shape [${info.shape.join(', ')}], the run's is [${shape.join(', ')}] (another --virtual-tokens or --encoder-hidden-size)`);
    }
    engine.setTensor(name, (await readTensorAsFloat32(header, name)).data);
  }
}
