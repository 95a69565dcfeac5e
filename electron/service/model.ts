// inspectModel: the model's report (the same numbers as `peft-studio
// inspect` for the same settings) with the machine and the method advice.
import { inspectModel, type InspectReport } from '../cli/commands/inspect.js';
import type { InspectModelRequest, MachineSummary, ModelOverview } from '../api/contract.js';
import { PEFT_DEFAULT_TARGETS } from '../adapters/peft-config.js';
import { loadAddon } from '../engine/load.js';
import { existsSync } from 'node:fs';
import { openModelFolder } from '../models/folder.js';
import { resolveCachedModel } from '../models/hf-cache.js';
import { DEFAULT_NF4 } from '../session.js';
import { machineInfo } from '../system/machine.js';
import { TRAIN_DEFAULTS } from '../training/config.js';
import { defaultSeqLenFor } from '../training/settings.js';
import type { ModelSpec } from '../engine/native.js';
import { recommendMethod } from './recommend.js';

/** The inspect settings a request asks for, `train`'s defaults for the rest. */
export function inspectSettings(req: Omit<InspectModelRequest, 'model'>, spec: ModelSpec): InspectReport['settings'] {
  return {
    batch_size: req.batchSize ?? TRAIN_DEFAULTS.batchSize,
    // as `train` picks it when none is given
    seq_len: req.seqLen ?? defaultSeqLenFor(spec),
    rank: req.rank ?? TRAIN_DEFAULTS.rank,
    targets: [...PEFT_DEFAULT_TARGETS],
    virtual_tokens: req.virtualTokens ?? TRAIN_DEFAULTS.virtualTokens,
    encoder_hidden_size: null,
    optimizer: 'adamw',
    gradient_checkpointing: req.gradientCheckpointing ?? false,
    quant_blocksize: DEFAULT_NF4.blocksize,
    double_quant: DEFAULT_NF4.doubleQuant,
  };
}

export async function modelOverview(req: InspectModelRequest, machine: MachineSummary): Promise<ModelOverview> {
  // a folder of the Hugging Face cache whose download was cut short is said as such, as --model says it
  // (the folder itself is opened as chosen: the run's settings name it)
  if (existsSync(req.model)) await resolveCachedModel(req.model);
  const folder = await openModelFolder(req.model);
  const info = machineInfo();
  const inspected = inspectModel(loadAddon(), folder, inspectSettings(req, folder.spec), info);
  // the notices in the Model page's words: its estimate's fields, not inspect's flags
  const report = { ...inspected, notices: inspected.notices.map((n) => n.replace(/(?<=^|[\s(])--seq-len(?=[\s:]|$)/g, 'sequence length')) };
  // measured where a run would go by default: the first GPU when there is one, else the RAM
  const advice = recommendMethod(report, report.fits_in.available_bytes);
  return { report, machine: { ...machine, availableMemoryBytes: info.available_memory_bytes }, ...advice };
}
