// The Ollama Modelfile written beside a GGUF adapter. FROM names the base
// model folder by absolute path (Ollama imports a Hugging Face safetensors
// folder of a Llama-family model, or takes a GGUF file there); ADAPTER names
// the adapter relative to the Modelfile, so the export folder can be moved
// together with the base staying where it is.

/** Quotes a Modelfile argument when it holds spaces or quotes. */
function modelfileArgument(value: string): string {
  if (!/[\s"]/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function ollamaModelfile(options: { baseModelDir: string; adapterFile: string; architecture: string }): string {
  const lines = [
    '# Ollama model: the base model below with this LoRA adapter applied.',
    '#   ollama create NAME -f Modelfile',
    '# FROM is the base model the adapter was trained on (Ollama imports its safetensors folder;',
    '# a GGUF conversion of the same model works too). A different base gives erratic output.',
  ];
  if (options.architecture !== 'llama') {
    lines.push(`# llama.cpp architecture: ${options.architecture}. If your Ollama cannot import this architecture from safetensors, point FROM at a GGUF of the base.`);
  }
  lines.push(`FROM ${modelfileArgument(options.baseModelDir)}`, `ADAPTER ${modelfileArgument(`./${options.adapterFile}`)}`, '');
  return lines.join('\n');
}
