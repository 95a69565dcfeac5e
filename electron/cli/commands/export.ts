// `peft-studio export`: a LoRA adapter (a training run or an adapter folder)
// as a PEFT folder, a merged model, a GGUF adapter + Ollama Modelfile (with
// --gguf-base also the base as base.gguf) and/or the merged model as one GGUF
// file (also a full fine-tuning run's model or checkpoint), each checked by
// reloading it and comparing eval loss with the source.
import { DATASET_PATH_KINDS } from '../../data/containers/file-types.js';
import { defaultThreads } from '../../system/machine.js';
import type { CommandSpec } from '../args.js';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import { EXPORT_FORMATS, exportAdapter, type ExportFormat } from '../../export/export.js';
import { GGUF_MODEL_TYPES, type GgufModelType } from '../../export/gguf-model.js';
import { DEFAULT_CHECK_ROWS } from '../../export/verify.js';

export const exportSpec: CommandSpec = {
  name: 'export',
  summary: 'Export a run\'s or a folder\'s LoRA adapter as PEFT, a merged model, or GGUF (adapter or whole model) for llama.cpp/Ollama; a full fine-tuning run\'s model as GGUF.',
  positionals: [{ name: 'RUN_OR_ADAPTER', help: 'training run folder (train --out; a full fine-tuning run or one of its checkpoints/step-N for gguf-model) or PEFT adapter folder' }],
  flags: [
    { name: 'format', kind: 'list', valueName: 'FORMATS', choices: EXPORT_FORMATS, help: 'peft, merged, gguf (adapter; not for DoRA, which llama.cpp adapters cannot hold), gguf-model (one GGUF with the adapter merged in), or a comma list (then --out gets one subfolder per format)' },
    { name: 'out', kind: 'string', valueName: 'DIR', help: 'export folder (must not exist or be empty, unless --overwrite); never the run, adapter or base model folder, nor inside or around one' },
    { name: 'model', kind: 'string', valueName: 'DIR', help: 'base model folder, or org/name of a model in the Hugging Face cache', defaultText: "the run's model, or the adapter's base_model_name_or_path if it is a folder" },
    { name: 'gguf-type', kind: 'string', choices: GGUF_MODEL_TYPES, help: 'GGUF tensor type: the adapter (gguf) takes f32 or f16; the model (gguf-model) also bf16 or q8_0 (8-bit, about half the size of f16)', defaultText: "gguf: f32; gguf-model: the model's own 16-bit type (F32 models: f16), a full fine-tuning run f32 (its weights as trained)" },
    { name: 'gguf-base', kind: 'boolean', help: 'gguf: also write the base model as base.gguf (in --gguf-type, default as gguf-model picks it) with the Modelfile FROM ./base.gguf, so llama.cpp and Ollama need nothing else (no Python converter). QLoRA: the 16-bit base (GGUF has no NF4)' },
    { name: 'check-data', kind: 'string', valueName: 'DATASET', help: `rows for the reload check: any dataset train reads (${DATASET_PATH_KINDS}; text, chat, alpaca, completion or tokenized rows)`, defaultText: "the run's eval rows (its --eval-data, or its --eval-split part), else its first rows; a built-in English sample when there is no run data" },
    { name: 'check-rows', kind: 'int', min: 1, help: 'rows scored by the reload check', defaultText: String(DEFAULT_CHECK_ROWS) },
    { name: 'threads', kind: 'int', min: 1, help: 'CPU threads', defaultText: 'the CPUs this process may use' },
    { name: 'overwrite', kind: 'boolean', help: 'replace --out if it is not empty (the old folder stays until the new one is complete and checked)' },
  ],
  notes: [
    'gguf writes adapter.gguf (general.type adapter, adapter.type lora, llama.cpp tensor names) and an Ollama Modelfile:',
    '  ollama create NAME -f DIR/Modelfile      llama-cli -m base.gguf --lora DIR/adapter.gguf',
    'gguf --gguf-base also writes DIR/base.gguf (Modelfile FROM ./base.gguf): llama-cli -m DIR/base.gguf --lora DIR/adapter.gguf;',
    '  its check scores base.gguf + adapter.gguf read back (QLoRA: against the adapter on the 16-bit base; the log gives the 4-bit difference).',
    'rsLoRA adapters get adapter.lora.alpha = alpha * sqrt(r): llama.cpp scales by alpha / r.',
    'gguf-model writes model.gguf (weights, tokenizer and chat template; byte-level BPE and SentencePiece-style BPE tokenizers) and a Modelfile with FROM ./model.gguf:',
    '  ollama create NAME -f DIR/Modelfile      llama-cli -m DIR/model.gguf',
    'A full fine-tuning run (or its checkpoints/step-N) exports as gguf-model only. Its weights are F32: f16, bf16 and q8_0 round them,',
    '  and updates smaller than that rounding (few steps at a low learning rate) are lost; the check then refuses the file: use --gguf-type f32.',
    'Each export is read back and scored on a few rows against the source adapter; a mismatch fails and writes nothing.',
    'The JSON summary\'s check.rowsFrom says which rows were scored: "run data", "--check-data" or "built-in sample".',
    'Prints a JSON summary on stdout.',
  ],
};

export const exportCommand: Command = {
  spec: exportSpec,
  async run(args, io) {
    const source = args.positionals[0];
    if (source === undefined) throw new UsageError('export needs RUN_OR_ADAPTER: a training run folder or a PEFT adapter folder', 'export');
    const formats = args.list('format');
    if (formats === undefined) throw new UsageError(`export needs --format (${EXPORT_FORMATS.join(', ')})`, 'export');
    const result = await exportAdapter({
      source,
      formats: formats as ExportFormat[],
      out: args.requireString('out'),
      model: args.string('model') ?? null,
      overwrite: args.boolean('overwrite'),
      howToOverwrite: 'pass --overwrite',
      ...(args.string('gguf-type') === undefined ? {} : { ggufType: args.string('gguf-type') as GgufModelType }),
      ggufBase: args.boolean('gguf-base'),
      checkData: args.string('check-data') ?? null,
      checkRows: args.number('check-rows'),
      threads: args.number('threads') ?? defaultThreads(),
      log: (line) => io.stderr(line + '\n'),
    });
    for (const o of result.outputs) io.stderr(`exported ${o.format} to ${o.dir}\n`);
    io.stdout(JSON.stringify({
      out: result.out,
      base_model: result.source.modelDir,
      outputs: result.outputs,
      check: result.check,
      ...(result.ggufAlpha === undefined ? {} : { gguf_alpha: result.ggufAlpha }),
      ...(result.ggufModel === undefined ? {} : { gguf_model: result.ggufModel }),
      ...(result.ggufBase === undefined ? {} : { gguf_base: result.ggufBase }),
    }) + '\n');
  },
};
