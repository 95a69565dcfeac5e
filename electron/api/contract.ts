// THE API between the user interface and the Node side: every call the
// renderer can make, its request and its response, and the events pushed
// back. One file, shared by the Electron main process (electron/app), the
// preload, the browser-mode server (electron/serve) and the renderer
// (type-only imports there). Two transports carry it (Electron IPC and a
// WebSocket); both speak exactly these messages, so the UI has one code path.
//
// Everything here is plain JSON: no class instances, no typed arrays, no
// undefined-vs-missing distinctions the wire would lose.
import type { InspectReport, MemoryRow } from '../cli/commands/inspect.js';
import type { DatasetReport, RowPreview } from '../data/index.js';
import type { ExportFormat, ExportResult } from '../export/export.js';
import type { GgufModelType } from '../export/gguf-model.js';
import type { MemoryUsage } from '../engine/native.js';
import type { RunEvent, RunStatus } from '../runs/events.js';
import type { RunIndexEntry } from '../runs/run-index.js';
import type { DataFormat, TrainConfig, TrainMethod } from '../training/config.js';
import type { SettingWarning } from '../training/warnings.js';
import type { PromptFormat } from '../inference/prompt-format.js';
import type { SamplingKey, SamplingSettings } from '../inference/sampling-settings.js';
import type { CachedModel } from '../models/hf-cache-list.js';

export type { PromptFormat };
export type { CachedModel };
export type { DatasetReport, RowPreview, ExportFormat, ExportResult, GgufModelType, InspectReport, MemoryRow, RunEvent, RunIndexEntry, RunStatus, TrainConfig, TrainMethod, DataFormat, SettingWarning };

// ---------------------------------------------------------------- machine

/** A GPU as addon.devices() lists it (electron/engine/native.ts DeviceInfo). */
export interface GpuInfo {
  /** the N of 'cuda:N' */
  index: number;
  /** '' when `error` is set */
  name: string;
  computeCapability: string;
  totalBytes: number;
  freeBytes: number;
  /** why this GPU cannot be used (it could not report itself); '' when it can */
  error: string;
}

export interface MachineSummary {
  cpuModel: string;
  /** the threads a run uses by default: the machine's, within a container's CPU quota */
  cpuThreads: number;
  /** the machine's memory, or a container's memory limit when lower */
  totalMemoryBytes: number;
  availableMemoryBytes: number;
  /** a container's (cgroup's) CPU quota, in CPUs, when it holds cpuThreads below the machine's own hostThreads; null when none does */
  cpuQuota: { cpus: number; hostThreads: number } | null;
  /** a container's (cgroup's) memory limit when it is below the machine's memory (totalMemoryBytes is then this limit); null when none is */
  memoryLimitBytes: number | null;
  /** every CUDA device the runtime counts, an unusable one with its `error` (empty: CPU only, or the CUDA backend is not built) */
  gpus: GpuInfo[];
  /** backend and kernels the engine uses, in words */
  engine: string;
  /** 'electron' (desktop app) or 'browser' (peft-studio serve) */
  mode: 'electron' | 'browser';
}

/** The bundled demo: a tiny Llama and datasets shaped for it. */
export interface DemoPaths {
  model: string;
  /** name -> absolute path of each bundled dataset (task-train, task-eval, ...) */
  datasets: { name: string; path: string; description: string }[];
}

export interface RecentItems {
  models: string[];
  datasets: string[];
}

/** The models already in the Hugging Face hub cache, one per snapshot on disk (electron/models/hf-cache-list.ts). */
export interface CachedModels {
  /** the cache folder looked in (models/hf-cache.ts HUB_CACHE_RULE); null when outside what this server may use */
  cacheDir: string | null;
  /** usable ones and those that cannot be opened (each with its reason) */
  models: CachedModel[];
  /** cached models left out because they are outside the folders this server may use (browser mode) */
  hidden: number;
}

// ---------------------------------------------------------------- files

/**
 * Electron answers with a native dialog; browser mode has no native dialog
 * and answers `{ path: null, dialog: false }`, and the renderer then shows
 * its own browser over `listDir`.
 */
