// The Export step: which formats, where to, the export's progress lines and
// result (files per format, the reload check).
import type { ApiEvent, ApiTransport, ExportFormat, ExportResult, TrainMethod } from '../../../electron/api/contract.js';
import type { Studio } from './studio.svelte.js';

export const FORMAT_INFO: { format: ExportFormat; label: string; help: string }[] = [
  { format: 'peft', label: 'PEFT adapter', help: 'adapter_config.json + adapter_model.safetensors: loads with PeftModel.from_pretrained.' },
  { format: 'merged', label: 'Merged model', help: 'a full model folder with the adapter folded into the weights: loads with AutoModelForCausalLM, no PEFT needed.' },
  { format: 'gguf', label: 'GGUF LoRA', help: 'adapter.gguf + an Ollama Modelfile: for llama.cpp and Ollama (LoRA and QLoRA runs).' },
];

/** The export folder offered first: beside the run's own files. */
export function defaultExportFolder(runDir: string): string {
  const sep = runDir.includes('\\') && !runDir.includes('/') ? '\\' : '/';
  return `${runDir.replace(/[\\/]+$/, '')}${sep}export`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class ExportPage {
  /** PEFT on by default: the adapter as Hugging Face PEFT loads it */
  formats = $state<Record<ExportFormat, boolean>>({ peft: true, merged: false, gguf: false });
  out = $state('');
  exporting = $state(false);
  log = $state.raw<string[]>([]);
  result = $state.raw<ExportResult | null>(null);
  error = $state<string | null>(null);

  /** the run's method and base model, from its history (null until read) */
  runMethod = $state<TrainMethod | null>(null);
  runModel = $state<string | null>(null);

  /** the folder out was last defaulted for (a new run gets a new default) */
  private defaultedFor: string | null = null;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
  ) {}

  get chosen(): ExportFormat[] {
    return FORMAT_INFO.map((f) => f.format).filter((f) => this.formats[f]);
  }

  /**
   * Export turns LoRA adapters into other files; a prompt or prefix tuning
   * adapter already is a PEFT folder, and a full fine-tune is a model folder.
   */
  get exportable(): boolean {
    return this.runMethod === null || this.runMethod === 'lora' || this.runMethod === 'qlora';
  }

  get canExport(): boolean {
    return this.exportable && !this.exporting && this.studio.runDir !== null && this.out.trim() !== '' && this.chosen.length > 0;
  }

  /** The base model to generate with: the run's own, else the wizard's. */
  get model(): string | null {
    return this.runModel ?? this.studio.model;
  }

  /** Offers `<runDir>/export` when the run changed (a folder the user typed for this run stays), and reads the run's method and model. */
  async followRun(runDir: string | null): Promise<void> {
    if (!runDir || runDir === this.defaultedFor) return;
    this.defaultedFor = runDir;
    this.out = defaultExportFolder(runDir);
    this.result = null;
    this.log = [];
    this.error = null;
    this.runMethod = null;
    this.runModel = null;
    try {
      const history = await this.api.call('runHistory', { runDir });
      if (this.defaultedFor !== runDir) return;
      this.runMethod = history.entry.method;
      this.runModel = history.entry.model;
    } catch {
      // an adapter folder that is no run: export names the problem itself, if there is one
    }
  }

  toggle(format: ExportFormat, on: boolean): void {
    this.formats[format] = on;
  }

  /** exportLog lines for the export in progress. */
  subscribe(): () => void {
    return this.api.onEvent((e: ApiEvent) => {
      if (e.type === 'exportLog' && this.exporting) this.log = [...this.log, e.line];
    });
  }

  async run(): Promise<void> {
    const source = this.studio.runDir;
    if (!source || !this.canExport) return;
    this.exporting = true;
    this.error = null;
    this.result = null;
    this.log = [];
    try {
      this.result = await this.api.call('exportAdapter', { source, formats: this.chosen, out: this.out.trim() });
    } catch (e) {
      this.error = messageOf(e);
    } finally {
      this.exporting = false;
    }
  }
}
