// One run, start to end, in the process that trains (the child the manager
// forks, or the caller itself through runTraining): claim the run folder,
// read model and data, set up or restore the engine, train with checkpoints,
// and end with exactly one end event (finished, cancelled or failed), with
// run.json and the run index saying the same. Errors never escape: they
// become a 'failed' event with a message that says what to do.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveDevice, type ResolvedDevice } from '../engine/device.js';
import { choosePrecision, type ResolvedPrecision } from '../engine/precision.js';
import { loadAddon } from '../engine/load.js';
import type { NativeEngine } from '../engine/native.js';
import { describeNonFiniteTensors, formatLearningRate } from '../engine/non-finite.js';
import { saveFullModel } from '../export/model-folder.js';
import { asFileWriteError, FileWriteError, withSpaceNeeded } from '../files/atomic.js';
import { bytesToFree, bytesUnder } from '../files/disk-space.js';
import { bytesInWords } from '../text/bytes.js';
import { createEngine, effectiveQuantization, openModelWithTokenizer } from '../session.js';
import { adapterFileBytes, saveAdapterFolder } from '../training/adapter-files.js';
import { trainsAdapter, type TrainConfig } from '../training/config.js';
import { checkpointsInPlace, checkRunDisk, diskNeedInWords, diskShortfall, runDiskInput } from './disk-need.js';
import { boundByData, dataShape, estimateRun, hostShortfall, memoryBudget, memoryShortfall, withOwnMemory } from '../training/memory-check.js';
import { availableMemoryBytes } from '../system/machine.js';
import { fittingAlternatives, rowShapes } from '../training/fit-alternatives.js';
import { rowsBytes } from '../training/rows-bytes.js';
import { cutMetricsAfter, MetricsWriter } from '../training/metrics.js';
import { estimateRemaining } from '../training/progress.js';
import { estimateRunTime, evaluatingSeconds, safeRunTimeEstimate } from '../training/time-estimate.js';
import { checkAgainstModel, configWithLayout, loadRunData, setUpMethod, type RunSummary } from '../training/run.js';
import { learningRate } from '../training/schedule.js';
import { comparableFingerprint, modelFingerprint } from '../training/model-fingerprint.js';
import { adapterBase, cacheSnapshotIdentity } from '../models/cache-snapshot-identity.js';
import { quantizedBaseCardNote } from '../adapters/base-quantization.js';
import { resumeSourcesProblem } from '../training/resume-sources.js';
import { NonFiniteError, START_POSITION, stepsPerEpoch, totalSteps, train, type TrainerPosition } from '../training/trainer.js';
import { warmupRatioWords, withRunWarmup } from '../training/warmup.js';
import { CHECKPOINT_VERSION, TRAINER_STATE_FORMAT, type TrainerState } from './checkpoint-format.js';
import { pruneCheckpoints, removeWriteLeftovers } from './checkpoint-prune.js';
import { listCheckpoints, newestValidCheckpoint } from './checkpoint-read.js';
import { writeCheckpoint } from './checkpoint-write.js';
import { bestDir, readBestAdapter, writeBestAdapter } from './best-adapter.js';
import { earlyStopReason } from '../training/early-stop.js';
import { datasetSha256 } from '../data/dataset-fingerprint.js';
import type { RunControl } from './control.js';
import type { RunEndEvent, RunEvent } from './events.js';
import { crashPoint } from './fault-injection.js';
import { isOutOfMemoryError, outOfMemoryMessage } from './crash-report.js';
import { describeWriteError, dropKeptState, keepState, newestKeptCheckpoint, writeErrorRemedy } from './kept-state.js';
import { checkOutFolder, createOutFolder } from './out-folder.js';
import { LOCK_FILE, runPaths } from './layout.js';
import { acquireRunLock } from './lock.js';
import { checkStateFitsRun, positionFromState, restoreEngine } from './resume.js';
import { DATA_WORDS, EVAL_DATA_WORDS, resumedDatasetProblem } from './resume-dataset.js';
import { recordInIndex } from './run-index.js';
import { newRunRecord, readRunRecord, writeRunRecord, type RunRecord } from './run-record.js';
import { processStartTicks } from './process-alive.js';
import { cpus, hostname } from 'node:os';

/** Added to a resumed bf16 run's device / precision error: the move to the CPU needs both flags (service/resume-target.ts says it too). */
export const BF16_RESUME_NOTE = '. This run computed in bf16 (its run.json says so); to continue it on the CPU, resume with --device cpu --precision fp32';

export interface ExecuteOptions {
  /** continue the run in config.out from its newest valid checkpoint */
  resume: boolean;
  /** replace a finished run in config.out (without it such a folder is refused) */
  overwrite?: boolean;
  emit(event: RunEvent): void;
  /** pause and cancel requests (none: the run goes to the end) */
  control?: RunControl;
}

/** Seconds between run.json progress updates between checkpoints. */
const RECORD_INTERVAL_S = 5;

/** A failure before the run folder is ours: reported, but run.json is not touched. */
class NotOurRunError extends Error {}

/** The run does not fit (memory, the RAM beside a GPU, the disk): a resume so refused stays resumable as it was. */
class DoesNotFitError extends NotOurRunError {}

/** What a failed write of the run was: a checkpoint, the final adapter / model, a metrics.jsonl row, or --keep-best's best/. */
type RunWrite = 'checkpoint' | 'final' | 'metrics' | 'best';