export interface PickPathRequest {
  kind: 'folder' | 'file';
  title: string;
  /** file picker only: extensions without the dot */
  extensions?: string[];
  /** start here (absolute) */
  defaultPath?: string | null;
}
export interface PickPathResponse {
  path: string | null;
  /** false when this transport has no native dialog */
  dialog: boolean;
}

export interface DirEntry {
  name: string;
  path: string;
  kind: 'folder' | 'file';
  bytes: number;
  /** folders: holds config.json and safetensors weights (a model folder) */
  isModel?: boolean;
}
export interface ListDirRequest {
  /** absolute folder; null: the starting folder (browser mode: its root; desktop: home) */
  path: string | null;
}
export interface ListDirResponse {
  path: string;
  /** null at the top of what may be browsed */
  parent: string | null;
  entries: DirEntry[];
}

// ---------------------------------------------------------------- model and method

export interface InspectModelRequest {
  model: string;
  batchSize?: number;
  seqLen?: number;
  rank?: number;
  virtualTokens?: number;
  gradientCheckpointing?: boolean;
}

/** Why a method is (not) recommended, for the method cards. */
export interface MethodAdvice {
  method: TrainMethod;
  /** the memory row this method's cost comes from ('prefix_projection' is not a method of its own) */
  memory: MemoryRow;
  fits: boolean;
  /** what it costs and when to pick it, one sentence each */
  summary: string;
  whenToPick: string;
  /** a blocking reason (e.g. a 4-bit folder trains with qlora only); null when it can be chosen */
  unavailable: string | null;
  /** estimated training tokens/s at the overview's batch and sequence length on this CPU (inspect's time.tokens_per_second); null on a GPU */
  tokensPerSecond: number | null;
}

/** A run of the index as the app lists it: with its live id while this service trains it. */
export type RunListEntry = RunIndexEntry & { runId: string | null };

export interface ModelOverview {
  report: InspectReport;
  machine: MachineSummary;
  methods: MethodAdvice[];
  recommended: TrainMethod;
  /** why that one, in a sentence */
  recommendation: string;
}

// ---------------------------------------------------------------- data

export interface DataRequest {
  model: string;
  data: string;
  format?: DataFormat;
  seqLen?: number;
  completionOnly?: boolean;
  pack?: boolean;
  /** what the data is read for ('train' when absent): a folder split by name gives its train split, or for 'eval' its validation split (else test) */
  role?: 'train' | 'eval';
}
export interface PreviewRowRequest extends DataRequest {
  /** 1-based row number in the file */
  row: number;
}

// ---------------------------------------------------------------- hyperparameters and runs

/** One setting of a run, for the form: label, explanation, default, limits. */
export interface HyperparameterSpec {
  key: keyof RunSettings['hyper'];
  label: string;
  /** one line: what it does */
  help: string;
  kind: 'int' | 'number' | 'boolean' | 'choice' | 'list' | 'text';
  /** the default for this method and model */
  default: number | boolean | string | string[] | null;
  /** inclusive limits: the value may equal them */
  min?: number;
  max?: number;
  /** exclusive limits: the value must be more than `above` / less than `below` (LoRA alpha > 0, dropout < 1) */
  above?: number;
  below?: number;
  choices?: string[];
  /** 'basic' shows by default, 'advanced' behind a disclosure */
  group: 'basic' | 'advanced';
}

export interface HyperparametersRequest {
  model: string;
  method: TrainMethod;
}

/**
 * What the UI sends to start a run: the method and any settings the user
 * changed; the rest take the method's defaults (the same defaults as
 * `peft-studio train`).
 */
