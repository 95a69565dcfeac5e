// checkRun: the verdict before anything starts. The settings resolve through
// the same resolver as `train` (trainConfigFromSettings), then the checks the
// run itself makes before it writes anything: the model opens, the settings
// fit it (checkAgainstModel: sequence length, layers), the 4-bit base, and
// the device (a GPU asked for must be there), and the memory estimate (the
// engine's own formula) against what is free now: on the GPU the run would
// use, else in RAM; a run that does not fit comes with the settings that
// would (training/fit-alternatives.ts), for the page to offer as buttons.
// With the verdict come the warnings the run would log (settings it accepts
// but that look like a slip), in the form's words.
import type { FieldError, RunCheck, RunFitAlternative, RunWarning } from '../api/contract.js';
import { loadAddon } from '../engine/load.js';
import { fullModelFileBytes } from '../export/model-folder.js';
import { openModelFolder, type ModelFolder } from '../models/folder.js';
import { effectiveQuantization } from '../session.js';
import { resolveDevice, type ResolvedDevice } from '../engine/device.js';
import { choosePrecision, type ResolvedPrecision } from '../engine/precision.js';
import { adapterFileBytes } from '../training/adapter-files.js';
import { adapterLayoutOf, type TrainConfig } from '../training/config.js';
import { boundByData, dataShape, deviceBytesLabel, estimateRun, memoryBudget, rowsCutInWords, type MemoryBudget, type MemoryRemedy } from '../training/memory-check.js';
import { availableMemoryBytes } from '../system/machine.js';
import { rowsBytes } from '../training/rows-bytes.js';
import { fittingAlternatives, type FitAlternative, type FitAlternatives } from '../training/fit-alternatives.js';
import { checkOutFolder } from '../runs/out-folder.js';
import { readRunRecord } from '../runs/run-record.js';
import { checkAgainstModel, runVirtualTokens } from '../training/run.js';
import { defaultSeqLenFor, SettingsError, trainConfigFromSettings } from '../training/settings.js';
import { totalSteps } from '../training/trainer.js';
import { withRunWarmup } from '../training/warmup.js';
import { settingWarnings } from '../training/warnings.js';
import { runSettingsField } from './errors.js';
import { bytesInWords, unavailableReason } from './recommend.js';
import type { ParsedRunSettings } from './run-settings.js';
import { appSettingName, inAppWords, settingRefusalInAppWords } from './app-wording.js';
import { plannedSteps } from './planned-steps.js';
import { runRowShapes, runTimeCheck } from './run-time.js';
import { readRunData } from './run-data-check.js';
import { datasetPathExists } from '../data/containers/dataset-folder.js';
import { checkRunDisk, diskNeedParts, diskShortfall, runDiskInput, type DiskWords } from '../runs/disk-need.js';
import { formLabel as settingLabel } from './form-labels.js';

export interface CheckedRun {
  check: RunCheck;
  config: TrainConfig | null;
}

/** The disk check's ways out in the form's words (runs/disk-need.ts). */
const APP_DISK_WORDS: DiskWords = {
  keepOne: `${settingLabel('keepCheckpoints')} 1`,
  // the app keeps its runs in the studio home (it has no output folder field)
  otherDisk: 'start the app with PEFT_STUDIO_HOME on a disk with room (where it keeps its runs)',
  anyway: '; or start anyway',
};

/** A run that cannot start: its refusals in the form's words (app-wording.ts), the verdict made of them. */
const refused = (found: FieldError[], warnings: RunWarning[] = []): CheckedRun => {
  const errors = found.map(settingRefusalInAppWords);
  return {
    check: { ok: false, errors, warnings, config: null, memory: null, precision: null, time: null, disk: null, alternatives: [], verdict: `Cannot start: ${errors.map((e) => e.message).join('; ')}` },
    config: null,
  };
};

/**
 * The run's warnings for these settings on this model, in the form's words:
 * the same producer as the "warning:" lines of the run's log, with the
 * run's step count as the run would have it.
 */
async function formWarnings(config: TrainConfig, folder: ModelFolder): Promise<RunWarning[]> {
  // only the warmup warning needs the step count; counting epochs reads the data, so it is asked for only then
  const steps = config.warmupSteps > 0 || config.warmupRatio !== null ? await plannedSteps(config, folder) : null;
  return settingWarnings(config, folder.spec, steps).map((w) => ({ fields: w.fields, message: w.app }));
}

