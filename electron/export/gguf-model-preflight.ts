// The GGUF model refusals that read no weights (the architecture, the RoPE
// scaling, the tokenizer; for --gguf-base a bitsandbytes 4-bit base), made
// before the source is scored and the other formats are written, so a folder
// llama.cpp cannot get right fails in a second, not after minutes of work.
// writeGgufModel makes the architecture checks again when it writes; the
// tokenizer's GGUF vocabulary built here is handed to it, since building it
// again (about half a second for Llama 3's 128256 tokens) would only repeat
// the same work on the same files.
import type { ModelFolder } from '../models/folder.js';
import { ExportError } from './export-error.js';
import { ggufModelArchitecture } from './gguf-model.js';
import { ggufVocab, type GgufVocab } from './gguf-vocab.js';

/**
 * Refuses what llama.cpp cannot run as converted, and returns the tokenizer
 * of `folder` as ggufVocab builds it. gguf-model converts the merged model,
 * so a 4-bit base is refused for --gguf-base only (the merge dequantizes it);
 * the merged folder keeps the base's tokenizer files, so this vocabulary is
 * the merged model's too.
 */
export async function refuseGgufModelEarly(folder: ModelFolder, ggufBase: boolean, log: (line: string) => void): Promise<GgufVocab> {
  if (ggufBase && (folder.quantization !== null || folder.config.bnb4 !== null)) {
    throw new ExportError(`${folder.dir}: is saved in 4-bit by bitsandbytes; --gguf-base converts the base from 16- or 32-bit weights (GGUF has no NF4 type). Pass the original (unquantized) model folder with --model, or export without --gguf-base`);
  }
  try {
    ggufModelArchitecture(folder.spec, folder.dir);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  const vocab = await ggufVocab(folder.dir, folder.spec.vocabSize);
  if (vocab.normalizer === 'NFC') {
    log(`tokenizer.json normalizes text to Unicode NFC, which llama.cpp does not do (GGUF export accepts it, as the Hugging Face converter does): text already in NFC, nearly all text, tokenizes the same there; decomposed accents may not`);
  }
  return vocab;
}
