// Where a run continues when it is resumed: its recorded device and
// precision (run.json), or another device / precision this machine offers
// (the same choices, labels and help as the Hyperparameters form: the
// service's `hyperparameters` specs for the run's model and method, and the
// form's rule for when precision is a choice at all: precisionMatters).
// A recorded device this machine does not list is replaced by one that
// works, and `note` says why in one line. A run that no longer fits can
// turn gradient checkpointing on, or resume past the memory check. `request` is what resumeRun gets:
// only what differs from the record (nothing: the run continues as recorded,
// exactly as before these options existed).
//
// The record is read when the options load (runHistory), unless the page
// already holds it: the device and precision a run really used are written
// by its worker once it starts, so an ended run's are read after it ended.
import { ApiError, type ApiTransport, type HyperparameterSpec, type ResumeRequest, type TrainConfig } from '../../../electron/api/contract.js';
import { precisionMatters } from './hyperparameter-fields.js';

export type ResumeChoice = Pick<ResumeRequest, 'device' | 'precision' | 'gradientCheckpointing' | 'ignoreMemoryCheck' | 'ignoreDiskCheck'>;
/** What run.json recorded of the run, as far as these options need it. */
export type RecordedRun = Pick<TrainConfig, 'model' | 'method' | 'device' | 'precision'> &
  Partial<Pick<TrainConfig, 'gradientCheckpointing' | 'ignoreMemoryCheck'>>;

/** What the engine computes in on the CPU, whatever is asked (bf16 is refused there). */
const CPU_PRECISION = 'fp32';

