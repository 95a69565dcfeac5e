// Export format gguf: adapter.gguf, with --gguf-base also base.gguf (the base
// model converted as gguf-model converts it) and the Modelfile FROM it, so
// the folder needs no Hugging Face folder and no Python converter. Both are
// read back through our GGUF readers and scored: the adapter on the source's
// base (as the source was scored), and base.gguf + adapter.gguf as llama.cpp
// loads them. A QLoRA adapter's base.gguf is the 16-bit base: llama.cpp
// applies the adapter to whatever base it loads, and there is no 4-bit NF4
// type in GGUF. That pair is compared with the adapter on the same 16-bit
// base (the conversion is what is checked), and the log says how far that is
// from the 4-bit model it was trained as.
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PeftLoraAdapter } from '../adapters/peft.js';
import { makeFolder } from '../files/make-folder.js';
import { writeFileAtomic } from '../files/atomic.js';
import { openModelFolder } from '../models/folder.js';
import { countOf } from '../text/plural.js';
import type { FormatStep } from './format-step.js';
import { readGgufLoraAdapter, writeGgufLoraAdapter, type GgufTensorType } from './gguf-lora.js';
import { writeGgufModel, type GgufModelSummary, type GgufModelType } from './gguf-model.js';
import { ggufModelToFolder } from './gguf-model-read.js';
import { withChatTemplate, type GgufVocab } from './gguf-vocab.js';
import { MODELFILE, ollamaModelfile, ollamaTemplateLines } from './modelfile.js';
import { readGenerationConfig } from '../models/generation-config.js';
import { trainedPromptFormat } from '../inference/trained-prompt-format.js';
import { hasChatTemplate } from '../models/chat-template-file.js';
import { exportSourceName, type AdapterExportSource } from './source.js';
import { LOSS_TOLERANCE, lossWithLora } from './verify.js';

export const GGUF_ADAPTER_FILE = 'adapter.gguf';
/** --gguf-base: the base model beside adapter.gguf, so llama.cpp needs no Python converter */
export const GGUF_BASE_FILE = 'base.gguf';

/** What --gguf-base wrote and what its check measured. */
export interface GgufBaseSummary {
  type: GgufModelType;
  fileBytes: number;
  /** QLoRA only: the adapter was trained on the 4-bit base; what the 16-bit base.gguf changes (null otherwise) */
  qloraNote: string | null;
}

