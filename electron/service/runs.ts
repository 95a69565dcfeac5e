// The runs this service started: checkRun / startRun / resumeRun and the
// controls of a live run by its id. Each run trains in a child process
// (electron/runs/manager.ts); every event it sends is pushed to the UIs as
// {type: 'run', runId, runDir, event}. close() cancels the live runs (each
// stops at its next step with a checkpoint, resumable) and waits for them;
// from the moment it begins, no run starts (a start already inside its
// checks is refused when it reaches launch). A resume may move a run to
// another device or precision (ResumeRequest), as `train --resume` can; the
// run's messages reach the UIs with that advice in the app's words
// (app-wording.ts).
import { RunFigures } from './run-figures.js';
import { randomUUID } from 'node:crypto';
import { rmdir } from 'node:fs/promises';
import type { ApiEvent, RunCheck, RunLiveFigures, StartedRun } from '../api/contract.js';
import { isEndEvent } from '../runs/events.js';
import { TrainingRun, type ForkSettings } from '../runs/manager.js';
import { readRunRecord } from '../runs/run-record.js';
import type { TrainConfig } from '../training/config.js';
import { resumedConfig, SettingsError } from '../training/settings.js';
import { inAppEvent } from './app-wording.js';
import { failed, invalid } from './errors.js';
import type { PathPolicy } from './paths.js';
import { checkRunSettings } from './run-check.js';
import { plannedRunFolder, reserveRunFolder } from './run-folder.js';
import { checkResumeTarget } from './resume-target.js';
import { parseResumeRequest, parseRunSettings } from './run-settings.js';

/** How long close() waits for a cancelled run's checkpoint before killing it. */
const CLOSE_GRACE_MS = 30_000;

const SHUTTING_DOWN = 'PEFT Studio is shutting down, so no run can start now; start it again once PEFT Studio is running';

interface LiveRun {
  runId: string;
  run: TrainingRun;
  /** the device the run was asked for ('cpu', 'auto', 'cuda:N') */
  device: string;
}

export class RunService {
  private readonly live = new Map<string, LiveRun>();
  /** what each folder's live events said last (runHistory's `live`) */
  private readonly figures = new RunFigures();
  private closing = false;

  constructor(
    private readonly emit: (e: ApiEvent) => void,
    private readonly policy: PathPolicy,
    private readonly fork?: ForkSettings,
    /** frees memory others hold (the try page's models) before a run is checked and started */
    private readonly freeMemory: () => Promise<void> = async () => {},
  ) {}

  async check(request: unknown): Promise<RunCheck> {
    const parsed = parseRunSettings(request, this.policy);
    const out = parsed.out ?? plannedRunFolder(parsed.settings.method ?? 'lora');
    return (await checkRunSettings(parsed, out)).check;
  }

  async start(request: unknown): Promise<StartedRun> {
    if (this.closing) throw failed(SHUTTING_DOWN);
    const parsed = parseRunSettings(request, this.policy);
    const out = parsed.out ?? plannedRunFolder(parsed.settings.method ?? 'lora');
    // before the memory check, so it sees what the run will really have
    await this.freeMemory();
    const { check, config } = await checkRunSettings(parsed, out);
    if (check.errors.length > 0) {
      const [first] = check.errors;
      // each message names its setting by the form's label (run-check.ts): no request key in front
      throw invalid(first.field, check.errors.map((e) => e.message).join('; '));
    }
    // the device's memory, and on a GPU the RAM beside it (the run refuses either without the flag)
    const memoryShort = !check.memory!.fits || check.memory!.hostRam?.fits === false;
    if (memoryShort && !config!.ignoreMemoryCheck) throw failed(`${check.verdict} Or start anyway (ignore the memory check).`);
    if (!check.disk!.fits && !config!.ignoreDiskCheck) throw failed(check.disk!.shortfall!);
    if (this.liveIn(out)) throw failed(`${out}: a run is already training in this folder`);
    const final = parsed.out === null ? { ...config!, out: await reserveRunFolder(config!.method) } : config!;
    return this.launch(final, false, parsed.out === null);
  }