export interface RunSettings {
  model: string;
  data: string;
  /**
   * a separate evaluation file (`train --eval-data`), read as `data` is;
   * absent or null: none. Not together with hyper.evalSplit above 0.
   */
  evalData?: string | null;
  method: TrainMethod;
  /** the run folder; null: a new folder under the studio's runs folder */
  out?: string | null;
  dataFormat?: DataFormat;
  completionOnly?: boolean;
  pack?: boolean;
  hyper: {
    lr?: number;
    epochs?: number;
    steps?: number | null;
    batchSize?: number;
    gradAccum?: number;
    seqLen?: number;
    warmupSteps?: number;
    /**
     * warmup as a fraction of the run's optimizer steps (`train --warmup-ratio`, Hugging Face warmup_ratio):
     * ceil(ratio x steps); from 0 up to but not including 1; not with warmupSteps (invalid, field 'hyper.warmupRatio')
     */
    warmupRatio?: number | null;
    scheduler?: string;
    weightDecay?: number;
    clip?: number;
    seed?: number;
    threads?: number;
    evalSplit?: number;
    evalEvery?: number;
    saveEvery?: number;
    keepCheckpoints?: number;
    /** `train --keep-best`, `--early-stop N`, `--early-stop-delta X`: need an eval set and evalEvery above 0 */
    keepBest?: boolean;
    earlyStop?: number | null;
    earlyStopDelta?: number;
    gradientCheckpointing?: boolean;
    optimizer?: 'adamw' | 'sgd';
    /**
     * NEFTune (`train --neftune-alpha`, Hugging Face neftune_noise_alpha): noise on
     * the input embeddings while training, every method; 0 (default): off.
     * Negative or not finite: invalid, field 'hyper.neftuneAlpha'
     */
    neftuneAlpha?: number;
    // LoRA / QLoRA
    rank?: number;
    alpha?: number;
    dropout?: number;
    targets?: string[];
    rslora?: boolean;
    /**
     * DoRA (PEFT use_dora, `train --dora`): a trained magnitude per output of
     * every adapted linear; LoRA and QLoRA only (another method: invalid, field 'hyper.dora')
     */
    dora?: boolean;
    // QLoRA (and prompt / prefix on a 4-bit base)
    quantBlocksize?: number;
    doubleQuant?: boolean;
    // prompt / prefix tuning
    virtualTokens?: number;
    promptInitText?: string | null;
    prefixProjection?: boolean;
    /** where to train: 'auto' (default: the first NVIDIA GPU when there is one), 'cpu', 'cuda', 'cuda:N' */
    device?: string;
    /**
     * precision of the dense products: 'auto' (default: bf16 on an NVIDIA GPU
     * with bf16 tensor cores, else fp32), 'fp32', 'bf16' (refused on the CPU
     * and on a GPU without bf16 tensor cores)
     */
    precision?: string;
  };
  /** start even when the estimate exceeds the available memory */
  ignoreMemoryCheck?: boolean;
  /** start even when what the run writes (RunCheck.disk) exceeds its disk's free space */
  ignoreDiskCheck?: boolean;
}

export interface FieldError {
  /** a key of RunSettings or of RunSettings.hyper ('hyper.lr'), or 'model' / 'data' */
  field: string;
  message: string;
}

/** A setting the run accepts but that is almost surely a slip (electron/training/warnings.ts): said before Start, never blocking it. */
export interface RunWarning {
  /** the form's fields it is about (keys of RunSettings.hyper), first the one it starts with */
  fields: (keyof RunSettings['hyper'])[];
  /** in the form's words (the run's log says the same with the command line's flags) */
  message: string;
}

