// THE service behind the API (electron/api/contract.ts): one table from each
// method name to its handler, which checks the request (validate.ts, the
// path policy) and calls the project's own code. Both transports (Electron
// IPC in electron/app, the WebSocket of `peft-studio serve`) only carry
// frames to call() and broadcast onEvent(); nothing here knows about them.
// call() never throws: every failure becomes {ok: false, error}.
import type { ApiEvent, ApiMethod, ApiMethods, ApiResult, PickPathRequest } from '../api/contract.js';
import { isApiMethod } from '../api/contract.js';
import { DATASET_FORMATS, DATASET_ROLES } from '../data/index.js';
import { whyUnusable } from '../engine/device.js';
import { loadAddon } from '../engine/load.js';
import { EXPORT_FORMATS } from '../export/export.js';
import { GGUF_MODEL_TYPES } from '../export/gguf-model.js';
import { openModelFolder } from '../models/folder.js';
import { electronForkSettings, type ForkSettings } from '../runs/manager.js';
import { listRuns } from '../runs/run-index.js';
import { TRAIN_METHODS } from '../training/config.js';
import { SETTING_LIMITS } from '../training/settings.js';
import { inspectData, previewDataRow } from './data.js';
import { demoPaths } from './demo.js';
import { cachedModels } from './cached-models.js';
import { inAppEntry } from './app-wording.js';
import { errorBody, invalid } from './errors.js';
import { exportWithLog } from './export.js';
import { Generator, REQUEST_ID } from './generate.js';
import { generationDefaults } from '../inference/generation-defaults.js';
import { PLAIN_TAKES_NO_SYSTEM, PROMPT_FORMATS } from '../inference/prompt-format.js';
import { SAMPLING_LIMITS, type SamplingKey } from '../inference/sampling-settings.js';
import { hyperparameterSpecs } from './hyperparameters.js';
import { listDir } from './list-dir.js';
import { machineSummary } from './machine.js';
import { modelOverview } from './model.js';
import { PathPolicy, type Access } from './paths.js';
import { readRecent, rememberRecent } from './recent.js';
import { runHistory } from './run-history.js';
import { RunService } from './runs.js';
import { Fields } from './validate.js';

export interface StudioServiceOptions {
  mode: 'electron' | 'browser';
  /** browser mode: folders the client may read/write (realpath-checked); null = anywhere the OS user can (desktop) */
  allowedRoots: string[] | null;
  /** Electron supplies native dialogs; browser mode leaves it undefined (pickPath then answers {path: null, dialog: false}) */
  pickPath?: (req: PickPathRequest) => Promise<string | null>;
  /** how training children are started (default: electronForkSettings() in 'electron' mode, plain Node otherwise) */
  fork?: ForkSettings;
  /** the try page's model cache (default: a new Generator; tests pass their own to watch it) */
  generator?: Generator;
}

export interface StudioService {
  call(method: string, request: unknown): Promise<ApiResult<ApiMethod>>;
  onEvent(listener: (e: ApiEvent) => void): () => void;
  /** cancels live runs (each stops with a checkpoint) and waits; frees open models */
  close(): Promise<void>;
}

type Handlers = { [M in ApiMethod]: (request: unknown) => Promise<ApiMethods[M]['response']> };

const ANY_INT = { kind: 'int', min: 0 } as const;

