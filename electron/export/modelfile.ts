// The Ollama Modelfiles written beside a GGUF adapter and a GGUF model.
// For the adapter: FROM names the base model folder by absolute path (Ollama
// imports a Hugging Face safetensors folder of a Llama-family model, or takes
// a GGUF file there), or with --gguf-base the base.gguf written beside the
// adapter; ADAPTER names the adapter relative to the Modelfile, so the export
// folder can be moved (as one, with base.gguf inside it). Both set the
// sampling PARAMETERs, so `ollama run` chooses tokens as the Try page and
// transformers' generate() do by default, not with Ollama's own defaults.
import { ALPACA_PREAMBLE } from '../data/formats/alpaca.js';
import type { PromptFormat } from '../inference/prompt-format.js';
import { FILE_KEYS, TRANSFORMERS_DEFAULTS, type SamplingDefaults, type SamplingKey } from '../inference/sampling-settings.js';

/** The Modelfile's name in an export folder (Ollama: ollama create NAME -f Modelfile). */
export const MODELFILE = 'Modelfile';

/** The Go templates of ollamaTemplateLines, by layout (\n: a line break inside the TEMPLATE). */
export const OLLAMA_TEMPLATES = {
  chat: '{{ if .System }}{{ .System }}\n\n{{ end }}### User:\n{{ .Prompt }}\n\n### Assistant:\n',
  alpaca: `{{ if .System }}{{ .System }}{{ else }}${ALPACA_PREAMBLE}{{ end }}\n\n### Instruction:\n{{ .Prompt }}\n\n### Response:\n`,
} as const;

/**
 * Ollama's TEMPLATE (a Go template: .System, .Prompt) for a model with no
 * chat template, laid out as the run's rows were (inference/prompt-format.ts):
 * chat rows in the fallback chat template, alpaca rows in the Alpaca
 * prompt as alpaca-lora writes it (a system message replacing its preamble). Ollama puts BOS
 * first itself (the GGUF's add_bos_token), as the layouts have it. None for
 * plain text (Ollama's default passes the prompt as it is), for a model with
 * a chat template (Ollama reads it from the GGUF), or an unknown layout.
 */
export function ollamaTemplateLines(layout: PromptFormat | null, hasChatTemplate: boolean): string[] {
  if (hasChatTemplate || layout === null || layout === 'plain') return [];
  const quotes = '"""';
  return [
    layout === 'chat'
      ? "# The prompt as the run's chat rows were laid out (the fallback chat template: the model has none)."
      : "# The prompt as the run's alpaca rows were laid out (the Alpaca prompt as alpaca-lora writes it: the model has no chat template).",
    `TEMPLATE ${quotes}${OLLAMA_TEMPLATES[layout]}${quotes}`,
    `PARAMETER stop "${layout === 'chat' ? '### User:' : '### Instruction:'}"`,
  ];
}

/** Ollama's defaults (docs/modelfile.md), which the PARAMETER lines replace. */
export const OLLAMA_DEFAULTS = 'temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last 64 tokens';

/**
 * The sampling settings Ollama has a PARAMETER for, by its name: the ones of
 * docs/modelfile.md, and typical_p, an option of api/types.go's Options that
 * the docs' table leaves out. no_repeat_ngram_size, epsilon_cutoff and
 * eta_cutoff have none.
 */
const OLLAMA_PARAMETERS: readonly [SamplingKey, string][] = [
  ['temperature', 'temperature'], ['topK', 'top_k'], ['topP', 'top_p'], ['minP', 'min_p'], ['typicalP', 'typical_p'], ['repetitionPenalty', 'repeat_penalty'],
];

/** Written only when the file sets them (Ollama's default is transformers' too: min_p 0, typical_p 1). */
const WRITTEN_WHEN_SET: readonly SamplingKey[] = ['minP', 'typicalP'];

/** The settings Ollama has no parameter for: a file's value for one of them is named, not written. */
const NOT_IN_OLLAMA: readonly SamplingKey[] = ['epsilonCutoff', 'etaCutoff', 'noRepeatNgramSize'];

