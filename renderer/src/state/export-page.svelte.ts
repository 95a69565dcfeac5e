// The Export step: which formats (a full fine-tuning run: the GGUF model
// only; a DoRA run: no GGUF LoRA), the GGUF tensor type and base.gguf, where
// to, the export's progress lines and result (files per format, the reload check).
import type { ApiEvent, ApiTransport, DirEntry, ExportFormat, ExportRequest, ExportResult, GgufModelType, RunStatus, TrainMethod } from '../../../electron/api/contract.js';
import { parentOf } from '../components/paths.js';
import type { Studio } from './studio.svelte.js';

export const FORMAT_INFO: { format: ExportFormat; label: string; help: string }[] = [
  { format: 'peft', label: 'PEFT adapter', help: 'adapter_config.json + adapter_model.safetensors: loads with PeftModel.from_pretrained.' },
  { format: 'merged', label: 'Merged model', help: 'a full model folder with the adapter folded into the weights: loads with AutoModelForCausalLM, no PEFT needed.' },
  { format: 'gguf', label: 'GGUF LoRA', help: 'adapter.gguf + an Ollama Modelfile: for llama.cpp and Ollama (LoRA and QLoRA runs).' },
  { format: 'gguf-model', label: 'GGUF model', help: 'one model.gguf (adapter merged in, tokenizer inside) + a Modelfile: run it with llama-cli -m or ollama create.' },
];

/** The formats a full fine-tuning run is offered: it has no adapter, only its model to convert. */
export const FULL_RUN_FORMATS: readonly ExportFormat[] = ['gguf-model'];

/** The GGUF model's help for a full fine-tuning run: its own weights are converted, there is no adapter to merge in. */
export const FULL_RUN_GGUF_MODEL_HELP =
  'one model.gguf (the fine-tuned weights, tokenizer inside) + a Modelfile: run it with llama-cli -m or ollama create.';

/** What Try says of the prompt's layout, by what the run trained: an adapter, or (a full run) the model itself. */
export function tryLayoutHelp(fullRun: boolean): string {
  return `${fullRun ? 'A fine-tuned model' : 'An adapter'} answers best when prompted the way its training rows were laid out: chat rows in the model's chat template, completions as plain text.`;
}

/** Why a full run is offered the GGUF model only, in the app's words. */
export const FULL_RUN_NOTE =
  'A full fine-tuning run is a whole model, so it exports as one GGUF model only. PEFT adapter, merged model and GGUF LoRA hold or merge an adapter, which a full run has none of; its run folder already is a Hugging Face model (config.json + model.safetensors) to use as it is.';

/** The format a DoRA run is not offered: a llama.cpp LoRA GGUF holds A and B only, no magnitude. */
const DORA_RUN_WITHOUT: ExportFormat = 'gguf';

/** Why a DoRA run is not offered the GGUF LoRA, and what to choose instead, in the app's words. */
export const DORA_RUN_NOTE =
  'A DoRA run has no GGUF LoRA: llama.cpp and Ollama adapters hold only the two low-rank matrices, not the magnitude DoRA learns for each output. For llama.cpp or Ollama choose GGUF model (one model.gguf with the adapter merged in); Merged model is the same for transformers, and the PEFT adapter loads in PEFT as it is.';

/**
 * The GGUF tensor types, each with its size and what it does to the loss. Sizes
 * per weight of a matrix (norms stay f32); the loss figures are the reload
 * check's limits (electron/export/verify.ts LOSS_TOLERANCE) and what it
 * measured on the demo model with a LoRA merged in.
 */
export const GGUF_TYPE_INFO: { type: GgufModelType; help: string }[] = [
  { type: 'f32', help: 'f32: 4 bytes a weight, twice f16; the weights exactly as they are (the loss within 0.0001%). The one type that keeps every small update of a full run.' },
  { type: 'f16', help: 'f16: 2 bytes a weight; within 0.1% of the f32 loss (measured on the demo: 0.001%).' },
  { type: 'bf16', help: 'bf16: 2 bytes a weight, coarser than f16 (8 significant bits); within 0.2% of the f32 loss (demo: 0.005%).' },
  { type: 'q8_0', help: 'q8_0: about 1.06 bytes a weight, about half of f16; within 0.3% of the f32 loss (demo: 0.05%).' },
];