export function createStudioService(options: StudioServiceOptions): StudioService {
  const listeners = new Set<(e: ApiEvent) => void>();
  const emit = (e: ApiEvent) => {
    for (const l of [...listeners]) {
      try {
        l(e);
      } catch {
        // a broken listener (a closed socket) must not stop the others or the run
      }
    }
  };
  const policy = new PathPolicy(options.allowedRoots);
  const fork = options.fork ?? (options.mode === 'electron' ? electronForkSettings() : undefined);
  // the generation child starts like a run's (its own worker file, not the run worker's)
  // a run needs the memory the try page's open models hold: free them first; while it may hold
  // the GPU, the try page generates on the CPU
  const runs: RunService = new RunService(emit, policy, fork, () => generator.release());
  const gpuHere = () => loadAddon().devices().some((d) => whyUnusable(d) === null);
  const generator = options.generator ?? new Generator({ fork: fork && { ...fork, workerPath: undefined }, gpuBusy: () => runs.mayHoldGpu() && gpuHere() });
  const path = (f: Fields, key: string, access: Access = 'read') => policy.check(f.string(key, true), f.name(key), access);
  const optionalInt = (f: Fields, key: keyof typeof SETTING_LIMITS) => f.number(key, SETTING_LIMITS[key]);

  const handlers: Handlers = {
    machine: async () => machineSummary(options.mode),
    demoPaths: async () => demoPaths(),
    recent: async () => {
      // browser mode: only what may still be opened
      const items = await readRecent();
      return { models: items.models.filter((p) => policy.permits(p)), datasets: items.datasets.filter((p) => policy.permits(p)) };
    },
    cachedModels: async (request) => {
      Fields.of(request); // takes nothing; anything but an object is refused
      return cachedModels(policy);
    },
    pickPath: async (request) => {
      const f = Fields.of(request);
      const req: PickPathRequest = {
        kind: f.choice('kind', ['folder', 'file'] as const, true),
        title: f.string('title') ?? '',
        extensions: f.stringList('extensions'),
        defaultPath: policy.checkOptional(f.nullableString('defaultPath'), 'defaultPath'),
      };
      if (!options.pickPath) return { path: null, dialog: false };
      const picked = await options.pickPath(req);
      return { path: picked === null ? null : policy.check(picked, 'path'), dialog: true };
    },
    listDir: async (request) => {
      const f = Fields.of(request);
      return listDir(f.nullableString('path'), policy);
    },
    inspectModel: async (request) => {
      const f = Fields.of(request);
      const model = path(f, 'model');
      const overview = await modelOverview({
        model,
        batchSize: optionalInt(f, 'batchSize'),
        seqLen: optionalInt(f, 'seqLen'),
        rank: optionalInt(f, 'rank'),
        virtualTokens: optionalInt(f, 'virtualTokens'),
        gradientCheckpointing: f.boolean('gradientCheckpointing'),
      }, machineSummary(options.mode));
      await rememberRecent('models', model);
      return overview;
    },
    inspectData: async (request) => {
      const f = Fields.of(request);
      const req = dataRequest(f);
      const report = await inspectData(req);
      await rememberRecent('datasets', req.data);
      return report;
    },
    previewRow: async (request) => {
      const f = Fields.of(request);
      return previewDataRow({ ...dataRequest(f), row: f.number('row', { kind: 'int', min: 1 }, true) });
    },
    hyperparameters: async (request) => {
      const f = Fields.of(request);
      const model = path(f, 'model');
      const method = f.choice('method', TRAIN_METHODS, true);
      return hyperparameterSpecs(method, (await openModelFolder(model)).spec);
    },
    checkRun: async (request) => runs.check(request),
    startRun: async (request) => runs.start(request),
    resumeRun: async (request) => runs.resume(request),
    pauseRun: async (request) => (runs.pause(Fields.of(request).string('runId', true)), {}),
    continueRun: async (request) => (runs.continue(Fields.of(request).string('runId', true)), {}),
    cancelRun: async (request) => (runs.cancel(Fields.of(request).string('runId', true)), {}),
    listRuns: async () => (await listRuns()).filter((r) => policy.permits(r.dir)).map((r) => ({ ...inAppEntry(r), runId: runs.runIdOf(r.dir) })),
    runHistory: async (request) => {
      const dir = path(Fields.of(request), 'runDir');
      const history = await runHistory(dir, runs.runIdOf(dir));
      const live = runs.liveFigures(dir);
      return { ...history, entry: inAppEntry(history.entry), ...(live ? { live } : {}) };
    },
    exportAdapter: async (request) => {
      const f = Fields.of(request);
      const formats = f.stringList('formats', EXPORT_FORMATS) as (typeof EXPORT_FORMATS)[number][] | undefined;
      if (!formats || formats.length === 0) throw invalid('formats', `formats must list at least one of ${EXPORT_FORMATS.join(', ')}`);
      const ggufType = f.choice('ggufType', GGUF_MODEL_TYPES);
      const ggufBase = f.boolean('ggufBase');
      return exportWithLog({ source: path(f, 'source'), formats, out: path(f, 'out', 'write'), ...(ggufType ? { ggufType } : {}), ...(ggufBase ? { ggufBase } : {}) }, policy, emit);
    },
    generate: async (request) => {
      const f = Fields.of(request);
      const model = path(f, 'model');
      const adapter = policy.checkOptional(f.nullableString('adapter'), 'adapter');
      if (typeof f.obj.prompt !== 'string') throw invalid('prompt', 'prompt must be a string');
      if (f.obj.system !== undefined && typeof f.obj.system !== 'string') throw invalid('system', 'system must be a string');
      const promptFormat = f.choice('promptFormat', PROMPT_FORMATS) ?? 'plain';
      const system = (f.obj.system as string | undefined) ?? '';
      // before any model is loaded
      if (promptFormat === 'plain' && system.trim() !== '') throw invalid('system', PLAIN_TAKES_NO_SYSTEM);
      const requestId = requestIdOf(f, false);
      return generator.generate({
        model,
        adapter,
        prompt: f.obj.prompt,
        promptFormat,
        system,
        maxNewTokens: f.number('maxNewTokens', { kind: 'int', min: 1 }, true),
        // each sampling setting left out: the model's generation_config.json's, else transformers' default
        ...samplingRequestOf(f),
        seed: f.number('seed', ANY_INT, true),
        ...(requestId !== undefined ? { requestId } : {}),
      }, requestId === undefined ? undefined : (text, tokens) => emit({ type: 'generateProgress', requestId, text, tokens }));
    },
    // the Try page's fields start from these (reads generation_config.json only)
    generationDefaults: async (request) => generationDefaults(path(Fields.of(request), 'model')),
    stopGenerate: async (request) => ({ stopped: generator.stop(requestIdOf(Fields.of(request), true)!) }),
  };

  /** The sampling settings a generate call gives, each checked against its limits (absent ones left out). */
  function samplingRequestOf(f: Fields): Partial<Record<SamplingKey, number>> {
    const given: Partial<Record<SamplingKey, number>> = {};
    for (const key of Object.keys(SAMPLING_LIMITS) as SamplingKey[]) {
      const v = f.number(key, SAMPLING_LIMITS[key]);
      if (v !== undefined) given[key] = v;
    }
    return given;
  }

  /** A generate call's requestId (generate.ts REQUEST_ID), checked. */
  function requestIdOf(f: Fields, required: boolean): string | undefined {
    const id = f.obj.requestId;
    if (id === undefined && !required) return undefined;
    if (typeof id !== 'string' || !REQUEST_ID.test(id)) throw invalid('requestId', 'requestId must be 1 to 64 letters, digits, - or _');
    return id;
  }

  function dataRequest(f: Fields) {
    return {
      model: path(f, 'model'),
      data: path(f, 'data'),
      format: f.choice('format', DATASET_FORMATS),
      seqLen: f.number('seqLen', SETTING_LIMITS.seqLen),
      completionOnly: f.boolean('completionOnly'),
      pack: f.boolean('pack'),
      role: f.choice('role', DATASET_ROLES),
    };
  }

  return {
    async call(method, request) {
      if (!isApiMethod(method)) return { ok: false, error: { code: 'invalid', field: 'method', message: `unknown API method '${String(method)}'` } };
      try {
        const value = await handlers[method](request);
        return { ok: true, value } as ApiResult<ApiMethod>;
      } catch (e) {
        return { ok: false, error: errorBody(e) };
      }
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async close() {
      // both refuse new work from here on, before either waits
      await Promise.all([runs.close(), generator.close()]);
    },
  };
}
