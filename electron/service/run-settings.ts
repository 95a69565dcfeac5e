// The run form's RunSettings -> TrainSettings (the resolver's input), with
// every problem collected as a FieldError naming the form's field
// ('hyper.lr'), so the form can mark them all at once. Paths are checked
// against the path policy (a forbidden path is thrown, never collected).
//
// As on the command line, a switch sent as false counts as not given; steps
// (when not null) takes the place of epochs, as the form explains.
//
// resumeRun's request is read here too: its device and precision are checked
// by the same field readers as the form's hyper.device / hyper.precision.
import type { FieldError, RunSettings } from '../api/contract.js';
import { ApiError } from '../api/contract.js';
import { isCacheRepoFolder, resolveCachedDataset } from '../data/containers/hf-cache-dataset.js';
import { LORA_TARGETS } from '../adapters/peft-config.js';
import { DEVICE_REQUEST_HELP, isDeviceRequest } from '../engine/device.js';
import { isPrecision, PRECISION_REQUEST_HELP } from '../engine/precision.js';
import { DATA_FORMATS, TRAIN_METHODS } from '../training/config.js';
import { SCHEDULER_KINDS } from '../training/schedule.js';
import { APP_STEPS_LIMIT, SETTING_LIMITS, type LimitedField, type ResumeOverrides, type TrainSettings } from '../training/settings.js';
import type { PathPolicy } from './paths.js';
import { invalid } from './errors.js';
import { asObject, Fields } from './validate.js';

const NUMERIC_HYPER: readonly (LimitedField & keyof RunSettings['hyper'])[] = [
  'lr', 'epochs', 'batchSize', 'gradAccum', 'seqLen', 'warmupSteps', 'warmupRatio', 'weightDecay', 'clip', 'seed', 'threads', 'evalSplit', 'evalEvery',
  'saveEvery', 'keepCheckpoints', 'rank', 'alpha', 'dropout', 'quantBlocksize', 'virtualTokens', 'earlyStop', 'earlyStopDelta',
  'neftuneAlpha',
];
const BOOLEAN_HYPER = ['gradientCheckpointing', 'rslora', 'dora', 'doubleQuant', 'prefixProjection', 'keepBest'] as const;

export interface ParsedRunSettings {
  settings: TrainSettings;
  /** out as given (null: a new folder under the studio's runs folder) */
  out: string | null;
  errors: FieldError[];
}

export function parseRunSettings(request: unknown, policy: PathPolicy): ParsedRunSettings {
  const top = new Fields(asObject(request, 'request'));
  const errors: FieldError[] = [];
  const settings: Record<string, unknown> = {};
  /** Runs one read; an 'invalid' problem is collected, anything else (forbidden) thrown. */
  const read = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ApiError && e.body.code === 'invalid') {
        errors.push({ field: e.body.field ?? 'request', message: e.body.message });
        return undefined;
      }
      throw e;
    }
  };
  const path = (key: 'model' | 'data') => read(() => policy.check(top.string(key, true), key));
  settings.model = path('model');
  // a Hugging Face cache repo folder is recorded as the snapshot refs/main names now (as the CLI does: cli/data-arg.ts)
  const snapshotOf = (key: 'data' | 'evalData', p: string | undefined) => p === undefined ? undefined : read(() => {
    try {
      return isCacheRepoFolder(p) ? resolveCachedDataset(p)?.snapshot ?? p : p;
    } catch (e) {
      throw invalid(key, (e as Error).message);
    }
  });
  settings.data = snapshotOf('data', path('data'));
  settings.evalData = snapshotOf('evalData', read(() => policy.checkOptional(top.nullableString('evalData'), 'evalData')) ?? undefined);
  // the run writes its folder: the bundled demo is read-only
  const out = read(() => policy.checkOptional(top.nullableString('out'), 'out', 'write')) ?? null;
  settings.method = read(() => top.choice('method', TRAIN_METHODS, true));
  settings.dataFormat = read(() => top.choice('dataFormat', DATA_FORMATS));
  for (const key of ['completionOnly', 'pack', 'ignoreMemoryCheck', 'ignoreDiskCheck'] as const) settings[key] = read(() => top.boolean(key));
  const hyper = read(() => top.object('hyper')) ?? new Fields({}, 'hyper.');
  for (const key of NUMERIC_HYPER) settings[key] = read(() => hyper.number(key, SETTING_LIMITS[key]));
  for (const key of BOOLEAN_HYPER) settings[key] = read(() => hyper.boolean(key));
  const steps = read(() => hyper.number('steps', APP_STEPS_LIMIT));
  if (steps !== undefined) {
    settings.steps = steps;
    settings.epochs = undefined; // steps replaces epochs
  }
  settings.scheduler = read(() => hyper.choice('scheduler', SCHEDULER_KINDS));
  settings.optimizer = read(() => hyper.choice('optimizer', ['adamw', 'sgd'] as const));
  settings.targets = read(() => hyper.stringList('targets', [...LORA_TARGETS, 'all-linear']));
  // which GPUs exist, and whether the device has bf16, are checkRun's questions
  settings.device = read(() => deviceField(hyper));
  settings.precision = read(() => precisionField(hyper));
  const text = read(() => hyper.nullableString('promptInitText'));
  if (text) settings.promptInitText = text;
  for (const key of Object.keys(settings)) if (settings[key] === undefined) delete settings[key];
  const known = new Set<string>(['model', 'data', 'evalData', 'out', 'method', 'dataFormat', 'completionOnly', 'pack', 'ignoreMemoryCheck', 'ignoreDiskCheck', 'hyper']);
  for (const key of Object.keys(top.obj)) if (!known.has(key)) errors.push({ field: key, message: `${key} is not a run setting` });
  const knownHyper = new Set<string>([...NUMERIC_HYPER, ...BOOLEAN_HYPER, 'steps', 'scheduler', 'optimizer', 'targets', 'promptInitText', 'device', 'precision']);
  for (const key of Object.keys(hyper.obj)) if (!knownHyper.has(key)) errors.push({ field: `hyper.${key}`, message: `hyper.${key} is not a run setting` });
  return { settings: settings as TrainSettings, out, errors };
}