/** The types a GGUF adapter is written in (llama.cpp applies adapters in F32 / F16). */
export const GGUF_ADAPTER_TYPES: readonly GgufModelType[] = ['f32', 'f16'];

/** What the command line writes when no type is chosen: the "default" option's words. */
export function defaultGgufTypeText(formats: readonly ExportFormat[], withBase: boolean, fullRun = false): string {
  const parts: string[] = [];
  if (formats.includes('gguf')) parts.push('f32 for the adapter');
  const own = "the model's own 16-bit type (an F32 model: f16)";
  if (formats.includes('gguf') && withBase) parts.push(`${own} for base.gguf`);
  if (formats.includes('gguf-model')) parts.push(fullRun ? 'f32 for the GGUF model (the fine-tuned weights as trained)' : `${own} for the GGUF model`);
  return `Default: ${parts.join('; ')}`;
}

/**
 * The n-th export folder offered: beside the run folder, named after it
 * (`runs/20261128-lora` -> `runs/20261128-lora-export`, then `-export-2`, ...).
 * Not inside it: an export replaces its whole folder, so the service refuses
 * a folder inside its own source.
 */
export function defaultExportFolder(runDir: string, n = 1): string {
  return `${runDir.replace(/[\\/]+$/, '')}-export${n <= 1 ? '' : `-${n}`}`;
}