/** The verdict before anything starts. */
export interface RunCheck {
  ok: boolean;
  errors: FieldError[];
  /** settings that look like a slip, for the form as sent (empty while the settings or the model are refused before they can be judged) */
  warnings: RunWarning[];
  /** the complete configuration the run would use (null when a setting is invalid) */
  config: TrainConfig | null;
  memory: {
    weights: number;
    gradients: number;
    optimizerState: number;
    activations: number;
    /**
     * what the backend holds beyond the engine's tensors, named by backendLabel: on a CUDA
     * device its context, the cuBLASLt workspace and scratch; on the CPU its threads' scratch
     */
    backendBytes: number;
    /** "CUDA runtime and scratch" or "CPU threads' scratch" */
    backendLabel: string;
    /** on the CPU: the training process's own memory (Node, the tokenizer, the data rows; training/process-memory.ts); 0 on a GPU */
    processBytes: number;
    /**
     * on a GPU: the RAM the run needs beside the GPU's memory (the training process, the weights' load:
     * training/memory-check.ts GpuRunHostNeed) against the RAM available; null on the CPU (totalBytes is RAM there)
     */
    hostRam: { needBytes: number; availableBytes: number; fits: boolean } | null;
    totalBytes: number;
    availableBytes: number;
    fits: boolean;
    trainableParams: number;
    adapterBytes: number;
  } | null;
  /** the precision the run would compute in, and why ("bf16: NVIDIA H200 (compute capability 9.0) has bf16 tensor cores (auto)"); null when refused */
  precision: { precision: 'fp32' | 'bf16'; reason: string } | null;
  /**
   * how long the run would take, said before it starts (electron/training/time-estimate.ts): its steps, the real
   * tokens they go through, the seconds, its evaluations included (null on a GPU: known once the first steps run) and the sentence the
   * page shows ("about 41 min on this CPU (measured 190 GFLOP/s x 0.68 for LoRA; an estimate, ±30%)");
   * null when refused or when the data cannot be read
   */
  time: { steps: number; tokens: number; seconds: number | null; text: string } | null;
  /**
   * what the run writes to its folder's disk at the fullest moment (electron/runs/disk-need.ts: its checkpoints at
   * once, the result, best/, metrics) against what that disk has free (null: the system cannot tell; then it
   * fits); `parts` says what the need is made of, `shortfall` the refusal when it does not fit. Null when refused.
   */
  disk: {
    needBytes: number;
    freeBytes: number | null;
    fits: boolean;
    checkpointBytes: number;
    checkpointsAtOnce: number;
    parts: string;
    shortfall: string | null;
  } | null;
  /**
   * when the run does not fit: the settings that would (electron/training/fit-alternatives.ts), each with
   * its estimate, in the order worth trying (a smaller batch, a shorter sequence, gradient checkpointing,
   * a lighter method; a combination only when no single change fits). The page offers each as a button
   * that sets those fields. Empty when it fits, when nothing tried fits, and when the settings are refused.
   */
  alternatives: RunFitAlternative[];
  /** e.g. "Does not fit in RAM: needs about 2.1 GiB, 1.3 GiB available. These fit: batch size 2, gradient accumulation 4 (1.2 GiB); …" */
  verdict: string;
}

/** One setting that would make a run fit (RunCheck.alternatives). */
export interface RunFitAlternative {
  /** in the form's words: "batch size 2, gradient accumulation 4", "gradient checkpointing with QLoRA on a 4-bit base" */
  label: string;
  /** what else it changes, said beside its size: "an effective batch of 30716 instead of 30000" (null: nothing) */
  detail: string | null;
  /** the method it switches to (QLoRA for LoRA, LoRA for full fine-tuning); absent: the method stays */
  method?: TrainMethod;
  /** the fields it sets, by their RunSettings.hyper keys */
  hyper: Pick<RunSettings['hyper'], 'batchSize' | 'gradAccum' | 'seqLen' | 'gradientCheckpointing'>;
  /** its memory estimate (what the engine would allocate) */
  totalBytes: number;
}

export interface StartedRun {
  runId: string;
  runDir: string;
}

/**
 * Continue a run from its newest checkpoint, optionally somewhere else: the
 * same choices as `train --resume DIR --device .. --precision ..`. Absent:
 * what the run's run.json recorded. run.json then records where it really
 * continued (config.device / config.precision, resolved.device / .precision).
 */
export interface ResumeRequest {
  runDir: string;
  /** 'auto' | 'cpu' | 'cuda' | 'cuda:N' */
  device?: string;
  /** 'auto' | 'fp32' | 'bf16' (the CPU computes in fp32: a bf16 run moving to the CPU needs 'fp32' or 'auto') */
  precision?: string;
  /** true: recompute activations in backward from here on (less memory; a run that has it keeps it) */
  gradientCheckpointing?: boolean;
  /** true: resume even if the memory check says the run does not fit */
  ignoreMemoryCheck?: boolean;
  /** true: resume even if what the rest of the run writes exceeds its disk's free space */
  ignoreDiskCheck?: boolean;
}

export interface RunIdRequest {
  runId: string;
}

