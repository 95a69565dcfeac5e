// The 4-bit base flags shared by eval, generate (and train --method qlora):
// --quant nf4, --quant-blocksize N, --no-double-quant, turned into the
// engine's QuantizationOptions.
import { UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import type { QuantizationOptions } from '../engine/native.js';
import { DEFAULT_NF4 } from '../session.js';

export const QUANT_FLAGS: FlagSpec[] = [
  { name: 'quant', kind: 'string', choices: ['nf4'], help: 'hold the decoder blocks\' linear layers in 4-bit NF4 (QLoRA\'s base, as bitsandbytes)', defaultText: 'none (a bitsandbytes 4-bit folder is always NF4)' },
  { name: 'quant-blocksize', kind: 'int', min: 32, max: 4096, help: 'values per NF4 absmax block (a power of two)', defaultText: String(DEFAULT_NF4.blocksize) },
  { name: 'no-double-quant', kind: 'boolean', help: 'keep the NF4 absmax values in fp32 (4.5 instead of 4.127 bits per weight)' },
];

/** QUANT_FLAGS as eval, generate and merge list them: the block flags say they go with --quant nf4 (quantizationFromArgs refuses them alone). */
export const BASE_QUANT_FLAGS: FlagSpec[] = QUANT_FLAGS.map((f) => (f.name === 'quant' ? f : { ...f, help: `${f.help} (with --quant nf4)` }));

/** The --quant flags as engine options; null without --quant. `forced`: the method implies nf4 (train --method qlora). */
export function quantizationFromArgs(args: ParsedArgs, forced = false): QuantizationOptions | null {
  const blocksize = args.number('quant-blocksize');
  const noDq = args.boolean('no-double-quant');
  if (!forced && args.string('quant') === undefined) {
    if (blocksize !== undefined || noDq) {
      throw new UsageError(`--${blocksize !== undefined ? 'quant-blocksize' : 'no-double-quant'} needs --quant nf4`, args.command);
    }
    return null;
  }
  const bs = blocksize ?? DEFAULT_NF4.blocksize;
  if ((bs & (bs - 1)) !== 0) throw new UsageError(`--quant-blocksize must be a power of two between 32 and 4096 (got ${bs})`, args.command);
  return { type: 'nf4', blocksize: bs, doubleQuant: !noDq };
}