/** Why a run cannot be exported yet, in the app's words (null: it can). */
export function notExportableYet(status: RunStatus | 'missing' | null): string | null {
  switch (status) {
    case null:
    case 'finished':
      return null;
    case 'running':
      return 'The run is still training: export it once it has finished. Try it below meanwhile (it uses the newest checkpoint).';
    case 'paused':
      return 'The run is paused: continue it on the Train page and export it once it has finished.';
    case 'missing':
      return 'The run folder is gone, so there is nothing to export.';
    default:
      return `The run ${status === 'failed' ? 'failed' : status === 'cancelled' ? 'was cancelled' : 'was interrupted'} before its last step: resume it from Runs, and export it once it has finished.`;
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class ExportPage {
  /** PEFT on by default: the adapter as Hugging Face PEFT loads it (a full run: the GGUF model, its one format) */
  formats = $state<Record<ExportFormat, boolean>>({ peft: true, merged: false, gguf: false, 'gguf-model': false });
  /** the GGUF tensor type; 'default': none sent, the command line's defaults */
  ggufType = $state<GgufModelType | 'default'>('default');
  /** GGUF LoRA: also write the base model as base.gguf */
  ggufBase = $state(false);
  /** the export folder: what the folder field shows (typed or chosen); Export uses exactly this */
  out = $state('');
  /** the folder out was last defaulted to (a later default moves on when the user kept it) */
  private defaultOut: string | null = null;
  exporting = $state(false);
  log = $state.raw<string[]>([]);
  result = $state.raw<ExportResult | null>(null);
  error = $state<string | null>(null);

  /** the run's method and base model, from its history (null until read) */
  runMethod = $state<TrainMethod | null>(null);
  runModel = $state<string | null>(null);
  /** the run's status (null: not known yet, or its record could not be read) */
  runStatus = $state<RunStatus | 'missing' | null>(null);
  /** why the run's record could not be read (null: read, or being read) */
  runReadError = $state<string | null>(null);
  /** the run is a DoRA (its run.json: config.lora.dora), so the GGUF LoRA is not offered */
  runDora = $state(false);
  /** the run's best/ (train --keep-best), when it finished with one */
  runBest = $state.raw<{ dir: string; step: number; eval_loss: number } | null>(null);
  /** export the best checkpoint instead of the run's final adapter (only while the run has one) */
  useBest = $state(false);

  /** the folder out was last defaulted for (a new run gets a new default) */
  private defaultedFor: string | null = null;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
  ) {}

  /** a full fine-tuning run: its model is exported, not an adapter */
  get fullRun(): boolean {
    return this.runMethod === 'full';
  }

  /** The formats offered for this run: all of them, a full run the GGUF model only, a DoRA run all but the GGUF LoRA. */
  get offered(): typeof FORMAT_INFO {
    if (this.fullRun) {
      return FORMAT_INFO.filter((f) => FULL_RUN_FORMATS.includes(f.format)).map((f) => (f.format === 'gguf-model' ? { ...f, help: FULL_RUN_GGUF_MODEL_HELP } : f));
    }
    return this.runDora ? FORMAT_INFO.filter((f) => f.format !== DORA_RUN_WITHOUT) : FORMAT_INFO;
  }

  get chosen(): ExportFormat[] {
    return this.offered.map((f) => f.format).filter((f) => this.formats[f]);
  }

  /** The GGUF types the chosen formats take (a GGUF LoRA: f32 / f16 only); empty: no GGUF format chosen. */
  get ggufTypes(): GgufModelType[] {
    const chosen = this.chosen;
    if (chosen.includes('gguf')) return [...GGUF_ADAPTER_TYPES];
    return chosen.includes('gguf-model') ? GGUF_TYPE_INFO.map((t) => t.type) : [];
  }

  /** The type sent: the one chosen while the chosen formats take it, else none (the defaults). */
  get requestGgufType(): GgufModelType | undefined {
    return this.ggufType !== 'default' && this.ggufTypes.includes(this.ggufType) ? this.ggufType : undefined;
  }

  /** base.gguf is offered with a GGUF LoRA (and sent only then). */
  get ggufBaseOffered(): boolean {
    return this.chosen.includes('gguf');
  }

  /** The sources offered when the run kept a best adapter: its final adapter (model), or the best one. */
  get sourceChoices(): { best: boolean; label: string }[] {
    const b = this.runBest;
    if (b === null) return [];
    const what = this.fullRun ? 'model' : 'adapter';
    return [
      { best: false, label: `the final ${what} (the last step)` },
      { best: true, label: `the best checkpoint (step ${b.step}, eval loss ${b.eval_loss.toFixed(4)})` },
    ];
  }

  /** The folder exported: the run folder, or its best/ when chosen. */
  get source(): string | null {
    if (this.useBest && this.runBest !== null) return this.runBest.dir;
    return this.studio.runDir;
  }

  /** Chooses the source; a default export folder follows it (<run>-best-export for the best). */
  chooseSource(best: boolean): void {
    this.useBest = best && this.runBest !== null;
    const runDir = this.studio.runDir;
    if (runDir !== null && this.out === this.defaultOut) {
      this.out = this.defaultOut = defaultExportFolder(this.useBest ? `${runDir.replace(/[\\/]+$/, '')}-best` : runDir);
    }
    this.result = null;
  }

  /** What Export sends for this run and folder. */
  request(source: string): ExportRequest {
    const ggufType = this.requestGgufType;
    return {
      source,
      formats: this.chosen,
      out: this.out.trim(),
      ...(ggufType === undefined ? {} : { ggufType }),
      ...(this.ggufBase && this.ggufBaseOffered ? { ggufBase: true } : {}),
    };
  }

  /**
   * Export turns LoRA adapters into other files, and a full fine-tune's model
   * into one GGUF file; a prompt or prefix tuning adapter already is a PEFT
   * folder (there is nothing to convert it to).
   */
  get exportable(): boolean {
    return this.runMethod === null || this.runMethod === 'lora' || this.runMethod === 'qlora' || this.runMethod === 'full';
  }

  /**
   * Why Export is off for this run now (it has not finished, or that is not
   * known yet), or null. Off until the run's status is known: an export the
   * service refuses says so in words meant for the command line.
   */
  get notReady(): string | null {
    if (this.runStatus !== null) return notExportableYet(this.runStatus);
    if (this.runReadError !== null) return `Export waits until it is known whether the run has finished, and its record could not be read: ${this.runReadError}`;
    return 'Reading the run\'s status…';
  }

  get canExport(): boolean {
    return this.exportable && this.notReady === null && !this.exporting && this.studio.runDir !== null && this.out.trim() !== '' && this.chosen.length > 0;
  }

  /** The base model to generate with: the run's own, else the wizard's. */
  get model(): string | null {
    return this.runModel ?? this.studio.model;
  }

  /**
   * Offers `<runDir>-export` (or -export-2, ... when that one already holds
   * files) when the run changed (a folder the user typed for this run stays),
   * and reads the run's method, model and status.
   */
  async followRun(runDir: string | null): Promise<void> {
    if (!runDir || runDir === this.defaultedFor) return;
    this.defaultedFor = runDir;
    this.out = this.defaultOut = defaultExportFolder(runDir);
    this.result = null;
    this.log = [];
    this.error = null;
    this.runMethod = null;
    this.runModel = null;
    this.runStatus = null;
    this.runReadError = null;
    this.runBest = null;
    this.runDora = false;
    this.useBest = false;
    await Promise.all([this.readRun(runDir), this.offerFreshDefault(runDir)]);
  }

  /** Reads the run's method, model and status again (its status changes while it trains). */
  async readRun(runDir: string): Promise<void> {
    try {
      const history = await this.api.call('runHistory', { runDir });
      if (this.defaultedFor !== runDir) return;
      // a full run's one format is on as soon as it is known to be one
      if (history.entry.method === 'full' && this.runMethod !== 'full') this.formats['gguf-model'] = true;
      this.runMethod = history.entry.method;
      this.runModel = history.entry.model;
      // a run.json from before DoRA has no dora: plain LoRA
      this.runDora = history.config.lora?.dora === true;
      this.runStatus = history.entry.status;
      this.runBest = history.entry.best ?? null;
      if (this.runBest === null) this.useBest = false;
      this.runReadError = null;
    } catch (e) {
      // a re-read that fails keeps the status read before; with none, Export stays off and says why
      if (this.defaultedFor === runDir && this.runStatus === null) this.runReadError = messageOf(e);
    }
  }

  /**
   * Moves the default on to the first of <run>-export, <run>-export-2, ...
   * that is new or empty, so a second export does not fail on the first
   * one's folder. Only while the field still shows the previous default.
   */
  private async offerFreshDefault(runDir: string): Promise<void> {
    const parent = parentOf(runDir.replace(/[\\/]+$/, ''));
    const siblings = parent === null ? null : await this.entriesOf(parent);
    if (siblings === null) return;
    for (let n = 1; n < 1000; n++) {
      const candidate = defaultExportFolder(runDir, n);
      const entry = siblings.find((e) => e.path === candidate);
      if (entry && (entry.kind !== 'folder' || ((await this.entriesOf(candidate)) ?? [null]).length > 0)) continue;
      if (this.defaultedFor === runDir && this.out === this.defaultOut) this.out = this.defaultOut = candidate;
      return;
    }
  }

  /** A folder's entries, or null when it cannot be listed. */
  private async entriesOf(dir: string): Promise<DirEntry[] | null> {
    try {
      return (await this.api.call('listDir', { path: dir })).entries;
    } catch {
      return null;
    }
  }

  toggle(format: ExportFormat, on: boolean): void {
    this.formats[format] = on;
  }

  /** exportLog lines for the export in progress; the run's status again when the followed run changes state. */
  subscribe(): () => void {
    return this.api.onEvent((e: ApiEvent) => {
      if (e.type === 'exportLog' && this.exporting) this.log = [...this.log, e.line];
      if (e.type === 'run' && e.runDir === this.defaultedFor && e.event.type !== 'step' && e.event.type !== 'eval' && e.event.type !== 'log') {
        void this.readRun(e.runDir);
      }
    });
  }

  /** Exports to the folder the field shows; afterwards offers a fresh default for the next one. */
  async run(): Promise<void> {
    const source = this.source;
    if (!source || !this.canExport) return;
    this.exporting = true;
    this.error = null;
    this.result = null;
    this.log = [];
    try {
      this.result = await this.api.call('exportAdapter', this.request(source));
    } catch (e) {
      this.error = messageOf(e);
    } finally {
      this.exporting = false;
    }
    const runDir = this.studio.runDir;
    if (this.result && runDir !== null && this.defaultedFor === runDir && !this.useBest) await this.offerFreshDefault(runDir);
  }
}
