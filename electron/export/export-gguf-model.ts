// Export format gguf-model: the adapter merged into its base (in a scratch
// folder, as the merged format does it) or a full run's model as it is,
// converted to model.gguf + an Ollama Modelfile, then read back through our
// GGUF reader into the scratch folder and scored.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolder } from '../files/make-folder.js';
import { writeFileAtomic } from '../files/atomic.js';
import { openModelFolder } from '../models/folder.js';
import { countOf } from '../text/plural.js';
import type { FormatStep } from './format-step.js';
import { writeGgufModel, type GgufModelSummary, type GgufModelType } from './gguf-model.js';
import { ggufModelToFolder } from './gguf-model-read.js';
import { withChatTemplate, type GgufVocab } from './gguf-vocab.js';
import { mergeAdapter } from './merge.js';
import { MODELFILE, ollamaModelfileForModel, ollamaTemplateLines } from './modelfile.js';
import { readGenerationConfig } from '../models/generation-config.js';
import { trainedPromptFormat } from '../inference/trained-prompt-format.js';
import { exportSourceName, type ExportSource } from './source.js';
import { ExportCheckError, LOSS_TOLERANCE, lossOfModel, mergedTolerance } from './verify.js';

export const GGUF_MODEL_FILE = 'model.gguf';

/** How each GGUF model type rounds a weight, for messages. */
const ROUNDING: Record<GgufModelType, string> = {
  f32: 'not at all',
  f16: 'to 11 significant bits',
  bf16: 'to 8 significant bits',
  q8_0: 'to 8-bit steps of each 32-value block',
};

/** Writes and checks model.gguf and its Modelfile into `dir`; `scratch` is removed in any case. */
export async function exportGgufModel(o: FormatStep & {
  /** a folder for the merged model and the reloaded one, removed at the end */
  scratch: string;
  source: ExportSource;
  /** the LoRA adapter folder merged in first, or null (a full run's model, converted as it is) */
  adapterDir: string | null;
  /** the GGUF type (undefined: the converter's auto, or f32 for a full run) */
  type: GgufModelType | undefined;
  /** the tokenizer's GGUF vocabulary, built by the early refusal (gguf-model-preflight.ts) */
  vocab: GgufVocab;
}): Promise<GgufModelSummary> {
  try {
    let modelDir = o.folder.dir;
    let tolerance = 0;
    let vocab = o.vocab;
    // the fallback layout a chat run trained on, when the base has no template (carried-chat-template.ts)
    let carried: string | null = null;
    if (o.adapterDir !== null) {
      modelDir = join(o.scratch, 'merged');
      carried = o.chatTemplate;
      if (carried !== null) vocab = withChatTemplate(o.vocab, carried);
      const merged = await mergeAdapter(o.folder.dir, o.adapterDir, modelDir, { addon: o.addon, threads: o.threads, quantization: o.quantization, chatTemplate: carried });
      o.log(`merged ${countOf(merged.mergedTensors, 'weight')} (scaling ${merged.scaling}) for the GGUF model`);
      // the merged weights carry their own storage rounding (see the merged format's check)
      tolerance = mergedTolerance((await openModelFolder(modelDir)).storedDType);
    }
    await makeFolder(o.dir);
    const file = join(o.dir, GGUF_MODEL_FILE);
    // A full run's own default is f32: its weights are what was trained, and a short run's updates are often
    // below a 16-bit type's step (the converter's "auto" would round them away; the check would then refuse).
    const type = o.type ?? (o.source.kind === 'full-run' ? 'f32' : undefined);
    // The merged folder holds the base's tokenizer files as they are, so the base's vocabulary is its own.
    const written = await writeGgufModel({ modelDir, outFile: file, ...(type ? { type } : {}), name: exportSourceName(o.source), vocab });
    // Ollama runs no Jinja: a carried fallback layout still gets its TEMPLATE line
    const ownTemplate = written.chatTemplate && carried === null;
    await writeFileAtomic(join(o.dir, MODELFILE), ollamaModelfileForModel({ modelFile: GGUF_MODEL_FILE, chatTemplate: ownTemplate, template: ollamaTemplateLines((await trainedPromptFormat(o.source.dir))?.format ?? null, ownTemplate), sampling: await readGenerationConfig(o.folder.dir) }));
    if (carried !== null) o.log("wrote the fallback chat layout the run trained on as the GGUF's chat template (tokenizer.chat_template): the base has none");
    o.log(`wrote the GGUF model (${written.architecture}, ${written.type}, ${countOf(written.tensors.length, 'tensor')}, ${countOf(written.tokens, 'token')}, ${written.tokenizer}, ${(written.fileBytes / 2 ** 20).toFixed(1)} MiB) and an Ollama Modelfile`);
    const reloaded = join(o.scratch, 'reloaded');
    // (the reader checks the file's tokenizer against a vocabulary it builds afresh from modelDir: an independent check)
    await ggufModelToFolder(file, o.folder.spec, modelDir, reloaded);
    const loss = (await lossOfModel(o.addon, await openModelFolder(reloaded), o.examples, o.threads)).loss;
    try {
      o.check('gguf-model', loss, Math.max(tolerance, LOSS_TOLERANCE['gguf-model'][written.type]));
    } catch (err) {
      // A full run's F32 weights rounded to 16 or 8 bits: small updates (a few steps at a low learning rate on a
      // 16-bit base) fall below the type's step, and the file loses part of what was trained. Not a fault: say so.
      if (!(err instanceof ExportCheckError) || o.source.kind !== 'full-run' || written.type === 'f32') throw err;
      throw new ExportCheckError(err.check, 'model', `${written.type} rounds every weight of the fine-tuned model (${ROUNDING[written.type]}), and that changes its loss more than the check allows: the run's updates to the weights are partly smaller than that rounding, so a ${written.type} file would lose part of what was trained. Export it with the GGUF type f32 (--gguf-type f32), which keeps the weights as they are`);
    }
    return written;
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
  }
}