/** A run folder's history, for the Runs page and the charts of a past run. */
/** What a run's live events said last (RunHistory.live). */
export interface RunLiveFigures {
  memory: MemoryUsage | null;
  memoryEstimateBytes: number | null;
  availableMemoryBytes: number | null;
  elapsedSeconds: number | null;
  /** the log line of the run's time estimate, said before its first step ("this run: 600 steps, …") */
  timeLine: string | null;
}

export interface RunHistory {
  dir: string;
  entry: RunIndexEntry;
  config: TrainConfig;
  /**
   * elapsedSeconds: training time up to that step (metrics.jsonl elapsed_s; null in rows that lack it);
   * inputTokensPerSecond: every token the model read per second (input_tokens_per_s; null in rows that lack it)
   */
  steps: { step: number; loss: number; lr: number; gradNorm: number; tokensPerSecond: number; elapsedSeconds: number | null; inputTokensPerSecond?: number | null }[];
  /**
   * what the run's live events said last, as the Train page showed it (the
   * service keeps it for the folders its runs trained in; the record has the
   * estimate): the last step's memory, the started event's estimate and
   * available memory, the elapsed time (the finished summary's, else the last
   * step's). Absent or null: not known.
   */
  live?: RunLiveFigures;
  evals: { step: number; evalLoss: number }[];
  /** the trainable parameters its engine counted (run.json resolved.trainable_parameters); null before it started */
  trainableParams: number | null;
  /**
   * the settings its newest session judged to look like a slip (run.json,
   * resolved.warnings; the started event says the same live): `app` in the
   * app's words, `cli` the log's; empty for a run recorded before they were kept
   */
  warnings: SettingWarning[];
  /** how its training rows were laid out, as a prompt (chat rows: 'chat'); null when not known yet (format auto, not started) */
  trainedPromptFormat: PromptFormat | null;
  /** the live run's id when it is running in this process */
  runId: string | null;
}

// ---------------------------------------------------------------- export and try

export interface ExportRequest {
  /** run folder (LoRA, QLoRA or full fine-tuning; a full run exports as gguf-model only) or adapter folder */
  source: string;
  formats: ExportFormat[];
  out: string;
  /**
   * GGUF tensor type: the adapter (gguf) f32 or f16, the model (gguf-model)
   * also bf16 or q8_0. Absent: the command line's defaults (gguf f32,
   * gguf-model the model's own 16-bit type; an F32 model f16).
   */
  ggufType?: GgufModelType;
  /** gguf: also write the base model as base.gguf, with the Modelfile FROM it (export --gguf-base) */
  ggufBase?: boolean;
}