/** A recorded device as one of the form's choices: 'cuda' is the first GPU. */
function asChoice(device: string): string {
  return device === 'cuda' ? 'cuda:0' : device;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class ResumeOptions {
  /** the device chosen ('auto', 'cpu', 'cuda:N') */
  device = $state('');
  /** the precision chosen where it matters (a GPU); on the CPU the run computes in fp32 */
  precision = $state('');
  /** the form's device and precision specs for this run's model and method (empty until loaded) */
  specs = $state.raw<HyperparameterSpec[]>([]);
  loading = $state(false);
  loadError = $state<string | null>(null);
  /** why the recorded device was not kept, in one line (null: it was) */
  note = $state<string | null>(null);
  /** the service refused the choice (a GPU gone since, bf16 where there is none): its message, on the field it names */
  refusal = $state<{ field: 'device' | 'precision'; message: string } | null>(null);

  /** what run.json recorded (null until loaded) */
  recorded = $state.raw<RecordedRun | null>(null);
  /** turn gradient checkpointing on from here (less memory; offered when the run has it off) */
  checkpointing = $state(false);
  /** resume even if the memory check says it does not fit */
  ignoreMemory = $state(false);
  /** resume even if what the rest of the run writes exceeds its disk's free space (a session's choice: run.json does not keep it) */
  ignoreDisk = $state(false);

  constructor(
    private readonly api: ApiTransport,
    /** the run folder these options resume */
    readonly runDir: string,
  ) {}

  get deviceSpec(): HyperparameterSpec | null {
    return this.specs.find((s) => s.key === 'device') ?? null;
  }
  get precisionSpec(): HyperparameterSpec | null {
    return this.specs.find((s) => s.key === 'precision') ?? null;
  }
  get deviceChoices(): string[] {
    return this.deviceSpec?.choices ?? [];
  }
  get precisionChoices(): string[] {
    return this.precisionSpec?.choices ?? [];
  }
  /** The GPUs this machine lists ('cuda:0', …). */
  get gpuChoices(): string[] {
    return this.deviceChoices.filter((c) => c.startsWith('cuda'));
  }
  /** Precision is a choice on a GPU (chosen, or what auto finds); on the CPU it reads "fp32 (CPU)" (the Hyperparameters form's rule). */
  get precisionMatters(): boolean {
    return precisionMatters(this.specs, this.device);
  }
  /** The precision the run is asked to compute in. */
  get effectivePrecision(): string {
    return this.precisionMatters ? this.precision : CPU_PRECISION;
  }
  get ready(): boolean {
    return this.specs.length > 0;
  }

  /**
   * Reads the run's record (unless given) and this machine's choices, then
   * keeps the recorded device or picks one that works.
   */
  async load(recorded?: RecordedRun): Promise<void> {
    this.loading = true;
    this.loadError = null;
    try {
      const record = recorded ?? (await this.api.call('runHistory', { runDir: this.runDir })).config;
      this.recorded = {
        model: record.model, method: record.method, device: record.device, precision: record.precision,
        gradientCheckpointing: record.gradientCheckpointing === true, ignoreMemoryCheck: record.ignoreMemoryCheck === true,
      };
      this.device = asChoice(record.device);
      this.precision = record.precision;
      const specs = await this.api.call('hyperparameters', { model: record.model, method: record.method });
      this.specs = specs.filter((s) => s.key === 'device' || s.key === 'precision');
      if (!this.deviceSpec || !this.precisionSpec) throw new Error('the service offers no device or precision setting');
      this.preselect();
    } catch (e) {
      this.specs = [];
      this.loadError = messageOf(e);
    } finally {
      this.loading = false;
    }
  }

  private preselect(): void {
    const recorded = this.recorded!;
    const recordedDevice = asChoice(recorded.device);
    const bf16 = recorded.precision === 'bf16';
    if (this.deviceChoices.includes(recordedDevice)) {
      this.note = null;
      return;
    }
    const gpus = this.gpuChoices;
    if (gpus.length > 0) {
      // another GPU of this machine: auto takes the first usable one; bf16 stays where that GPU has it (auto)
      this.device = 'auto';
      this.precision = bf16 ? 'auto' : recorded.precision;
      this.note = `This run trained on ${recordedDevice}, which this machine does not list (it has ${gpus.join(', ')}): it continues on auto, the first usable GPU${bf16 ? ', in bf16 where that GPU has it, else fp32' : ''}.`;
      return;
    }
    this.device = 'cpu';
    this.precision = CPU_PRECISION;
    this.note = `This run trained on ${recordedDevice}${bf16 ? ' in bf16' : ''}, but this machine has no NVIDIA GPU the engine can use: it continues on the CPU${bf16 ? ', in fp32' : ''}.`;
  }

  chooseDevice(device: string): void {
    const wasCpu = !this.precisionMatters;
    this.device = device;
    this.refusal = null;
    // back on a GPU from the CPU: the run's own precision again (the CPU's fp32 was not a choice)
    if (wasCpu && this.precisionMatters && this.recorded) this.precision = this.recorded.precision;
  }

  choosePrecision(precision: string): void {
    this.precision = precision;
    this.refusal = null;
  }

  /** resumeRun's device and precision: those that differ from the record (none: as recorded). */
  get request(): ResumeChoice {
    const recorded = this.recorded;
    if (!this.ready || !recorded) return {};
    const out: ResumeChoice = {};
    if (this.device !== asChoice(recorded.device)) out.device = this.device;
    if (this.effectivePrecision !== recorded.precision) out.precision = this.effectivePrecision;
    if (this.checkpointing && !recorded.gradientCheckpointing) out.gradientCheckpointing = true;
    if (this.ignoreMemory && !recorded.ignoreMemoryCheck) out.ignoreMemoryCheck = true;
    if (this.ignoreDisk) out.ignoreDiskCheck = true;
    return out;
  }

  /** A new Resume press: the last refusal no longer stands; its request. */
  attempt(): ResumeChoice {
    this.refusal = null;
    return this.request;
  }

  /** A refusal of resumeRun about the device or precision becomes this panel's (true); any other error is the caller's. */
  takeError(e: unknown): boolean {
    if (!(e instanceof ApiError) || e.body.code !== 'invalid') return false;
    const field = e.body.field;
    if (field !== 'device' && field !== 'precision') return false;
    this.refusal = { field, message: e.body.message };
    return true;
  }
}
