// `peft-studio merge`: fold a LoRA (or DoRA) adapter into its base model and write a
// standalone Hugging Face model folder.
import { defaultThreads } from '../../system/machine.js';
import { resolve } from 'node:path';
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { loadAddon } from '../../engine/load.js';
import { mergeAdapter } from '../../export/merge.js';
import { BASE_QUANT_FLAGS, quantizationFromArgs } from '../quant-flags.js';
import { countOf } from '../../text/plural.js';

export const mergeSpec: CommandSpec = {
  name: 'merge',
  summary: 'Merge a LoRA adapter into the base weights (W + scaling·B·A; a DoRA adapter\'s rows then rescaled to their magnitudes) as a new model folder.',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'base model folder, or org/name of a model in the Hugging Face cache' },
    { name: 'adapter', kind: 'string', valueName: 'DIR', help: 'PEFT LoRA (or DoRA) adapter folder' },
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'new model folder (must not exist or be empty, unless --overwrite); never the model, adapter or run folder, nor inside or around one' },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    { name: 'overwrite', kind: 'boolean', help: 'replace --out if it is not empty (the old folder stays until the new one is complete)' },
    ...BASE_QUANT_FLAGS.map((f) => (f.name === 'quant' ? { ...f, help: 'the adapter was trained on a 4-bit NF4 base (QLoRA): merge into the dequantized base', defaultText: "from run.json beside the adapter, or the base's quantization_config" } : f)),
  ],
  notes: [
    'The merged weights keep the base dtype (BF16/F16 rounded to nearest even) and its shard layout.',
    'A QLoRA adapter is merged into the dequantized 4-bit base and saved in the original dtype, as PEFT does.',
  ],
};

export const mergeCommand: Command = {
  spec: mergeSpec,
  async run(args, io) {
    const quant = quantizationFromArgs(args); // --quant-blocksize alone is a usage error
    const summary = await mergeAdapter(args.requireString('model'), args.requireString('adapter'), resolve(args.requireString('out')), {
      addon: loadAddon(),
      threads: args.number('threads') ?? defaultThreads(),
      overwrite: args.boolean('overwrite'),
      howToOverwrite: 'pass --overwrite',
      // without --quant: what the run recorded (run.json) or the base's own quantization
      ...(quant !== null ? { quantization: quant } : {}),
    });
    for (const notice of summary.notices) io.stderr(`note: ${notice}\n`);
    io.stderr(`merged ${countOf(summary.mergedTensors, 'weight')} (scaling ${summary.scaling}) into ${summary.out}\n`);
  },
};