/** A model check's message and the field it is about; refused() words its flags as the form's labels ("lower Batch size"). */
function modelCheckError(message: string): FieldError {
  const field = /^--batch-size/.test(message) ? 'hyper.batchSize' : /--seq-len/.test(message) ? 'hyper.seqLen' : /--layers/.test(message) ? 'hyper.layers' : /--pack/.test(message) ? 'pack' : 'method';
  return { field, message };
}

/** The changes the fit search tries, in the form's words (the verdict names them when none helps). */
const FORM_REMEDY: Record<MemoryRemedy, string> = {
  'smaller-batch': 'a smaller batch size',
  'shorter-sequence': 'a shorter sequence length',
  'gradient-checkpointing': 'gradient checkpointing',
  lora: 'LoRA',
  qlora: 'QLoRA on a 4-bit base',
};

/**
 * An alternative in the form's words: "batch size 2, gradient accumulation 4";
 * a combination: "gradient checkpointing with batch size 2, gradient accumulation 4",
 * "batch size 1, gradient accumulation 16 with gradient checkpointing and QLoRA on a 4-bit base".
 */
export function formLabel(a: FitAlternative): string {
  const [first, ...rest] = a.changes.map((change) => {
    if (change === 'smaller-batch') return `batch size ${a.form.batchSize}, gradient accumulation ${a.form.gradAccum}`;
    if (change === 'shorter-sequence') return `sequence length ${a.form.seqLen}`;
    return FORM_REMEDY[change];
  });
  return rest.length === 0 ? first : `${first} with ${rest.join(' and ')}`;
}

/** What else an alternative changes: the effective batch, when the smaller batch does not divide it (null: nothing). */
function formDetail(a: FitAlternative): string | null {
  const batch = a.effectiveBatch;
  const cut = rowsCutInWords(a.longerRows, '');
  const parts = [
    ...(batch && batch.after !== batch.before ? [`an effective batch of ${batch.after} instead of ${batch.before}`] : []),
    ...(cut ? [cut] : []),
  ];
  return parts.length > 0 ? parts.join('; ') : null;
}

/** An alternative as RunCheck carries it: the form's values, for the page's buttons. */
export function formAlternative(a: FitAlternative): RunFitAlternative {
  const { method, batchSize, gradAccum, seqLen, gradientCheckpointing } = a.form;
  return {
    label: formLabel(a),
    detail: formDetail(a),
    ...(method ? { method } : {}),
    hyper: {
      ...(batchSize !== undefined ? { batchSize, gradAccum } : {}),
      ...(seqLen !== undefined ? { seqLen } : {}),
      ...(gradientCheckpointing ? { gradientCheckpointing } : {}),
    },
    totalBytes: a.totalBytes,
  };
}

/** What the verdict of a run that does not fit says to change: the settings that fit, or that nothing tried does. */
export function fitAdvice(fit: FitAlternatives, budget: Pick<MemoryBudget, 'gpu'>): string {
  const { alternatives, leanest } = fit;
  if (alternatives.length > 0) {
    const lead = alternatives[0].changes.length > 1 ? 'No single change fits; together these do' : alternatives.length === 1 ? 'This fits' : 'These fit';
    const words = (a: FitAlternative) => {
      const detail = formDetail(a);
      return `${formLabel(a)} (${bytesInWords(a.totalBytes)}${detail ? `; ${detail}` : ''})`;
    };
    return `${lead}: ${alternatives.map(words).join('; ')}.`;
  }
  const tried = fit.tried.map((r) => FORM_REMEDY[r]);
  const none = leanest === null
    ? `Nothing the form can change makes it fit${tried.length > 0 ? ` (tried: ${tried.join(', ')})` : ''}`
    : `Nothing the form can change makes it fit (tried: ${tried.join(', ')}${tried.length > 1 ? ', alone and together' : ''}): even ${formLabel(leanest)} needs about ${bytesInWords(leanest.totalBytes)}`;
  return `${none}${budget.gpu ? '; choose the CPU as the Device (advanced settings)' : ''}.`;
}

