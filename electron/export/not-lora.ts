// Why export refuses an adapter that is not LoRA (prompt tuning, (IA)³,
// AdaLoRA, LoHa, LoKr...): every format it writes holds LoRA factors or a
// merge of them; and why a DoRA adapter has no GGUF adapter form (its
// magnitudes are not LoRA factors, but they merge). The message says what
// the adapter is and what to do instead.
import type { ExportFormat } from './export.js';
import type { AdapterExportSource } from './source.js';

/** What an adapter of this PEFT type is, in words: virtual tokens, scaling vectors, other low-rank forms. */
export function describePeftType(peftType: string): { name: string; virtualTokens: boolean; what: string } {
  switch (peftType) {
    case 'PROMPT_TUNING':
    case 'P_TUNING':
    case 'MULTITASK_PROMPT_TUNING':
    case 'PREFIX_TUNING':
      return { name: peftType === 'PREFIX_TUNING' ? 'prefix tuning' : peftType === 'P_TUNING' ? 'P-tuning' : 'prompt tuning', virtualTokens: true, what: 'it adds virtual tokens, not weight updates' };
    case 'IA3':
      return { name: '(IA)³', virtualTokens: false, what: 'it holds learned scaling vectors that multiply activations, not LoRA factors' };
    case 'ADALORA':
      return { name: 'AdaLoRA', virtualTokens: false, what: 'its low-rank update is an SVD-style triplet (lora_E), not plain LoRA factors' };
    case 'LOHA':
    case 'LOKR':
      return { name: peftType === 'LOHA' ? 'LoHa' : 'LoKr', virtualTokens: false, what: `its update is a ${peftType === 'LOHA' ? 'Hadamard' : 'Kronecker'} product of factors, not plain LoRA factors` };
    default:
      return { name: peftType, virtualTokens: false, what: 'it is not a LoRA adapter' };
  }
}

/** Why an adapter that is not LoRA cannot be exported to the first of these formats. */
export function notLoraMessage(source: AdapterExportSource, formats: readonly ExportFormat[]): string {
  const type = describePeftType(source.peftType);
  const article = /^[aeiou(]/i.test(type.name) ? 'an' : 'a';
  const what = `${source.adapterDir}: is ${article} ${type.name} adapter (peft_type ${source.peftType}); ${type.what}`;
  if (formats.includes('gguf')) {
    return `${what}. A GGUF adapter holds LoRA factors only (adapter.type "lora"), so export cannot write it for llama.cpp or Ollama. Use it with PEFT as it is`;
  }
  if (formats.includes('merged') || formats.includes('gguf-model')) {
    return type.virtualTokens ? `${what}, so there is nothing to merge into the base weights` : `${what}, and export merges LoRA adapters only. Merge it with PEFT (merge_and_unload)`;
  }
  return `${what}; export handles LoRA adapters only, and this folder already is in the PEFT format: copy it as it is`;
}

/** Why a DoRA adapter cannot be written as a GGUF adapter (format gguf), and the formats that hold it. */
export function doraGgufMessage(source: Pick<AdapterExportSource, 'adapterDir'>): string {
  return `${source.adapterDir}: is a DoRA adapter (adapter_config.json "use_dora": true). A GGUF adapter holds LoRA factors only, and llama.cpp cannot apply DoRA's magnitudes, ` +
    `so --format gguf cannot write it. Export it with --format gguf-model (one GGUF file with the adapter merged in, for llama.cpp and Ollama) or --format merged (a Hugging Face model folder); --format peft keeps it as it is`;
}