export interface GenerateRequest {
  model: string;
  /** adapter folder or run folder; null: the base model alone */
  adapter: string | null;
  prompt: string;
  /** how the prompt is laid out (electron/inference/prompt-format.ts); absent: 'plain' */
  promptFormat?: PromptFormat;
  /** a system message (chat and alpaca layouts) */
  system?: string;
  maxNewTokens: number;
  // Each sampling setting left out is the model's generation_config.json's,
  // else transformers' default (electron/inference/sampling-settings.ts), as
  // `peft-studio generate` takes them; the response says what was used.
  /** 0: greedy; absent: generation_config.json's temperature when its do_sample is true, else 0 */
  temperature?: number;
  /** when sampling, keep only the k most likely tokens; 0: off; absent: generation_config.json's top_k, else 50 */
  topK?: number;
  /** when sampling, then keep the most likely tokens until their probability reaches this; 1: off; absent: top_p, else 1 */
  topP?: number;
  /** when sampling, then drop the tokens less likely than this times the most likely one (transformers' min_p); 0: off; absent: min_p, else 0 */
  minP?: number;
  /** when sampling, then keep the most typical tokens until their probability reaches this (transformers' typical_p); 1: off; absent: typical_p, else 1 */
  typicalP?: number;
  /** when sampling, then drop the tokens less likely than this, but the most likely (transformers' epsilon_cutoff); 0: off; absent: epsilon_cutoff, else 0 */
  epsilonCutoff?: number;
  /** when sampling, then drop the tokens less likely than min(eta, sqrt(eta)·e^-entropy), but the most likely (transformers' eta_cutoff); 0: off; absent: eta_cutoff, else 0 */
  etaCutoff?: number;
  /** transformers' repetition_penalty (> 0), greedy or sampled; 1: off; absent: generation_config.json's, else 1 */
  repetitionPenalty?: number;
  /** transformers' no_repeat_ngram_size: no n tokens in a row twice in the prompt and answer, greedy or sampled; 0: off; absent: the file's, else 0 */
  noRepeatNgramSize?: number;
  seed: number;
  /**
   * the caller's name for this answer (letters, digits, - and _; up to 64):
   * the answer's text then comes as it is generated ('generateProgress'
   * events), and stopGenerate can end it early
   */
  requestId?: string;
}
export interface GenerateResponse {
  text: string;
  tokens: number;
  /** 'stopped': stopGenerate ended it (the text is what came until then) */
  stoppedBy: 'eos' | 'length' | 'stopped';
  seconds: number;
  /** e.g. "evaluated on the 4-bit base it was trained on" */
  notices: string[];
  /** where it was computed: engine device ('cpu', 'cuda:0'), its name ('CPU', 'NVIDIA H200') and the precision of the dense products */
  computedOn: { device: string; name: string; precision: 'fp32' | 'bf16' };
  /** what the model was given: the laid-out prompt, its token count, the layout in words */
  prompt: { text: string; tokens: number; layout: string };
  /** the settings that chose the tokens: the request's, else generation_config.json's, else transformers' defaults */
  sampling: SamplingSettings;
}

/** What a model generates with when no setting is given (the Try page's fields start from it), and where each value came from. */
export interface GenerationDefaults {
  /**
   * the file's settings, transformers' defaults for the rest: what `peft-studio generate` uses without flags, but for a
   * file value that cannot be used: here transformers' default (named in `problems`), where the CLI stops with the
   * file's error when it would use that value, until the setting is given as a flag
   */
  sampling: SamplingSettings;
  /** the model's generation_config.json, also when it cannot be read or parsed (`problems` says why); null: it has none */
  file: string | null;
  /** the settings the file gives; the others are transformers' defaults */
  fromFile: SamplingKey[];
  /** why the file, or a value in it, is not used, naming the file and key */
  problems: string[];
  /** settings the file holds that transformers applies and PEFT Studio does not (null: none) */
  unapplied: string | null;
}

// ---------------------------------------------------------------- the method table

/** Every call: request and response. The method name is the wire name. */
export interface ApiMethods {
  machine: { request: Record<string, never>; response: MachineSummary };
  demoPaths: { request: Record<string, never>; response: DemoPaths };
  recent: { request: Record<string, never>; response: RecentItems };
  /** the models in the Hugging Face cache (never downloads) */
  cachedModels: { request: Record<string, never>; response: CachedModels };
  pickPath: { request: PickPathRequest; response: PickPathResponse };
  listDir: { request: ListDirRequest; response: ListDirResponse };
  inspectModel: { request: InspectModelRequest; response: ModelOverview };
  inspectData: { request: DataRequest; response: DatasetReport };
  previewRow: { request: PreviewRowRequest; response: RowPreview };
  hyperparameters: { request: HyperparametersRequest; response: HyperparameterSpec[] };
  checkRun: { request: RunSettings; response: RunCheck };
  startRun: { request: RunSettings; response: StartedRun };
  /** continue an interrupted, cancelled or failed run from its newest checkpoint */
  resumeRun: { request: ResumeRequest; response: StartedRun };
  pauseRun: { request: RunIdRequest; response: Record<string, never> };
  continueRun: { request: RunIdRequest; response: Record<string, never> };
  cancelRun: { request: RunIdRequest; response: Record<string, never> };
  /** every run of the index; `runId` is the live id of one this service trains now (null otherwise) */
  listRuns: { request: Record<string, never>; response: RunListEntry[] };
  runHistory: { request: { runDir: string }; response: RunHistory };
  exportAdapter: { request: ExportRequest; response: ExportResult };
  generate: { request: GenerateRequest; response: GenerateResponse };
  /** the sampling settings a model generates with when none is given, read from its generation_config.json (loads no weights) */
  generationDefaults: { request: { model: string }; response: GenerationDefaults };
  /** ends a generate call early (its answer so far is its response); stopped: false when it had already ended */
  stopGenerate: { request: { requestId: string }; response: { stopped: boolean } };
}