  /**
   * Continues a run (ResumeRequest): run.json's settings, with the device and
   * precision the request chose, through the same resolver as
   * `train --resume --device --precision` (resumedConfig); the worker then
   * records where it really continued in run.json, as it does for the CLI.
   */
  async resume(request: unknown): Promise<StartedRun> {
    if (this.closing) throw failed(SHUTTING_DOWN);
    const { runDir, overrides } = parseResumeRequest(request, this.policy);
    const record = await readRunRecord(runDir);
    if (!record) throw failed(`${runDir}: has no run.json, so it is not a run folder; choose the folder of a run`);
    if (record.status === 'finished') {
      throw failed(`${runDir}: the run already finished (${record.steps_done} of ${record.total_steps ?? record.steps_done} steps); there is nothing to resume`);
    }
    if (this.liveIn(runDir)) throw failed(`${runDir}: the run is already training`);
    let config: TrainConfig;
    try {
      config = resumedConfig(record.config, runDir, overrides);
    } catch (e) {
      // named as the resume request names them ('precision'), not as the run form does ('hyper.precision')
      if (e instanceof SettingsError) throw invalid(e.field, e.message);
      throw e;
    }
    // run.json may come from `peft-studio train` with paths anywhere: every path the worker reads is checked again
    this.policy.check(config.model, 'model');
    this.policy.check(config.data, 'data');
    this.policy.checkOptional(config.evalData, 'evalData');
    this.policy.checkOptional(config.initAdapter, 'initAdapter');
    checkResumeTarget(config, overrides.precision !== undefined);
    await this.freeMemory();
    return this.launch(config, true, false);
  }

  pause(runId: string): void {
    this.get(runId).run.pause();
  }

  continue(runId: string): void {
    this.get(runId).run.resume();
  }

  cancel(runId: string): void {
    this.get(runId).run.cancel();
  }

  /** What the live events of the runs in `dir` said last (null: none trained there in this service). */
  liveFigures(dir: string): RunLiveFigures | null {
    return this.figures.of(dir);
  }

  /** The id of the live run training in `dir`, if any. */
  runIdOf(dir: string): string | null {
    return this.liveIn(dir)?.runId ?? null;
  }

  async close(): Promise<void> {
    // set before the snapshot below: launch() refuses from now on, so no run escapes it
    this.closing = true;
    await Promise.all([...this.live.values()].map(async ({ run }) => {
      run.cancel('shutdown');
      const timer = setTimeout(() => run.stopNow('shutdown'), CLOSE_GRACE_MS);
      try {
        await run.wait();
      } finally {
        clearTimeout(timer);
      }
    }));
  }

  private get(runId: string): LiveRun {
    const live = this.live.get(runId);
    if (!live) throw failed(`no live run has the id ${runId}: it ended, or was started by another process (resume it from the Runs page)`);
    return live;
  }

  /**
   * Whether a live run may hold a GPU: one not asked to run on the CPU ('auto'
   * takes a GPU when there is one). The try page then generates on the CPU,
   * so it does not take the memory the run's fit check counted on.
   */
  mayHoldGpu(): boolean {
    return [...this.live.values()].some((r) => r.device !== 'cpu');
  }

  private liveIn(dir: string): LiveRun | undefined {
    return [...this.live.values()].find((l) => l.run.runDir === dir);
  }

  private launch(config: TrainConfig, resume: boolean, reserved: boolean): StartedRun {
    if (this.closing) {
      if (reserved) void rmdir(config.out).catch(() => {});
      throw failed(SHUTTING_DOWN);
    }
    // checked again after the awaits between the caller's check and here (two Resume presses)
    if (this.liveIn(config.out)) throw failed(`${config.out}: a run is already training in this folder`);
    const runId = randomUUID();
    const run = new TrainingRun({ config, resume, fork: this.fork });
    const runDir = config.out;
    this.live.set(runId, { runId, run, device: config.device });
    run.onEvent((event) => {
      this.figures.note(runDir, event);
      // ended runs leave the table before the UIs hear of the end, so a control sent after it is refused
      if (isEndEvent(event)) this.live.delete(runId);
      // the run's advice names CLI flags; the app's user gets the choice on a page instead
      this.emit({ type: 'run', runId, runDir, event: inAppEvent(event, resume ? 'resume' : 'start') });
    });
    void run.wait().then(async (end) => {
      // a new folder the run never wrote to (it failed before starting) is not left behind (rmdir: only when empty)
      if (reserved && end.type === 'failed') await rmdir(runDir).catch(() => {});
    });
    try {
      run.start();
    } catch (e) {
      this.live.delete(runId);
      if (reserved) void rmdir(runDir).catch(() => {});
      throw e;
    }
    return { runId, runDir };
  }
}