/**
 * PARAMETER lines that make Ollama sample as transformers' generate() does
 * with the model's generation_config.json (`sampling`; null: the model has
 * none, so transformers' defaults: greedy, top_k 50, top_p 1, no repetition
 * penalty), as the Try page and `peft-studio generate` do when no setting is
 * given. min_p and typical_p are written when the file sets them (Ollama's
 * defaults, 0 and 1, are transformers' too). A value the file holds that
 * transformers would refuse is replaced by transformers' default, saying so;
 * a setting Ollama has no parameter for (no_repeat_ngram_size,
 * epsilon_cutoff, eta_cutoff) is named, and so is typical_p's reach there:
 * Ollama hands it to llama.cpp's sampler (runner/llamarunner), which applies
 * it before top_p, min_p and the temperature, while the sampler of Ollama's
 * own engine (runner/ollamarunner: sample.NewSampler takes temperature,
 * top_k, top_p, min_p and the seed) ignores it.
 */
export function ollamaSamplingLines(sampling: SamplingDefaults | null): string[] {
  const value = (key: SamplingKey) => (sampling && sampling.invalid[key] === undefined ? sampling[key] : TRANSFORMERS_DEFAULTS[key]);
  const written = (key: SamplingKey) => !WRITTEN_WHEN_SET.includes(key) || (sampling !== null && (sampling.fromFile.includes(key) || sampling.invalid[key] !== undefined));
  const temperature = value('temperature');
  const lines = [
    `# Sampling as PEFT Studio's Try page and transformers' generate() do by default (${sampling ? "the model's generation_config.json" : "the model has no generation_config.json: transformers' defaults"}),`,
    `# not Ollama's (${OLLAMA_DEFAULTS}).${temperature === 0 ? ' Temperature 0: greedy.' : ''}`,
  ];
  for (const key of Object.keys(sampling?.invalid ?? {}) as SamplingKey[]) {
    const instead = NOT_IN_OLLAMA.includes(key) ? 'applies' : 'is written';
    lines.push(`# generation_config.json: ${sampling!.invalid[key]}, so transformers' default ${FILE_KEYS[key]} ${TRANSFORMERS_DEFAULTS[key]} ${instead}.`);
  }
  const beforeTemperature = [value('topP') < 1 ? 'top_p' : null, value('minP') > 0 ? 'min_p' : null].filter((n) => n !== null);
  if (temperature > 0 && beforeTemperature.length > 0) {
    const names = beforeTemperature.join(' and ');
    lines.push(`# llama.cpp (and an Ollama model it runs) applies the temperature after ${names}, transformers before ${beforeTemperature.length === 1 ? 'it' : 'them'}: the same settings keep a somewhat different set of tokens.`);
  }
  const ngram = value('noRepeatNgramSize');
  if (ngram > 0) {
    lines.push(`# generation_config.json sets no_repeat_ngram_size ${ngram}, which Ollama has no parameter for: \`ollama run\` may repeat a run of ${ngram} tokens that the Try page and transformers' generate() never repeat.`);
  }
  const typical = value('typicalP');
  if (typical < 1) {
    lines.push(
      `# generation_config.json sets typical_p ${typical}: Ollama applies it only to a model it runs through llama.cpp, and there before top_p, min_p and the temperature`,
      "# (transformers: after them); Ollama's own engine ignores it. `ollama run` may keep other tokens than the Try page and transformers' generate().",
    );
  }
  for (const key of ['epsilonCutoff', 'etaCutoff'] as const) {
    if (value(key) > 0) {
      lines.push(`# generation_config.json sets ${FILE_KEYS[key]} ${value(key)}, which Ollama has no parameter for: \`ollama run\` may choose tokens below its floor that the Try page and transformers' generate() never choose.`);
    }
  }
  for (const [key, name] of OLLAMA_PARAMETERS) if (written(key)) lines.push(`PARAMETER ${name} ${value(key)}`);
  // transformers penalizes every token of the prompt and the answer; Ollama only the last 64 unless told
  if (value('repetitionPenalty') !== 1) lines.push('PARAMETER repeat_last_n -1');
  return lines;
}

