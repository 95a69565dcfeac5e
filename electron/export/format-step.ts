// What the export gives each format's step (export-peft.ts, export-merged.ts,
// export-gguf-adapter.ts, export-gguf-model.ts): the folder to write, the
// model, the rows every reload check scores, and the check itself, which
// compares a reloaded format's loss with the source's. Said once here so each
// step names only what is its own.
import type { NativeAddon, QuantizationOptions } from '../engine/native.js';
import type { ModelFolder } from '../models/folder.js';
import type { Example } from '../training/data.js';

/**
 * Records one reload check: `loss` against the source's loss, or against
 * `reference` when the format must reproduce something else (a QLoRA
 * adapter's 16-bit base.gguf), within `tolerance`; throws ExportCheckError
 * when it fails, so nothing is moved into place.
 */
export type CheckLoss = (format: string, loss: number, tolerance: number, reference?: number) => void;

export interface FormatStep {
  /** the format's folder, inside the export's temp folder */
  dir: string;
  /** an adapter's base model, or a full run's model itself */
  folder: ModelFolder;
  /** a QLoRA adapter: the 4-bit base it was trained on, which the source was scored on; else null */
  quantization: QuantizationOptions | null;
  /** the rows every check scores */
  examples: readonly Example[];
  addon: NativeAddon;
  threads: number;
  log: (line: string) => void;
  check: CheckLoss;
  /** the chat layout the run trained on, to write where the base cannot carry it (carried-chat-template.ts); null: none */
  chatTemplate: string | null;
}