/** 'auto' | 'cpu' | 'cuda' | 'cuda:N' in `fields.device` (undefined when absent); anything else is invalid, naming the field. */
function deviceField(fields: Fields): string | undefined {
  const device = fields.string('device');
  if (device !== undefined && !isDeviceRequest(device)) throw fields.error('device', `${fields.name('device')}: unknown device '${device}'; use ${DEVICE_REQUEST_HELP}`);
  return device;
}

/** 'auto' | 'fp32' | 'bf16' in `fields.precision` (undefined when absent); anything else is invalid, naming the field. */
function precisionField(fields: Fields): string | undefined {
  const precision = fields.string('precision');
  if (precision !== undefined && !isPrecision(precision)) throw fields.error('precision', `${fields.name('precision')}: unknown precision '${precision}'; use ${PRECISION_REQUEST_HELP}`);
  return precision;
}

export interface ParsedResume {
  /** the run folder, checked for writing */
  runDir: string;
  /** where the resumed run computes; a field left out keeps what run.json recorded (as `train --resume` without the flag) */
  overrides: Pick<ResumeOverrides, 'device' | 'precision' | 'gradientCheckpointing' | 'ignoreMemoryCheck' | 'ignoreDiskCheck'>;
}

/** resumeRun's request (ResumeRequest): the run folder, and the device and precision to continue on, each checked like the form's. */
export function parseResumeRequest(request: unknown, policy: PathPolicy): ParsedResume {
  const f = Fields.of(request);
  const known = new Set(['runDir', 'device', 'precision', 'gradientCheckpointing', 'ignoreMemoryCheck', 'ignoreDiskCheck']);
  const other = Object.keys(f.obj).find((key) => !known.has(key));
  // the app changes only where a run continues and how it fits; the rest are the run's own settings (run.json)
  if (other !== undefined) {
    throw f.error(other, `${other} is not a resume setting: a run resumes with the settings in its run.json; only device, precision, gradientCheckpointing, ignoreMemoryCheck and ignoreDiskCheck may change`);
  }
  const runDir = policy.check(f.string('runDir', true), 'runDir', 'write');
  const overrides: ParsedResume['overrides'] = {};
  const device = deviceField(f);
  if (device !== undefined) overrides.device = device;
  const precision = precisionField(f);
  if (precision !== undefined) overrides.precision = precision;
  // only turning on counts (resumedConfig keeps what run.json has on)
  if (f.boolean('gradientCheckpointing')) overrides.gradientCheckpointing = true;
  if (f.boolean('ignoreMemoryCheck')) overrides.ignoreMemoryCheck = true;
  if (f.boolean('ignoreDiskCheck')) overrides.ignoreDiskCheck = true;
  return { runDir, overrides };
}