/** Quotes a Modelfile argument when it holds spaces or quotes. */
function modelfileArgument(value: string): string {
  if (!/[\s"]/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * `sampling`: the base model's generation_config.json (readGenerationConfig); absent or null: it has none.
 * `base4bit`: the base folder holds bitsandbytes 4-bit weights, which Ollama cannot import: its FROM is left
 * commented out, saying what to point it at.
 */
export function ollamaModelfile(options: { base: { dir: string } | { ggufFile: string }; adapterFile: string; architecture: string; template?: string[]; sampling?: SamplingDefaults | null; base4bit?: boolean }): string {
  const lines = [
    '# Ollama model: the base model below with this LoRA adapter applied.',
    '#   ollama create NAME -f Modelfile',
    '# (an Ollama that refuses ADAPTER lines: export --format gguf-model instead, the adapter merged into one model.gguf)',
  ];
  if ('ggufFile' in options.base) {
    lines.push(
      `# FROM is the base model the adapter was trained on, converted to GGUF beside it: the folder needs nothing else.`,
      `# llama.cpp: llama-cli -m ${options.base.ggufFile} --lora ${options.adapterFile}`,
      `FROM ${modelfileArgument(`./${options.base.ggufFile}`)}`,
    );
  } else {
    lines.push(
      '# FROM is the base model the adapter was trained on (Ollama imports its safetensors folder;',
      '# a GGUF conversion of the same model works too). A different base gives erratic output.',
    );
    if (options.architecture !== 'llama') {
      lines.push(`# llama.cpp architecture: ${options.architecture}. If your Ollama cannot import this architecture from safetensors, point FROM at a GGUF of the base.`);
    }
    if (options.base4bit) {
      lines.push(
        '# The base folder below holds bitsandbytes 4-bit weights, which Ollama cannot import: point FROM at the original',
        '# 16-bit model the 4-bit one was made from (or a GGUF of it), then remove the "#".',
        `# FROM ${modelfileArgument(options.base.dir)}`,
      );
    } else {
      lines.push(`FROM ${modelfileArgument(options.base.dir)}`);
    }
  }
  // the sampling block after a blank line: the model's own lines stay together above it
  lines.push(`ADAPTER ${modelfileArgument(`./${options.adapterFile}`)}`, ...(options.template ?? []), '', ...ollamaSamplingLines(options.sampling ?? null), '');
  return lines.join('\n');
}

/**
 * The Ollama Modelfile beside a whole-model GGUF: FROM the file, relative to
 * the Modelfile so the folder can be moved as one. No TEMPLATE: Ollama takes
 * the chat template from the file's tokenizer.chat_template. `sampling`: the
 * model's generation_config.json; absent or null: it has none.
 */
export function ollamaModelfileForModel(options: { modelFile: string; chatTemplate: boolean; template?: string[]; sampling?: SamplingDefaults | null }): string {
  const template = options.template ?? [];
  const lines = [
    '# Ollama model: the whole fine-tuned model in one GGUF file.',
    '#   ollama create NAME -f Modelfile        llama-cli -m model.gguf',
    options.chatTemplate
      ? '# The chat template travels inside the GGUF (tokenizer.chat_template). Ollama runs no Jinja: it uses the one of its own\n# templates that matches (check `ollama show NAME --template`; if it prints {{ .Prompt }}, add a TEMPLATE line here).'
      : template.length > 0 ? '# The model has no chat template of its own.' : '# The model has no chat template: add a TEMPLATE line here to chat with it in Ollama.',
    `FROM ${modelfileArgument(`./${options.modelFile}`)}`,
    ...template,
    '',
    ...ollamaSamplingLines(options.sampling ?? null),
    '',
  ];
  return lines.join('\n');
}
