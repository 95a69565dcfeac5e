// The Ollama Modelfiles written beside a GGUF adapter and a GGUF model.
// For the adapter: FROM names the base model folder by absolute path (Ollama
// imports a Hugging Face safetensors folder of a Llama-family model, or takes
// a GGUF file there), or with --gguf-base the base.gguf written beside the
// adapter; ADAPTER names the adapter relative to the Modelfile, so the export
// folder can be moved (as one, with base.gguf inside it).

/** The Modelfile's name in an export folder (Ollama: ollama create NAME -f Modelfile). */
export const MODELFILE = 'Modelfile';

/** Quotes a Modelfile argument when it holds spaces or quotes. */
function modelfileArgument(value: string): string {
  if (!/[\s"]/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function ollamaModelfile(options: { base: { dir: string } | { ggufFile: string }; adapterFile: string; architecture: string }): string {
  const lines = ['# Ollama model: the base model below with this LoRA adapter applied.', '#   ollama create NAME -f Modelfile'];
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
    lines.push(`FROM ${modelfileArgument(options.base.dir)}`);
  }
  lines.push(`ADAPTER ${modelfileArgument(`./${options.adapterFile}`)}`, '');
  return lines.join('\n');
}

/**
 * The Ollama Modelfile beside a whole-model GGUF: FROM the file, relative to
 * the Modelfile so the folder can be moved as one. No TEMPLATE: Ollama takes
 * the chat template from the file's tokenizer.chat_template.
 */
export function ollamaModelfileForModel(options: { modelFile: string; chatTemplate: boolean }): string {
  const lines = [
    '# Ollama model: the whole fine-tuned model in one GGUF file.',
    '#   ollama create NAME -f Modelfile        llama-cli -m model.gguf',
    options.chatTemplate
      ? '# The chat template travels inside the GGUF (tokenizer.chat_template); Ollama reads it from there.'
      : '# The model has no chat template: add a TEMPLATE line here to chat with it in Ollama.',
    `FROM ${modelfileArgument(`./${options.modelFile}`)}`,
    '',
  ];
  return lines.join('\n');
}