/** A write of the run failed (RunWrite); `kept`: where the trained state was kept instead (null: nowhere). */
class RunWriteError extends Error {
  constructor(readonly failure: unknown, readonly what: RunWrite, readonly step: number, readonly total: number, readonly kept: string | null) {
    super(describeWriteError(failure));
    this.name = 'RunWriteError';
  }
}

/** Rethrows a folder error as one that leaves the folder's run.json alone. */
function notOurs(error: unknown): never {
  throw new NotOurRunError(error instanceof Error ? error.message : String(error));
}

/** The run.json this session starts from: a fresh one, or the run's own for a resume. */
async function claimRecord(config: TrainConfig, resume: boolean, overwrite: boolean, existing: RunRecord | null): Promise<RunRecord> {
  if (resume) {
    if (!existing) throw new NotOurRunError(`${config.out}: has no run.json, so it is not a run folder; start a run with peft-studio train --out ${config.out}`);
    return { ...existing, config, status: 'running', pid: process.pid, pid_start: processStartTicks(process.pid), host: hostname(), message: null, finished_at: null };
  }
  if (existing && existing.status === 'finished' && !overwrite) throw finishedRunError(config.out, existing);
  if (existing && existing.status !== 'finished' && (await listCheckpoints(config.out)).length > 0) {
    throw new NotOurRunError(
      `${config.out}: holds an unfinished run (${existing.status}, ${existing.steps_done} of ${existing.total_steps ?? '?'} steps) with checkpoints. ` +
        `Continue it with peft-studio train --resume ${config.out}, or choose another --out (or delete the folder).`,
    );
  }
  // A new run in an old run's folder (--overwrite, or one that ended before its
  // first checkpoint): the old run's files go, so that its checkpoints are not
  // mistaken for this run's and its final adapter or model does not linger
  // beside a run of another method. The folder holds only run files (out-folder.ts).
  if (existing) {
    for (const name of await readdir(config.out)) {
      if (name !== LOCK_FILE) await rm(join(config.out, name), { recursive: true, force: true });
    }
  } else {
    await rm(runPaths(config.out).checkpoints, { recursive: true, force: true });
  }
  return newRunRecord(config);
}

/**
 * A failed checkpoint or final save: what failed, what was kept and where, what
 * to fix, and the command that finishes the run without training again.
 */