export type ApiMethod = keyof ApiMethods;
export type ApiRequest<M extends ApiMethod> = ApiMethods[M]['request'];
export type ApiResponse<M extends ApiMethod> = ApiMethods[M]['response'];

/** The wire names, for validating what arrives (a transport refuses any other). */
export const API_METHODS: readonly ApiMethod[] = [
  'machine', 'demoPaths', 'recent', 'cachedModels', 'pickPath', 'listDir', 'inspectModel', 'inspectData', 'previewRow',
  'hyperparameters', 'checkRun', 'startRun', 'resumeRun', 'pauseRun', 'continueRun', 'cancelRun',
  'listRuns', 'runHistory', 'exportAdapter', 'generate', 'generationDefaults', 'stopGenerate',
] as const;

export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && (API_METHODS as readonly string[]).includes(name);
}

// ---------------------------------------------------------------- events

/** Pushed to every connected UI. */
export type ApiEvent =
  | { type: 'run'; runId: string; runDir: string; event: RunEvent }
  /** export progress lines */
  | { type: 'exportLog'; out: string; line: string }
  /** a generate call's answer as it comes (requests with a requestId): the new text, and the tokens so far */
  | { type: 'generateProgress'; requestId: string; text: string; tokens: number }
  /** Electron only: an app-menu command for the window (never broadcast by the service) */
  | { type: 'menu'; action: 'openModel' | 'openDataset' };

// ---------------------------------------------------------------- errors and the wire

/** A failed call, as the UI receives it. `field` names the offending request field when there is one. */
export interface ApiErrorBody {
  message: string;
  field?: string;
  /** 'invalid': the request was wrong (fix the input); 'failed': the operation failed; 'forbidden': a path outside what may be used */
  code: 'invalid' | 'failed' | 'forbidden';
}

export class ApiError extends Error {
  constructor(readonly body: ApiErrorBody) {
    super(body.message);
    this.name = 'ApiError';
  }
}

/** The transport-independent result of one call. */
export type ApiResult<M extends ApiMethod> = { ok: true; value: ApiResponse<M> } | { ok: false; error: ApiErrorBody };

/** WebSocket frames (browser mode); Electron IPC carries the same call / result pair. */
export type ClientFrame = { id: number; method: ApiMethod; request: unknown };
export type ServerFrame =
  | { id: number; result: ApiResult<ApiMethod> }
  | { event: ApiEvent };

/** The one interface the renderer talks to, whatever carries it. */
export interface ApiTransport {
  call<M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResponse<M>>;
  onEvent(listener: (event: ApiEvent) => void): () => void;
}

/**
 * The failure message of a generate call stopped before any of its text came:
 * still queued, or while its model loads (the load goes on; the next call
 * finds the model open). The try panel shows no error for it: Stop was asked.
 */
export const STOPPED_BEFORE_START = 'stopped before it started';

/** What the preload exposes on `window.peftStudio` (Electron only). */
export interface PreloadBridge {
  call(method: ApiMethod, request: unknown): Promise<ApiResult<ApiMethod>>;
  onEvent(listener: (event: ApiEvent) => void): () => void;
}

/** IPC channel names (Electron). */
export const IPC_CALL = 'peft-studio:call';
export const IPC_EVENT = 'peft-studio:event';

/** Browser mode: the WebSocket path and the query parameter / cookie carrying the token. */
export const WS_PATH = '/api';
export const TOKEN_PARAM = 'token';
/**
 * The token cookie's name is this prefix plus the first 12 hex digits of
 * sha256(token): cookies are per host, not per port, so two servers on one
 * host (two SSH tunnels) must not share one name and overwrite each other's.
 */
export const TOKEN_COOKIE_PREFIX = 'peft_studio_token_';
