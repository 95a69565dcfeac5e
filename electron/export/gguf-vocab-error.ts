// The refusal of a tokenizer that a GGUF cannot carry to llama.cpp as the
// model's own tokenizer reads it (gguf-vocab.ts, gguf-vocab-spm.ts).
export class GgufVocabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufVocabError';
  }
}
