// --precision, shared by the commands that open an engine (train, eval,
// generate): the precision of the dense products. 'auto' (the default) is bf16
// on an NVIDIA GPU with bf16 tensor cores, else fp32 (electron/engine/precision.ts).
import { UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import type { Precision } from '../engine/native.js';
import { isPrecision, PRECISION_REQUEST_HELP, PRECISION_TRADE_OFF } from '../engine/precision.js';

export const PRECISION_FLAG: FlagSpec = {
  name: 'precision', kind: 'string', valueName: 'auto|fp32|bf16',
  help: `precision of the dense products: auto takes bf16 on an NVIDIA GPU with bf16 tensor cores (compute capability 8.0+), else fp32 (${PRECISION_TRADE_OFF})`,
  defaultText: 'auto',
};

/** --precision as a request ('auto' when absent); a bad value is a usage error naming the accepted ones. */
export function precisionFromArgs(args: ParsedArgs): Precision {
  const text = args.string('precision') ?? 'auto';
  if (!isPrecision(text)) throw new UsageError(`--precision: unknown precision '${text}'; use ${PRECISION_REQUEST_HELP}`, args.command);
  return text;
}
