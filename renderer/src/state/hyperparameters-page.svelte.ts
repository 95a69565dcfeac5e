// The Hyperparameters step: the form the method's specs describe, the
// user's edits (validated as they type; only values that differ from the
// default go into studio.hyper), a debounced checkRun after every valid edit
// so the memory verdict follows the form (and with it the settings that look
// like a slip, shown by their fields, and when the run does not fit the
// settings that would, set with one click), and starting the run. The
// warmup is one field given in steps or as a fraction of the run; which way
// is this page's state. An invalid text is kept only in a field the form
// shows: Start never waits for a fix the user cannot see or make.
import type { ApiTransport, HyperparameterSpec, RunCheck, RunFitAlternative, RunSettings, RunWarning } from '../../../electron/api/contract.js';
import {
  inputFor,
  isWarmupRatio,
  keepKnown,
  parseField,
  evalJudgedOff,
  precisionMatters,
  serverErrorsFor,
  warmupModeOf,
  withValue,
  type FieldInput,
  type HyperKey,
  type HyperValue,
  type WarmupMode,
} from './hyperparameter-fields.js';
import type { Studio } from './studio.svelte.js';

/** Long enough that typing "0.0002" checks once, short enough to feel live. */
export const CHECK_DEBOUNCE_MS = 400;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class HyperparametersPage {
  specs = $state.raw<HyperparameterSpec[]>([]);
  loading = $state(false);
  loadError = $state<string | null>(null);
  /** what each input holds, by key (the user's text, even when invalid) */
  inputs = $state<Record<string, FieldInput>>({});
  /** this form's own validation messages, by key */
  fieldErrors = $state<Record<string, string>>({});
  /** a check is scheduled or in flight: the verdict on screen may be stale */
  checkPending = $state(false);
  checkError = $state<string | null>(null);
  /** the user accepts a run the estimate says may not fit */
  ignoreMemory = $state(false);
  /** the user accepts a run that writes more than its disk has free */
  ignoreDisk = $state(false);
  starting = $state(false);
  startError = $state<string | null>(null);
  /**
   * The way the warmup is given, once the user picked it or typed in it
   * (null: as the settings hold it). Kept so that emptying or resetting the
   * fraction leaves its input in place instead of switching to steps under
   * the user's hands.
   */
  private warmupPicked = $state<WarmupMode | null>(null);

  private timer: ReturnType<typeof setTimeout> | null = null;
  /** answers to older checks are dropped: only the newest settings' verdict counts */
  private checkSeq = 0;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
    private readonly debounceMs = CHECK_DEBOUNCE_MS,
  ) {}

  get basic(): HyperparameterSpec[] {
    return this.specs.filter((s) => s.group === 'basic');
  }
  get advanced(): HyperparameterSpec[] {
    return this.specs.filter((s) => s.group === 'advanced');
  }

  /** Fetches the specs for the studio's model and method and fills the form from studio.hyper. */
  async load(): Promise<void> {
    const { model, method } = this.studio;
    if (!model || !method) {
      this.loadError = 'Choose a model and a method first.';
      return;
    }
    this.loading = true;
    this.loadError = null;
    try {
      const specs = await this.api.call('hyperparameters', { model, method });
      this.specs = specs;
      this.studio.hyper = keepKnown(this.studio.hyper, specs);
      const inputs: Record<string, FieldInput> = {};
      for (const spec of specs) {
        const chosen = (this.studio.hyper as Record<string, unknown>)[spec.key];
        inputs[spec.key] = inputFor(spec, chosen === undefined ? spec.default : (chosen as HyperparameterSpec['default']));
      }
      this.inputs = inputs;
      this.fieldErrors = {};
      this.scheduleCheck(0);
    } catch (e) {
      this.loadError = messageOf(e);
    } finally {
      this.loading = false;
    }
  }

  /** The user changed a field: validate it, keep a valid value, re-check. */
  edit(key: HyperKey, input: FieldInput): void {
    const spec = this.specs.find((s) => s.key === key);
    if (!spec) return;
    if (this.isWarmupField(key)) this.warmupPicked = this.warmupMode;
    this.inputs[key] = input;
    const parsed = parseField(spec, input);
    if (!parsed.ok) {
      this.fieldErrors[key] = parsed.error;
      // the run settings keep the last valid value; the start button waits for the fix
      this.checkPending = false;
      this.cancelTimer();
      return;
    }
    delete this.fieldErrors[key];
    this.studio.hyper = withValue(this.studio.hyper, spec, parsed.value);
    // a precision chosen for a GPU does not carry over to the CPU (where bf16 is refused): back to its default
    const precision = this.specs.find((s) => s.key === 'precision');
    if (key === 'device' && precision && !this.precisionMatters && 'precision' in this.studio.hyper) {
      this.studio.hyper = withValue(this.studio.hyper, precision, precision.default);
      this.inputs.precision = inputFor(precision, precision.default);
      delete this.fieldErrors.precision;
    }
    // a valid value can take another field out of view (Evaluate every 0 turns early stopping off)
    this.dropHiddenErrors();
    this.scheduleCheck(this.debounceMs);
  }

  /** The warmup fraction's spec (train --warmup-ratio), shown inside the Warmup steps field; absent from older services. */
  get ratioSpec(): HyperparameterSpec | undefined {
    return this.specs.find(isWarmupRatio);
  }

  /** Steps or a fraction of the run: as the user picked, else as the settings hold it (a fraction when they have one). */
  get warmupMode(): WarmupMode {
    return this.warmupPicked ?? warmupModeOf(this.studio.hyper);
  }

  private isWarmupField(key: HyperKey): boolean {
    return key === 'warmupSteps' || key === this.ratioSpec?.key;
  }

  /**
   * Steps or a fraction: the other way goes back to its default, an invalid
   * text in it too (the run refuses both, and its input leaves the form).
   */
  pickWarmup(mode: WarmupMode): void {
    const ratio = this.ratioSpec;
    if (!ratio) return;
    this.warmupPicked = mode;
    const other: HyperKey = mode === 'fraction' ? 'warmupSteps' : ratio.key;
    if (this.changed(other) || this.errorsFor(other).length > 0) this.reset(other);
  }

  /**
   * Whether the form shows `key`'s input now. Not the warmup's other way,
   * nor a setting it shows as a fact instead (off until the run evaluates,
   * the precision on the CPU, the eval split beside an evaluation file): the
   * page's template has one branch for each of these.
   */
  shows(key: HyperKey): boolean {
    const ratio = this.ratioSpec;
    if (ratio && key === (this.warmupMode === 'fraction' ? 'warmupSteps' : ratio.key)) return false;
    if (this.evalJudgedOff(key) !== null) return false;
    if (key === 'precision' && !this.precisionMatters) return false;
    if (key === 'evalSplit' && this.studio.evalData !== null) return false;
    return true;
  }

  /**
   * An invalid text in a field the form no longer shows would hold Start
   * back with nothing on screen to fix: it goes, and the input reads the
   * value the settings hold (the last valid one), as it will when shown again.
   */
  private dropHiddenErrors(): void {
    for (const key of Object.keys(this.fieldErrors) as HyperKey[]) {
      const spec = this.specs.find((s) => s.key === key);
      if (!spec || this.shows(key)) continue;
      const held = (this.studio.hyper as Record<string, unknown>)[key];
      this.inputs[key] = inputFor(spec, held === undefined ? spec.default : (held as HyperValue));
      delete this.fieldErrors[key];
    }
  }

  /** The precision field offers its choice only where it matters (a GPU chosen or found); else it reads "fp32 (CPU)". */
  get precisionMatters(): boolean {
    return precisionMatters(this.specs, this.inputs.device);
  }

  /** Why keep-best / early stopping are off for the run on screen (null: they apply, or `key` is another field). */
  evalJudgedOff(key: HyperKey): string | null {
    return evalJudgedOff(key, this.studio.hyper, this.studio.evalData);
  }

  /**
   * The settings that would fit (the current verdict's, none while a field is
   * invalid): what the service found with the engine's estimate.
   */
  get alternatives(): RunFitAlternative[] {
    return this.currentCheck?.alternatives ?? [];
  }

  /**
   * Sets a fitting alternative's fields as typing them would (a value equal to
   * the default drops out of the settings); one that changes the method
   * switches it as the Method page does (the method's own settings put aside
   * or brought back) and loads that method's form. Either way the check runs
   * again at once: the verdict is the new settings'.
   */
  async applyAlternative(alternative: RunFitAlternative): Promise<void> {
    const fields = Object.entries(alternative.hyper) as [HyperKey, HyperValue][];
    if (alternative.method !== undefined && alternative.method !== this.studio.method) {
      // batch, sequence and checkpointing mean the same under every method: set here, they carry over
      for (const [key, value] of fields) {
        const spec = this.specs.find((s) => s.key === key);
        if (spec) this.studio.hyper = withValue(this.studio.hyper, spec, value);
      }
      this.studio.chooseMethod(alternative.method);
      // the new method's specs, and a check of the settings they read
      await this.load();
      return;
    }
    for (const [key, value] of fields) {
      const spec = this.specs.find((s) => s.key === key);
      if (spec) this.edit(key, inputFor(spec, value));
    }
    this.scheduleCheck(0);
  }

  /** Back to the method's default. */
  reset(key: HyperKey): void {
    const spec = this.specs.find((s) => s.key === key);
    if (spec) this.edit(key, inputFor(spec, spec.default));
  }

  /** Whether a field differs from its default (shown with a reset button). */
  changed(key: HyperKey): boolean {
    return key in this.studio.hyper;
  }

  /** The messages under a field: this form's own first, then the server's. */
  errorsFor(key: HyperKey): string[] {
    const own = this.fieldErrors[key];
    if (own) return [own];
    return serverErrorsFor(this.studio.check?.errors, key);
  }

  /**
   * The server's messages that belong to no field of this form (model, data,
   * packing, ...): as they are, since each names its setting in the pages'
   * words (the service's app-wording), never by the request's key ("pack").
   */
  get otherErrors(): string[] {
    const keys = new Set<string>(this.specs.map((s) => s.key));
    return (this.studio.check?.errors ?? [])
      .filter((e) => !(keys.has(e.field) || (e.field.startsWith('hyper.') && keys.has(e.field.slice(6)))))
      .map((e) => e.message);
  }

  /**
   * The settings on screen that look like a slip (the run would log them as
   * warnings), from the current verdict: none while a field is invalid.
   * They never block Start.
   */
  get warnings(): RunWarning[] {
    return this.currentCheck?.warnings ?? [];
  }

  /** The warnings about one field, in the form's words. */
  warningsFor(key: HyperKey): string[] {
    return this.warnings.filter((w) => w.fields.includes(key)).map((w) => w.message);
  }

  get hasFieldErrors(): boolean {
    return Object.keys(this.fieldErrors).length > 0;
  }

  /**
   * The verdict that holds for the form as it reads now: none while a field
   * is invalid (the last check was for values no longer on screen, so its
   * estimate must not read as current); the next check comes with the fix.
   */
  get currentCheck(): RunCheck | null {
    return this.hasFieldErrors ? null : this.studio.check;
  }

  /** The memory estimate is short (the device's, or on a GPU the RAM beside it) and no setting is refused: the user may start anyway. */
  get memoryIsTheOnlyProblem(): boolean {
    const c = this.currentCheck;
    return c !== null && !c.ok && c.errors.length === 0 && c.config !== null && c.memory !== null && (!c.memory.fits || c.memory.hostRam?.fits === false);
  }

  /** What the run writes exceeds its disk's free space, and nothing else refuses it: the user may start anyway. */
  get diskIsShort(): boolean {
    const c = this.currentCheck;
    return c !== null && c.errors.length === 0 && c.config !== null && c.disk !== null && !c.disk.fits;
  }

  get canStart(): boolean {
    const c = this.currentCheck;
    if (!c || this.checkPending || this.starting || this.hasFieldErrors || !this.studio.runSettings) return false;
    if (c.ok) return true;
    if (c.errors.length > 0 || c.config === null || c.memory === null) return false;
    // each short figure needs its own "start anyway" (the RAM beside a GPU goes with the memory, as the service has it)
    const memoryOk = (c.memory.fits && (c.memory.hostRam?.fits ?? true)) || (this.memoryIsTheOnlyProblem && this.ignoreMemory);
    const diskOk = c.disk === null || c.disk.fits || this.ignoreDisk;
    return memoryOk && diskOk;
  }

  private cancelTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private scheduleCheck(delayMs: number): void {
    this.cancelTimer();
    this.checkPending = true;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check();
    }, delayMs);
  }

  /** checkRun with the settings as they are now; a newer edit makes this answer moot. */
  async check(): Promise<void> {
    const seq = ++this.checkSeq;
    const settings = this.studio.runSettings;
    if (!settings) {
      this.checkError = 'Choose a model, a method and a dataset first.';
      this.checkPending = false;
      return;
    }
    this.checkPending = true;
    try {
      const verdict = await this.api.call('checkRun', settings);
      if (seq !== this.checkSeq) return;
      this.studio.check = verdict;
      this.checkError = null;
    } catch (e) {
      if (seq !== this.checkSeq) return;
      this.studio.check = null;
      this.checkError = messageOf(e);
    } finally {
      if (seq === this.checkSeq && this.timer === null) this.checkPending = false;
    }
  }

  /** startRun, then the Train page. */
  async start(): Promise<void> {
    const settings = this.studio.runSettings;
    if (!settings || !this.canStart) return;
    const request: RunSettings = { ...settings, ignoreMemoryCheck: this.memoryIsTheOnlyProblem && this.ignoreMemory, ignoreDiskCheck: this.diskIsShort && this.ignoreDisk };
    this.starting = true;
    this.startError = null;
    try {
      const started = await this.api.call('startRun', request);
      // the estimate said before the start, held against the time left on the Train page
      const time = this.studio.check?.time;
      this.studio.startEstimate = time ? { runDir: started.runDir, text: time.text } : null;
      this.studio.runId = started.runId;
      this.studio.runDir = started.runDir;
      this.studio.page = 'train';
    } catch (e) {
      this.startError = messageOf(e);
    } finally {
      this.starting = false;
    }
  }

  dispose(): void {
    this.cancelTimer();
    this.checkSeq++;
  }
}