/** The run folder: not the model's, not a folder of other files, not a finished run (the run itself refuses them too, but only once started). */
async function outFolderErrors(config: TrainConfig): Promise<FieldError[]> {
  try {
    await checkOutFolder(config.out, config.model, { data: config.data, evalData: config.evalData, initAdapter: config.initAdapter });
    const record = await readRunRecord(config.out);
    if (record?.status === 'finished') return [{ field: 'out', message: `${config.out}: holds a finished run; choose a new folder for this run` }];
    if (record) return [{ field: 'out', message: `${config.out}: holds an unfinished run; resume it from the Runs page, or choose a new folder` }];
    return [];
  } catch (e) {
    return [{ field: 'out', message: (e as Error).message.replace(/^--out /, '') }];
  }
}

export async function checkRunSettings(parsed: ParsedRunSettings, out: string): Promise<CheckedRun> {
  if (parsed.errors.length > 0) return refused(parsed.errors);
  let config: TrainConfig;
  try {
    // its refusals name the settings by the form's labels
    config = trainConfigFromSettings({ ...parsed.settings, out }, appSettingName);
  } catch (e) {
    if (e instanceof SettingsError) return refused([{ field: runSettingsField(e.field), message: e.message }]);
    throw e;
  }
  const errors: FieldError[] = [];
  let folder: ModelFolder | null = null;
  try {
    folder = await openModelFolder(config.model);
  } catch (e) {
    errors.push({ field: 'model', message: (e as Error).message });
  }
  // a folder (or a pattern of files) is a dataset too: data/containers/dataset-folder.ts
  if (!datasetPathExists(config.data)) errors.push({ field: 'data', message: `${config.data}: the dataset file does not exist` });
  if (config.evalData !== null && !datasetPathExists(config.evalData)) {
    errors.push({ field: 'evalData', message: `${config.evalData}: the evaluation file does not exist` });
  }
  if (!folder) return refused(errors);

  if (parsed.settings.seqLen === undefined) config.seqLen = defaultSeqLenFor(folder.spec, runVirtualTokens(config));
  const unavailable = unavailableReason(config.method, folder);
  if (unavailable) errors.push({ field: 'method', message: `${config.method}: ${unavailable}` });
  try {
    effectiveQuantization(folder, config.quantization);
  } catch (e) {
    errors.push({ field: 'hyper.quantBlocksize', message: (e as Error).message });
  }
  try {
    checkAgainstModel(config, folder, config.lora);
  } catch (e) {
    errors.push(modelCheckError((e as Error).message));
  }
  // the data as the run reads it (once the settings fit the model): a run that cannot use it is refused now, as `train` refuses it
  const data = errors.length === 0 ? await readRunData(config, folder) : null;
  if (data?.error) errors.push(data.error);
  // judged once the settings fit the model and the data is there (out, device and precision do not change them)
  const warnings = errors.length === 0 ? await formWarnings(config, folder) : [];
  errors.push(...(await outFolderErrors(config)));
  const addon = loadAddon();
  let device: ResolvedDevice | null = null;
  let precision: ResolvedPrecision | null = null;
  try {
    device = resolveDevice(addon, config.device);
  } catch (e) {
    errors.push({ field: 'hyper.device', message: inAppWords((e as Error).message, 'start') });
  }
  if (device !== null) {
    try {
      precision = choosePrecision(config.precision, device.gpu, 'precision');
    } catch (e) {
      errors.push({ field: 'hyper.precision', message: inAppWords((e as Error).message, 'start') });
    }
  }
  if (errors.length > 0 || device === null || precision === null) return refused(errors, warnings);

  // read above: no error is collected without it
  const rows = data!.rows!;
  // sized as the data lets the batches grow (no more rows than it has, padded to its longest row)
  const sized = boundByData(config, dataShape(rows.train, rows.eval));
  // the rows the training process will hold, as the run counts them
  const held = rowsBytes([...rows.train, ...rows.eval]);
  const estimate = estimateRun(addon, folder, sized, config.lora, { device: device.device, precision: precision.precision }, held);
  const budget = memoryBudget(device);
  const available = budget.availableBytes;
  const fits = estimate.totalBytes <= available;
  // on a GPU, the RAM the run needs beside it (the training process, the weights' load)
  const hostRam = estimate.host === null ? null : (() => {
    const availableBytes = availableMemoryBytes();
    return { needBytes: estimate.host.totalBytes, availableBytes, fits: estimate.host.totalBytes <= availableBytes };
  })();
  // what would fit, by the same estimate (nothing to search for a run that fits)
  // (with the data's row lengths, so a shorter sequence says how many rows it would cut)
  const shapes = fits ? null : runRowShapes(config, rows);
  const fit = fits ? null : fittingAlternatives(addon, folder, sized, config.lora, { device: device.device, precision: precision.precision }, budget,
    { ...(shapes ? { rows: shapes } : {}), rowsBytes: held });
  const layout = adapterLayoutOf(config);
  const memory = {
    weights: estimate.weightBytes,
    gradients: estimate.gradientBytes,
    optimizerState: estimate.optimizerBytes,
    activations: estimate.activationBytes,
    backendBytes: estimate.deviceBytes,
    processBytes: estimate.processBytes,
    hostRam,
    backendLabel: deviceBytesLabel(device.gpu !== null),
    totalBytes: estimate.totalBytes,
    availableBytes: available,
    fits,
    trainableParams: estimate.trainableParams,
    adapterBytes: layout === null ? fullModelFileBytes(folder.spec) : adapterFileBytes(folder.spec, layout),
  };
  // "Fits on NVIDIA H200: ..." / "Fits in RAM: ..."
  const deviceVerdict = fits
    ? `Fits ${budget.where}: needs about ${bytesInWords(estimate.totalBytes)}, ${bytesInWords(available)} available.`
    : `Does not fit ${budget.where}: needs about ${bytesInWords(estimate.totalBytes)}, ${bytesInWords(available)} available${config.ignoreMemoryCheck ? ' (starting anyway, as asked)' : ''}. ${fitAdvice(fit!, budget)}`;
  // a GPU run's RAM: said only when it is short (the process and the load are small beside most machines' RAM)
  const verdict = hostRam === null || hostRam.fits ? deviceVerdict
    : `${deviceVerdict} But the RAM beside the GPU is short: the run needs about ${bytesInWords(hostRam.needBytes)} of RAM (the training process: Node, the tokenizer, the data rows; and loading the weights), ` +
      `${bytesInWords(hostRam.availableBytes)} available${config.ignoreMemoryCheck ? ' (starting anyway, as asked)' : ''}. Free RAM (close programs that hold it) or use fewer data rows.`;
  // how long, beside how much: LoRA on a 4-bit base is QLoRA, as the run records it
  const method = config.method === 'lora' && effectiveQuantization(folder, config.quantization) !== null ? 'qlora' : config.method;
  const time = runTimeCheck(addon, { ...config, method }, folder, device.gpu !== null, rows);
  // the configuration the run would use: a warmup fraction comes to its steps over the run's steps, counted
  // over these rows as the run counts them (runs/execute.ts), whether or not the time estimate could be made
  const steps = totalSteps(rows.train.length, { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum });
  // what it writes to the output folder's disk (runs/disk-need.ts), as the run itself checks it before its first step
  const diskInput = runDiskInput(config, folder, steps, null);
  const diskCheck = await checkRunDisk(out, diskInput.input);
  const shortfall = diskShortfall(out, diskCheck, diskInput.input, diskInput.result, APP_DISK_WORDS);
  const disk = {
    needBytes: diskCheck.need.bytes, freeBytes: diskCheck.freeBytes, fits: diskCheck.fits, checkpointBytes: diskCheck.need.checkpointBytes,
    checkpointsAtOnce: diskCheck.need.checkpointsAtOnce, parts: diskNeedParts(diskCheck.need, diskInput.result), shortfall,
  };
  const fullVerdict = shortfall === null ? verdict : `${verdict} Does not fit on the disk: ${shortfall}${config.ignoreDiskCheck ? ' (starting anyway, as asked)' : ''}`;
  const answer: RunCheck = { ok: fits && (hostRam === null || hostRam.fits) && disk.fits, errors: [], warnings, config: withRunWarmup(config, steps), memory, precision, time, disk, alternatives: (fit?.alternatives ?? []).map(formAlternative), verdict: fullVerdict };
  return { check: answer, config };
}