/** Writes and checks the GGUF adapter folder into `dir`; `scratch` is removed in any case. */
export async function exportGgufAdapter(o: FormatStep & {
  /** a folder for base.gguf read back, removed at the end */
  scratch: string;
  source: AdapterExportSource;
  adapter: PeftLoraAdapter;
  type: GgufTensorType;
  /**
   * write base.gguf, in this type (undefined: gguf-model's auto), with the
   * base's tokenizer as the early refusal built it (gguf-model-preflight.ts);
   * or not at all (null)
   */
  base: { type: GgufModelType | undefined; vocab: GgufVocab } | null;
  /** the source adapter's loss as trained (QLoRA: on its 4-bit base) */
  sourceLoss: number;
}): Promise<{ alpha: number; files: string[]; base: GgufBaseSummary | null }> {
  try {
    await makeFolder(o.dir);
    const file = join(o.dir, GGUF_ADAPTER_FILE);
    const content = await writeGgufLoraAdapter(file, {
      spec: o.folder.spec,
      lora: o.adapter.lora,
      tensors: o.adapter.tensors,
      type: o.type,
      name: exportSourceName(o.source),
    });
    let written: GgufModelSummary | null = null;
    // base.gguf carries the fallback layout a chat run trained on, when the base has no template (as model.gguf does)
    const carried = o.base ? o.chatTemplate : null;
    if (o.base) {
      written = await writeGgufModel({ modelDir: o.folder.dir, outFile: join(o.dir, GGUF_BASE_FILE), ...(o.base.type ? { type: o.base.type } : {}), name: basename(o.folder.dir), vocab: carried === null ? o.base.vocab : withChatTemplate(o.base.vocab, carried) });
      o.log(`wrote the base model as ${GGUF_BASE_FILE} (${written.architecture}, ${written.type}, ${countOf(written.tensors.length, 'tensor')}, ${written.tokenizer}, ${(written.fileBytes / 2 ** 20).toFixed(1)} MiB)`);
    }
    await writeFileAtomic(join(o.dir, MODELFILE), ollamaModelfile({
      base: written ? { ggufFile: GGUF_BASE_FILE } : { dir: o.folder.dir },
      adapterFile: GGUF_ADAPTER_FILE,
      architecture: content.architecture,
      // Ollama runs no Jinja: a carried fallback layout still gets its TEMPLATE line
      template: ollamaTemplateLines((await trainedPromptFormat(o.source.dir))?.format ?? null, carried === null && (written?.chatTemplate ?? (await hasChatTemplate(o.folder.dir)))),
      sampling: await readGenerationConfig(o.folder.dir),
      base4bit: !written && o.folder.quantization !== null,
    }));
    if (!written && o.folder.quantization !== null) {
      o.log(`the Modelfile's FROM is left commented out: ${o.folder.dir} holds bitsandbytes 4-bit weights, which Ollama cannot import; point it at the original 16-bit model`);
    }
    const rsNote = o.adapter.lora.rslora ? ` (rsLoRA: alpha ${o.adapter.lora.alpha} × sqrt(${o.adapter.lora.rank}), so llama.cpp's alpha / r equals alpha / sqrt(r))` : '';
    o.log(`wrote the GGUF adapter (${content.architecture}, ${o.type}, adapter.lora.alpha ${content.alpha}${rsNote}) and an Ollama Modelfile${written ? ` FROM ./${GGUF_BASE_FILE}` : ''}`);
    const reread = await readGgufLoraAdapter(file, o.folder.spec);
    o.check('gguf', (await lossWithLora(o.addon, o.folder, reread.lora, reread.tensors, o.examples, o.threads, o.quantization)).loss, LOSS_TOLERANCE.gguf[o.type]);
    if (!written) return { alpha: content.alpha, files: [GGUF_ADAPTER_FILE, MODELFILE], base: null };

    const reloaded = join(o.scratch, 'base');
    await ggufModelToFolder(join(o.dir, GGUF_BASE_FILE), o.folder.spec, o.folder.dir, reloaded, carried);
    const loss = (await lossWithLora(o.addon, await openModelFolder(reloaded), reread.lora, reread.tensors, o.examples, o.threads, null)).loss;
    const tolerance = Math.max(LOSS_TOLERANCE.gguf[o.type], LOSS_TOLERANCE['gguf-model'][written.type]);
    let qloraNote: string | null = null;
    if (o.quantization) {
      // the reference of this pair: the adapter on the same base in 16 bits, as stored
      const reference = (await lossWithLora(o.addon, o.folder, o.adapter.lora, o.adapter.tensors, o.examples, o.threads, null)).loss;
      const trained = o.sourceLoss;
      qloraNote = `QLoRA: the adapter was trained on the 4-bit NF4 base; ${GGUF_BASE_FILE} holds the 16-bit base (GGUF has no NF4), so llama.cpp runs the adapter on weights slightly different from the trained ones: ` +
        `loss ${reference.toFixed(6)} on the 16-bit base vs ${trained.toFixed(6)} on the 4-bit base as trained (relative difference ${(Math.abs(reference - trained) / Math.max(Math.abs(trained), 1e-12)).toExponential(2)}). ` +
        `The gguf-base check compares ${GGUF_BASE_FILE} + ${GGUF_ADAPTER_FILE} with the adapter on the 16-bit base`;
      o.log(qloraNote);
      o.check('gguf-base', loss, tolerance, reference);
    } else {
      o.check('gguf-base', loss, tolerance);
    }
    return { alpha: content.alpha, files: [GGUF_ADAPTER_FILE, GGUF_BASE_FILE, MODELFILE], base: { type: written.type, fileBytes: written.fileBytes, qloraNote } };
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
  }
}