function runWriteMessage(e: RunWriteError, out: string, lastCheckpoint: number | null, what: 'adapter' | 'model'): string {
  const failedWrite: Record<RunWrite, string> = {
    final: `Training finished (step ${e.step} of ${e.total}), but the final ${what} could not be written.`,
    checkpoint: `The checkpoint of step ${e.step} of ${e.total} could not be written, so the run stopped.`,
    metrics: `The metrics of step ${e.step} of ${e.total} could not be appended to ${runPaths(out).metrics}, so the run stopped.`,
    best: `The best ${what} (the new lowest eval loss, at step ${e.step} of ${e.total}) could not be written to ${bestDir(out)}, so the run stopped.`,
  };
  const failed = `${describeWriteError(e.failure)}. ${failedWrite[e.what]}`;
  const resume = `peft-studio train --resume ${out}`;
  // a full disk whose error says what the write needed and what is free: how much to free
  const toFree = e.failure instanceof FileWriteError && e.failure.space !== null ? bytesToFree(e.failure.space) : null;
  const fix = toFree !== null ? `free at least ${bytesInWords(toFree)} on the disk of ${out}` : writeErrorRemedy(e.failure, out);
  if (e.kept !== null) {
    const then = e.what === 'final' ? 'writes the final ' + what + ' without training again'
      : e.what === 'best' ? `writes ${bestDir(out)} and continues from step ${e.step}` : `continues from step ${e.step}`;
    return `${failed} The trained weights of step ${e.step} are kept as a checkpoint in ${e.kept}. ${capitalize(fix)}, then run ${resume}: it ${then}.`;
  }
  const older = lastCheckpoint !== null
    ? `The checkpoint of step ${lastCheckpoint} in ${runPaths(out).checkpoint(lastCheckpoint)} is kept; ${resume} continues from it`
    : `No checkpoint was kept (none was saved before, and the studio home could not take one either), so ${resume} starts over from step 0`;
  return `${failed} The weights of step ${e.step} could not be kept anywhere. ${older} once you ${fix}.`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function finishedRunError(out: string, existing: RunRecord): NotOurRunError {
  const what = trainsAdapter(existing.config.method) ? 'adapter' : 'model';
  return new NotOurRunError(
    `${out}: the folder holds a finished run (${existing.config.method}, ${existing.steps_done} steps) and its ${what}; ` +
      `choose another --out, or pass --overwrite to replace it`,
  );
}

/** A finished run.json written before summaries were recorded. */
function summaryOfOldRun(out: string, r: RunRecord): RunSummary {
  const resolved = r.resolved ?? {};
  return {
    out,
    method: r.config.method,
    steps: Number(resolved.total_steps ?? r.steps_done),
    train_examples: Number(resolved.train_examples ?? 0),
    eval_examples: Number(resolved.eval_examples ?? 0),
    final_loss: null,
    final_eval_loss: r.last_eval_loss,
    elapsed_s: 0,
  };
}

export async function executeRun(config: TrainConfig, options: ExecuteOptions): Promise<RunEndEvent> {
  const { emit, control } = options;
  const paths = runPaths(config.out);
  const log = (message: string, level: 'info' | 'warning' = 'info') => emit({ type: 'log', level, message });
  let record: RunRecord | null = null;
  let release: (() => Promise<void>) | null = null;
  let engine: NativeEngine | null = null;
  let stepsDone = 0;
  let lastCheckpoint: number | null = null;
  let fullModel = false; // full fine-tuning: the base weights are the trainable ones

  // run.json writes are queued so that they land in order. One that fails (a full disk) does not stop the
  // later ones (the queue goes on past it), and the index still hears of the change: it lives in the studio
  // home, usually on another disk, and is then the only record of how the run ended (run-index.ts listRuns).
  let saving: Promise<void> = Promise.resolve();
  const saveRecord = (index = false): Promise<void> => {
    const r = record;
    if (!r) return saving;
    saving = saving.catch(() => {}).then(async () => {
      try {
        await writeRunRecord(config.out, r);
      } finally {
        if (index) await recordInIndex(config.out, r).catch(() => {}); // the index is a convenience; the folder is the truth
      }
    });
    return saving;
  };
  const finish = async (event: RunEndEvent, patch: Partial<RunRecord>): Promise<RunEndEvent> => {
    if (record) {
      Object.assign(record, { pid: null, pid_start: null, ...patch });
      await saveRecord(true).catch(() => {});
    }
    emit(event);
    return event;
  };

  // for an out-of-memory message: known once estimated
  let memory: { estimateBytes: number; availableBytes: number; where: string; gpu: boolean } | null = null;
  // The precision 'auto' resolved to: the out-of-memory advice must name the one the run really used.
  let usedPrecision: TrainConfig['precision'] | null = null;

  try {
    // The folder is checked before the model and data are read, so a bad
    // --out fails fast, and again under the lock (claimRecord).
    if (!options.resume) await checkOutFolder(config.out, config.model, { data: config.data, evalData: config.evalData, initAdapter: config.initAdapter }).catch(notOurs);
    const existing = await readRunRecord(config.out);
    if (options.resume && existing?.status === 'finished') {
      const what = trainsAdapter(existing.config.method) ? 'adapter' : 'model';
      log(`${config.out}: the run already finished (${existing.steps_done} of ${existing.total_steps ?? existing.steps_done} steps); nothing to resume. The ${what} is in ${config.out}.`);
      const event: RunEndEvent = { type: 'finished', summary: existing.summary ?? summaryOfOldRun(config.out, existing) };
      emit(event);
      return event;
    }

    // Model, data and memory are checked before anything is written: a run
    // that cannot start leaves no folder (and an old run's files untouched).
    if (options.resume) {
      // a moved model or data file: where to put it back, or how to point the run at it
      const gone = resumeSourcesProblem(config);
      if (gone) throw new NotOurRunError(gone);
    }
    const { folder, tokenizer } = await openModelWithTokenizer(config.model);
    checkAgainstModel(config, folder, config.lora);
    // What the engine will really hold: a bitsandbytes 4-bit folder is NF4 whatever
    // the flags said (other NF4 settings are refused here, before anything is
    // written), so LoRA on it is QLoRA: merge, eval and export read run.json back.
    const quantization = effectiveQuantization(folder, config.quantization);
    const method = config.method === 'lora' && quantization !== null ? 'qlora' : config.method;
    // what the adapter's README says of its base (a 4-bit one: how to load it so)
    const cardNotes = quantizedBaseCardNote(quantization);
    const data = await loadRunData(config, tokenizer, folder);
    for (const note of data.notes) log(note);
    // a file's sha256, or a folder's over its files (data/dataset-fingerprint.ts)
    const dataSha = await datasetSha256(config.data);
    const evalSha = config.evalData ? await datasetSha256(config.evalData, 'eval') : null;
    if (options.resume && existing) {
      const dataProblem = resumedDatasetProblem(config.data, existing.config.data, existing.data_sha256 ?? null, dataSha, DATA_WORDS);
      if (dataProblem) throw new NotOurRunError(dataProblem);
      const evalProblem = config.evalData && evalSha !== null
        ? resumedDatasetProblem(config.evalData, existing.config.evalData ?? null, existing.eval_data_sha256 ?? null, evalSha, EVAL_DATA_WORDS)
        : null;
      if (evalProblem) throw new NotOurRunError(evalProblem);
    }
    const total = totalSteps(data.train.length, { maxSteps: config.steps, epochs: config.epochs, batchSize: config.batchSize, gradAccum: config.gradAccum });
    // warmup given as a fraction of the run comes to its steps now that they are counted: the schedule, the
    // checkpoints and run.json (which keeps the fraction beside them) all see that count. A resume keeps the
    // count its run.json recorded (its steps are the same ones: checkStateFitsRun holds them to the checkpoint's)
    if (!options.resume) config = withRunWarmup(config, total);
    const addon = loadAddon();
    // Where it trains ('auto': the first GPU, else the CPU); a GPU that is not there is refused here, before anything is written.
    // The precision too ('auto': bf16 on a GPU with bf16 tensor cores, else fp32; bf16 on the CPU is refused here).
    let device: ResolvedDevice;
    let precision: ResolvedPrecision;
    try {
      device = resolveDevice(addon, config.device);
      precision = choosePrecision(config.precision, device.gpu);
    } catch (e) {
      // A resumed bf16 run (run.json says so, not a flag given now) needs both flags to move to the CPU.
      if (options.resume && config.precision === 'bf16') {
        notOurs(`${e instanceof Error ? e.message : String(e)}${BF16_RESUME_NOTE}`);
      }
      notOurs(e);
    }
    usedPrecision = precision.precision;
    // --init-adapter decides the LoRA layout, so its rank is only known once
    // read; the run's own settings are the estimate before that. On a GPU the
    // estimate is held against its free memory, on the CPU against the RAM.
    // sized as the data lets the batches grow: no more rows than it has, padded to its longest row
    const sized = boundByData(config, dataShape(data.train, data.eval));
    // the rows this process holds through the run, with the engine (training/rows-bytes.ts)
    const held = rowsBytes([...data.train, ...data.eval]);
    const estimate = estimateRun(addon, folder, sized, config.lora, { device: device.device, precision: precision.precision }, held);
    // (this process's own memory, which the estimate counts, is no longer in what is available: added back)
    const ownBytes = process.memoryUsage().rss;
    const budget = withOwnMemory(memoryBudget(device), ownBytes);
    const available = budget.availableBytes;
    memory = { estimateBytes: estimate.totalBytes, availableBytes: available, where: budget.where, gpu: budget.gpu };
    // what would fit is searched only for a run that does not
    const fit = estimate.totalBytes > available
      ? fittingAlternatives(addon, folder, sized, config.lora, { device: device.device, precision: precision.precision }, budget,
        { resumed: options.resume === true, rows: config.pack ? undefined : rowShapes(data.train), rowsBytes: held })
      : undefined;
    const shortfall = memoryShortfall(estimate, budget, { ...sized, precision: precision.precision }, fit);
    if (shortfall !== null && !config.ignoreMemoryCheck) throw new DoesNotFitError(shortfall);
    // on a GPU, the RAM the run needs beside it (the training process, the weights' load)
    const hostShort = hostShortfall(estimate, budget.gpu ? availableMemoryBytes() + ownBytes : Infinity, config.ignoreMemoryCheck === true);
    if (hostShort !== null && !config.ignoreMemoryCheck) throw new DoesNotFitError(hostShort);
    // what the run writes to its folder's disk, against what that disk has free (a resume counts the checkpoints in place)
    const disk = runDiskInput(config, folder, total, options.resume ? await checkpointsInPlace(config.out, existing?.created_at) : null);
    // a new run in an old run's folder (--overwrite) clears the old files before it writes: their room counts as free
    const freed = !options.resume && existing ? await bytesUnder(config.out) : 0;
    const diskCheck = await checkRunDisk(config.out, disk.input, freed);
    const diskShort = diskShortfall(config.out, diskCheck, disk.input, disk.result);
    if (diskShort !== null && !config.ignoreDiskCheck) throw new DoesNotFitError(diskShort);
    /** what is said once the started event is out */
    const afterStart: string[] = [];

    // A finished run is kept unless --overwrite (checked again under the lock).
    if (!options.resume && existing?.status === 'finished' && !options.overwrite) throw finishedRunError(config.out, existing);
    await createOutFolder(config.out).catch(notOurs);
    release = await acquireRunLock(config.out);
    // read again under the lock: another process may have changed it meanwhile
    record = await claimRecord(config, options.resume, options.overwrite ?? false, await readRunRecord(config.out));
    record.data_sha256 = dataSha;
    record.eval_data_sha256 = evalSha;
    await saveRecord(true);
    if (shortfall !== null) log(shortfall, 'warning');
    if (hostShort !== null) log(hostShort, 'warning');
    if (diskShort !== null) log(`${diskNeedInWords(config.out, diskCheck, disk.result)}; starting anyway, as --ignore-disk-check asks`, 'warning');

    engine = createEngine(addon, folder, {
      threads: config.threads, gradientCheckpointing: config.gradientCheckpointing, seed: config.seed, quantization, device: device.device, precision: precision.precision,
      // noise in training passes only: the engine adds none when it evaluates (the run's evals) or generates
      neftuneAlpha: config.neftuneAlpha,
    });
    const layout = await setUpMethod(engine, folder, config, tokenizer);
    // the device and precision actually used, as the quantization: a resumed run goes back to them
    // the model's fingerprint lets a resume find it at a new path (--model with --resume); a resume keeps the one it was checked against
    record.config = configWithLayout({ ...config, method, quantization, device: device.device, precision: precision.precision, modelFingerprint: config.modelFingerprint && comparableFingerprint(config.modelFingerprint) ? config.modelFingerprint : modelFingerprint(folder),
      // a model from the Hugging Face cache: its revision and weight blobs (a resume keeps the ones it was checked against)
      modelSnapshot: config.modelSnapshot ?? cacheSnapshotIdentity(folder.dir) }, layout);
    record.total_steps = total;
    record.resolved = {
      total_steps: total,
      train_examples: data.train.length,
      eval_examples: data.eval.length,
      architecture: folder.spec.architecture,
      parameters: folder.parameterCount,
      trainable_parameters: engine.parameters().filter((p) => p.trainable).reduce((n, p) => n + p.shape.reduce((a, d) => a * d, 1), 0),
      stored_dtype: folder.storedDType,
      adapter_file_bytes: layout ? adapterFileBytes(folder.spec, layout) : null,
      memory_estimate_bytes: estimate.totalBytes,
      engine: engine.describe(),
      device: device.reason,
      precision: precision.reason,
      gpu: device.gpu,
      addon_version: addon.version,
      data: data.summary,
      eval_data: data.evalSummary,
      // judged on this session's settings and step count (a resume judges its own): a page that opens later reads them here
      warnings: data.warnings,
    };

    let from: TrainerPosition = START_POSITION;
    let metrics: MetricsWriter;
    fullModel = layout === null;
    if (options.resume) {
      await removeWriteLeftovers(config.out);
      // A state kept in the studio home after a failed write (kept-state.ts) is newer than the run folder's.
      const { point, kept } = await newestKeptCheckpoint(record.created_at, await newestValidCheckpoint(config.out));
      if (kept && point.checkpoint) log(`continuing from the state kept in ${point.checkpoint.dir} (step ${point.checkpoint.step}) when a write to ${config.out} failed`);
      for (const bad of point.rejected) {
        log(`checkpoint step-${bad.step} is not usable (${bad.reason}); falling back to ${point.checkpoint ? `step-${point.checkpoint.step}` : 'the start'} and removing it`, 'warning');
        await rm(bad.dir, { recursive: true, force: true });
      }
      if (point.checkpoint) {
        const warnings = checkStateFitsRun(point.checkpoint.state, config, { totalSteps: total, trainExamples: data.train.length, evalExamples: data.eval.length });
        for (const w of warnings) log(w, 'warning');
        await restoreEngine(engine, folder, layout, point.checkpoint.dir, point.checkpoint.state);
        from = positionFromState(point.checkpoint.state);
        lastCheckpoint = kept ? null : from.step; // a kept state is not in the run folder: the final save writes one there if it fails again
      } else {
        log('no complete checkpoint to continue from; the run starts over from step 0', 'warning');
      }
      await cutMetricsAfter(paths.metrics, from.step);
      // best/ written after the step the run resumes from belongs to steps that are trained again: it goes as
      // those metrics do (the replay writes it again when it comes to it; a resume with another --lr may not)
      const staleBest = await readBestAdapter(config.out);
      if (staleBest && staleBest.step > from.step) {
        await rm(staleBest.dir, { recursive: true, force: true });
        afterStart.push(`${staleBest.dir} (step ${staleBest.step}) was written after step ${from.step}, where the run resumes: removed; ` +
          `it is written again when an evaluation from here beats the best so far${from.bestEvalLoss === null ? '' : ` (eval loss ${from.bestEvalLoss.toFixed(4)}, whose adapter is not kept)`}`);
      }
      // A run that stopped because best/ could not be written kept that step's state: the restored weights are the best
      // adapter (model) of the step it resumes from, so best/ is written now, as the uninterrupted run wrote it.
      if (config.keepBest && point.checkpoint && from.step > 0 && from.bestEvalStep === from.step && from.bestEvalLoss !== null && (await readBestAdapter(config.out))?.step !== from.step) {
        try {
          await writeBestAdapter(config.out, { engine, folder, layout, step: from.step, evalLoss: from.bestEvalLoss, modelCardNotes: cardNotes });
        } catch (e) {
          throw new RunWriteError(e, 'best', from.step, total, point.checkpoint.dir);
        }
        afterStart.push(`the best ${layout ? 'adapter' : 'model'} of step ${from.step} (eval loss ${from.bestEvalLoss.toFixed(4)}), which the run could not write before it stopped, is now in ${bestDir(config.out)}`);
      }
      metrics = new MetricsWriter(paths.metrics, { append: true });
      record.resumes.push({ at: new Date().toISOString(), from_step: from.step });
    } else {
      if (existing) await dropKeptState(existing.created_at); // the replaced run's kept state, if it had one
      metrics = new MetricsWriter(paths.metrics);
    }
    // How long, said before the first step (a GPU: once the first steps run); never a reason to stop. After
    // run.json is written (measuring this machine's speed takes a moment the run's record need not wait for).
    const timeEstimate = safeRunTimeEstimate(() => estimateRunTime(addon.ops, { gpu: device.gpu !== null, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', threads: config.threads },
      folder.spec, { ...config, method }, data.train, total, data.eval));
    // seconds the estimate said (null: on a GPU, or not estimable), to hold the real time against: training and
    // evaluations together (elapsed time includes the evaluations too); the evaluations' part alone beside it
    Object.assign(record.resolved!, {
      time_estimate_s: timeEstimate?.time.seconds ?? null,
      time_estimate_eval_s: timeEstimate ? evaluatingSeconds(timeEstimate.time) : null,
      time_estimate_flops: timeEstimate ? timeEstimate.work.flops.total + timeEstimate.evalWork.flops : null,
      time_estimate_eval_flops: timeEstimate?.evalWork.flops ?? null,
    });
    stepsDone = from.step;
    Object.assign(record, { steps_done: from.step, last_checkpoint: lastCheckpoint, best_eval_loss: from.bestEvalLoss, best_eval_step: from.bestEvalStep < 0 ? null : from.bestEvalStep, last_eval_loss: from.finalEvalLoss, stop_reason: null });
    await saveRecord(true);

    emit({
      type: 'started',
      runDir: config.out,
      pid: process.pid,
      method: config.method,
      totalSteps: total,
      startStep: from.step,
      resumedFrom: options.resume ? from.step : null,
      trainExamples: data.train.length,
      evalExamples: data.eval.length,
      engine: engine.describe(),
      memoryEstimateBytes: estimate.totalBytes,
      availableMemoryBytes: available,
      data: data.summary,
      evalData: data.evalSummary,
      warnings: data.warnings,
    });
    // said once the run is under way (the started event is a run's first)
    if (timeEstimate) log(timeEstimate.line);
    // what the started line's method does not say
    if (config.lora?.dora === true) log('DoRA: each adapted linear also trains a magnitude per output row (PEFT use_dora)');
    if (config.neftuneAlpha > 0) log(`NEFTune: noise within ${config.neftuneAlpha} / sqrt(sequence length x hidden size) on the input embeddings while training (none at evaluation)`);
    // a fraction of the run: the steps it came to (absent from the run.json of a version before it)
    const warmupRatio = config.warmupRatio ?? null;
    if (warmupRatio !== null) log(`warmup: ${warmupRatioWords(warmupRatio, total)} (--warmup-ratio ${warmupRatio}, rounded up as transformers does)`);
    for (const note of afterStart) log(note);

    const eng = engine;
    const schedule = { kind: config.scheduler, baseLr: config.lr, warmupSteps: config.warmupSteps, totalSteps: total };
    const stateAt = (pos: TrainerPosition): TrainerState => ({
      format: TRAINER_STATE_FORMAT,
      version: CHECKPOINT_VERSION,
      method: config.method,
      step: pos.step,
      total_steps: total,
      optimizer: { kind: config.optimizer, step: pos.step },
      scheduler: { kind: config.scheduler, base_lr: config.lr, warmup_steps: config.warmupSteps, total_steps: total, next_lr: learningRate(schedule, pos.step) },
      rng: { seed: config.seed, dropout_counter: eng.dropoutCounter(), data_order_seed: config.seed },
      data: {
        epoch: pos.epoch,
        step_in_epoch: pos.stepInEpoch,
        steps_per_epoch: stepsPerEpoch(data.train.length, config.batchSize, config.gradAccum),
        train_examples: data.train.length,
        eval_examples: data.eval.length,
      },
      eval: {
        last_eval_step: pos.lastEvalStep,
        final_eval_loss: pos.finalEvalLoss,
        best_eval_loss: pos.bestEvalLoss,
        best_eval_step: pos.bestEvalStep,
        evals_without_improvement: pos.evalsWithoutImprovement,
      },
      final_loss: pos.finalLoss,
      elapsed_s: pos.elapsedSeconds,
      threads: config.threads,
    });
    const writeCheckpointIn = async (runDir: string, pos: TrainerPosition): Promise<string> =>
      (await writeCheckpoint(runDir, { engine: eng, folder, layout, ...adapterBase(folder.dir), state: stateAt(pos) })).dir;
    // The state of `pos` after a failed write other than a checkpoint: the run folder's checkpoint of that step when
    // it has one, else one written now (in the run folder when it takes it, else in the studio home), so a resume loses no step.
    const keepStateAt = async (pos: TrainerPosition): Promise<string | null> =>
      lastCheckpoint === pos.step
        ? paths.checkpoint(pos.step)
        : keepState(config.out, record!.created_at, async (dir) => {
            const written = await writeCheckpointIn(dir, pos);
            if (dir === config.out) {
              lastCheckpoint = pos.step;
              record!.last_checkpoint = pos.step;
            }
            return written;
          }, false);
    // A metrics.jsonl row that could not be appended (a full disk, say): the trainer's step hooks cannot stop
    // it with the step's position in hand, so the failure waits here, the loop stops before its next step
    // (beforeStep), and the state of the step it stopped at is kept below.
    let metricsFailure: unknown = null;
    let metricsRowBytes = 0; // the row that failed: what a full disk could not take
    const writeMetrics = (row: Parameters<MetricsWriter['write']>[0]): void => {
      if (metricsFailure !== null) return; // the run stops at the next step: the rest would fail the same way
      try {
        metrics.write(row);
      } catch (e) {
        metricsFailure = e;
        metricsRowBytes = Buffer.byteLength(JSON.stringify(row)) + 1; // one line of metrics.jsonl
      }
    };
    const checkpoint = async (pos: TrainerPosition): Promise<string> => {
      let written: Awaited<ReturnType<typeof writeCheckpoint>>;
      try {
        written = await writeCheckpoint(config.out, { engine: eng, folder, layout, ...adapterBase(folder.dir), state: stateAt(pos) });
      } catch (e) {
        // The weights of this step are kept elsewhere (the studio home) so that resume loses nothing.
        throw new RunWriteError(e, 'checkpoint', pos.step, total, await keepState(config.out, record!.created_at, (dir) => writeCheckpointIn(dir, pos), true));
      }
      lastCheckpoint = pos.step;
      await pruneCheckpoints(config.out, config.keepCheckpoints);
      Object.assign(record!, { last_checkpoint: pos.step, steps_done: pos.step });
      await saveRecord();
      emit({ type: 'checkpoint', step: pos.step, dir: written.dir, bytes: written.bytes, seconds: written.seconds });
      return written.dir;
    };

    const sessionStart = performance.now();
    let lastRecordSave = performance.now();
    const summary = await train(
      eng,
      data.train,
      data.eval,
      {
        optimizer: config.optimizer,
        lr: config.lr,
        beta1: config.adamBeta1,
        beta2: config.adamBeta2,
        eps: config.adamEpsilon,
        weightDecay: config.weightDecay,
        clip: config.clip,
        scheduler: config.scheduler,
        warmupSteps: config.warmupSteps,
        maxSteps: config.steps,
        epochs: config.epochs,
        batchSize: config.batchSize,
        gradAccum: config.gradAccum,
        seed: config.seed,
        evalEvery: config.evalEvery,
        saveEvery: config.saveEvery,
        earlyStop: config.earlyStop > 0 ? { patience: config.earlyStop, delta: config.earlyStopDelta } : undefined,
        virtualTokens: config.method === 'prompt' ? config.prompt?.numVirtualTokens ?? 0 : 0,
      },
      {
        onStep(row, totalSteps) {
          writeMetrics(row);
          stepsDone = row.step;
          const sessionSeconds = (performance.now() - sessionStart) / 1000;
          emit({
            type: 'step',
            step: row.step,
            totalSteps,
            loss: row.loss,
            lr: row.lr,
            gradNorm: row.grad_norm,
            tokens: row.tokens,
            tokensPerSecond: row.tokens_per_s,
            inputTokens: row.input_tokens ?? 0,
            inputTokensPerSecond: row.input_tokens_per_s ?? 0,
            elapsedSeconds: row.elapsed_s,
            // from this session's pace: an earlier session may have run on other settings
            etaSeconds: estimateRemaining(row.step - from.step, totalSteps - from.step, sessionSeconds),
            memory: eng.memory(),
          });
          record!.steps_done = row.step;
          if ((performance.now() - lastRecordSave) / 1000 >= RECORD_INTERVAL_S) {
            lastRecordSave = performance.now();
            void saveRecord().catch(() => {});
          }
        },
        onEval(row) {
          writeMetrics(row);
          const newBest = record!.best_eval_loss === null || row.eval_loss < record!.best_eval_loss;
          const best = newBest ? row.eval_loss : record!.best_eval_loss!;
          Object.assign(record!, { best_eval_loss: best, last_eval_loss: row.eval_loss }, newBest ? { best_eval_step: row.step } : {});
          emit({ type: 'eval', step: row.step, evalLoss: row.eval_loss, bestEvalLoss: best });
        },
        async saveCheckpoint(pos) {
          await checkpoint(pos);
        },
        // --keep-best: every new lowest eval loss replaces DIR/best/ (best-adapter.ts)
        onNewBest: config.keepBest
          ? async (pos) => {
              try {
                await writeBestAdapter(config.out, { engine: eng, folder, layout, step: pos.step, evalLoss: pos.bestEvalLoss!, modelCardNotes: cardNotes });
              } catch (e) {
                // the weights of this step are the best: kept as a checkpoint, from which --resume writes best/ again
                throw new RunWriteError(e, 'best', pos.step, total, await keepStateAt(pos));
              }
              log(`new best eval loss ${pos.bestEvalLoss!.toFixed(4)} at step ${pos.step}: kept in ${bestDir(config.out)}`);
            }
          : undefined,
        async beforeStep(nextStep) {
          if (metricsFailure !== null) return false;
          crashPoint('step-start', nextStep);
          if (!control) return true;
          if (control.pauseRequested && !control.cancelRequested) {
            record!.status = 'paused';
            await saveRecord(true);
            emit({ type: 'paused', step: nextStep - 1 });
            await control.waitWhilePaused();
            if (!control.cancelRequested) {
              record!.status = 'running';
              await saveRecord(true);
              emit({ type: 'resumed', step: nextStep - 1 });
            }
          }
          return !control.cancelRequested;
        },
      },
      from,
    );

    if (metricsFailure !== null) {
      throw new RunWriteError(await withSpaceNeeded(metricsFailure, metricsRowBytes), 'metrics', summary.position.step, total, await keepStateAt(summary.position));
    }
    if (summary.stopped) {
      const pos = summary.position;
      const dir = pos.step === 0 ? null : lastCheckpoint === pos.step ? paths.checkpoint(pos.step) : await checkpoint(pos);
      const reason = control?.stopCause ?? 'user';
      const what = reason === 'shutdown' ? 'stopped by a shutdown (PEFT Studio closing, or SIGTERM)' : 'cancelled';
      const message = `${what} after step ${pos.step} of ${total}; continue with peft-studio train --resume ${config.out}`;
      return await finish({ type: 'cancelled', step: pos.step, checkpoint: dir, message, reason }, { status: 'cancelled', message, steps_done: pos.step, stopped_by: reason });
    }

    try {
      if (layout) await saveAdapterFolder(config.out, { engine: eng, spec: folder.spec, layout, ...adapterBase(folder.dir), keepOtherFiles: true, modelCardNotes: cardNotes });
      else await saveFullModel(eng, folder, config.out);
    } catch (e) {
      // The trained weights stay: the final state as a checkpoint (in the run folder when it
      // still takes one, else in the studio home), finished by train --resume. (A copy of the
      // full model's side files fails with Node's raw error: worded as every other write.)
      throw new RunWriteError(await asFileWriteError(e, config.out), 'final', summary.position.step, total, await keepStateAt(summary.position));
    }
    crashPoint('final-adapter', total);
    await dropKeptState(record.created_at);
    const stoppedEarly = summary.earlyStop ? earlyStopReason(summary.earlyStop, config.earlyStopDelta) : null;
    let best = null;
    if (config.keepBest) {
      best = await readBestAdapter(config.out);
      // best/ written past the checkpoint a resumed run restarted from, and not written again
      // by the replay (a resume with another --lr): it is not this run's best, so it is not named
      if (best && best.step !== summary.position.bestEvalStep) {
        log(`${best.dir} holds the adapter of step ${best.step} (eval loss ${best.eval_loss}), not of this run's best evaluation (step ${summary.position.bestEvalStep}); it is not offered as the run's best`, 'warning');
        best = null;
      }
    }
    const result: RunSummary = {
      out: config.out,
      method: config.method,
      steps: summary.steps,
      train_examples: data.train.length,
      eval_examples: data.eval.length,
      final_loss: summary.finalLoss,
      final_eval_loss: summary.finalEvalLoss,
      elapsed_s: summary.elapsedSeconds,
      best,
      stopped_early: stoppedEarly,
    };
    return await finish({ type: 'finished', summary: result }, { status: 'finished', finished_at: new Date().toISOString(), summary: result, steps_done: summary.steps, stop_reason: stoppedEarly });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const checkpointDir = lastCheckpoint === null ? null : paths.checkpoint(lastCheckpoint);
    if (error instanceof NonFiniteError) {
      const kept = lastCheckpoint !== null ? `the last good checkpoint, step-${lastCheckpoint}, is kept` : 'no checkpoint was saved before it (use --save-every)';
      // NaN / Inf in the base weights (a damaged model file): no learning rate helps. Trainable
      // tensors (adapters are checked for NaN when read) that hold them were blown up by training.
      const eng = engine;
      const found = eng === null ? [] : await Promise.resolve().then(() => eng.nonFiniteTensors()).catch(() => []);
      const fileDamaged = fullModel ? error.step === 1 : true; // full fine-tuning: its weights are the base; only before any step is it the file
      const damaged = describeNonFiniteTensors(found.filter((t) => fileDamaged && (fullModel || !t.trainable)), { model: config.model, fullModel });
      const blownUp = describeNonFiniteTensors(found.filter((t) => (fullModel ? !fileDamaged : t.trainable)), { model: config.model, adapter: null });
      if (damaged !== null) {
        const text = `${message}: ${damaged}. The run stopped without applying the step; ${kept}. A lower learning rate will not help: fix the file, then start the run again.`;
        return finish({ type: 'failed', kind: 'non-finite', message: text, step: error.step - 1, resumable: false, checkpoint: checkpointDir }, { status: 'failed', message: text });
      }
      const older = lastCheckpoint !== null
        ? ` If it diverges again at once, the weights of step-${lastCheckpoint} had already grown too large: delete checkpoints/step-${lastCheckpoint} to continue from the checkpoint before it.`
        : '';
      const weights = blownUp !== null ? `${blownUp.replace(/ \(the trainable tensors hold non-finite values\)$/, '')}: training blew the weights up` : "the model's weights are all finite";
      const text = `${message}; ${weights}. The run stopped without applying the step; ${kept}. Continue with a lower learning rate: peft-studio train --resume ${config.out} --lr ${formatLearningRate(config.lr / 10)}.${older}`;
      return finish({ type: 'failed', kind: 'non-finite', message: text, step: error.step - 1, resumable: true, checkpoint: checkpointDir }, { status: 'failed', message: text });
    }
    if (error instanceof RunWriteError) {
      const text = runWriteMessage(error, config.out, lastCheckpoint, trainsAdapter(config.method) ? 'adapter' : 'model');
      const kept = error.kept ?? checkpointDir;
      return finish({ type: 'failed', kind: 'error', message: text, step: error.step, resumable: true, checkpoint: kept }, { status: 'failed', message: text, steps_done: error.step });
    }
    if (!(error instanceof NotOurRunError) && isOutOfMemoryError(message)) {
      const at = record === null ? 'before the run started' : stepsDone === 0 ? 'before its first step' : `after step ${stepsDone}`;
      const text = outOfMemoryMessage(message, memory, { ...config, precision: usedPrecision ?? config.precision }, at);
      if (record === null) {
        const event: RunEndEvent = { type: 'failed', kind: 'error', message: text, step: null, resumable: false, checkpoint: null };
        emit(event);
        return event;
      }
      return finish({ type: 'failed', kind: 'error', message: text, step: stepsDone, resumable: true, checkpoint: checkpointDir }, { status: 'failed', message: text });
    }
    if (error instanceof NotOurRunError || record === null) {
      // The folder belongs to another run or process: leave its run.json alone. A resume refused because the run
      // does not fit changed nothing: the run is as resumable as it was (the app keeps its Resume options up).
      const resumable = options.resume && error instanceof DoesNotFitError;
      const event: RunEndEvent = { type: 'failed', kind: 'error', message, step: null, resumable, checkpoint: null };
      emit(event);
      return event;
    }
    return finish({ type: 'failed', kind: 'error', message, step: stepsDone, resumable: true, checkpoint: checkpointDir }, { status: 'failed', message });
  } finally {
    await saving.catch(() => {});
    engine?.dispose();
    await release?.();
  }
}
