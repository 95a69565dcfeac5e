// What to tell the user about tensors in a model's weight files that its
// config.json does not use. transformers warns about them ("Some weights of
// the model checkpoint were not used"); silence here hid a config.json that
// had lost a layer (num_hidden_layers 3 on 4-layer weights trains a
// different, truncated model).
import type { ModelSpec } from '../engine/native.js';
import { countOf } from '../text/plural.js';

/**
 * Buffers some checkpoints save that transformers recomputes and ignores
 * without a warning: not worth a notice.
 */
const SILENTLY_IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

const FIRST_FEW = 3;

/** "a, b, c and 4 more" */
function firstFew(names: string[]): string {
  const shown = names.slice(0, FIRST_FEW).join(', ');
  return names.length > FIRST_FEW ? `${shown} and ${names.length - FIRST_FEW} more` : shown;
}

/**
 * One notice per kind of unused tensor, or none: decoder layers beyond
 * config.json's num_hidden_layers are grouped by layer; anything else is
 * counted and the first few named.
 */
export function unusedTensorNotices(unused: readonly string[], spec: ModelSpec): string[] {
  const notices: string[] = [];
  const extraLayers = new Map<number, number>();
  const other: string[] = [];
  for (const name of unused) {
    if (SILENTLY_IGNORED.test(name)) continue;
    // tied embeddings: transformers ties lm_head to embed_tokens whether or not the file also saved it
    if (name === 'lm_head.weight' && spec.tieWordEmbeddings) continue;
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    const index = layer ? Number(layer[1]) : -1;
    if (index >= spec.numLayers) extraLayers.set(index, (extraLayers.get(index) ?? 0) + 1);
    else other.push(name);
  }
  if (extraLayers.size > 0) {
    const layers = [...extraLayers.keys()].sort((a, b) => a - b);
    const weightLayers = layers[layers.length - 1] + 1;
    const tensors = [...extraLayers.values()].reduce((a, b) => a + b, 0);
    const which = layers.length === 1
      ? `model.layers.${layers[0]}.*`
      : layers.length <= FIRST_FEW ? layers.map((l) => `model.layers.${l}.*`).join(', ') : `model.layers.${layers[0]}.* .. model.layers.${layers[layers.length - 1]}.*`;
    notices.push(`config.json has ${countOf(spec.numLayers, 'layer')} (num_hidden_layers) but the weights have ${weightLayers}: ${which} (${countOf(tensors, 'tensor')}) ` +
      'are not used. If config.json was edited by mistake, restore its num_hidden_layers; the model runs with the first ' +
      `${countOf(spec.numLayers, 'layer')} only`);
  }
  if (other.length > 0) {
    const one = other.length === 1;
    notices.push(`${countOf(other.length, 'tensor')} in the weight files ${one ? 'is' : 'are'} not used by a ${spec.architecture} with this config.json: ${firstFew(other)}. ` +
      (one ? 'It is ignored; if the model should use it, config.json does not describe this weight'
        : 'They are ignored; if the model should use them, config.json does not describe these weights'));
  }
  return notices;
}
