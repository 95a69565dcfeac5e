// The Train step: follows one run (studio.runId / runDir). It subscribes to
// that run's events, loads the run folder's history (what happened before
// the page opened, or all of a past run), feeds both to a RunMonitor, and
// sends pause / continue / cancel / resume. Live events are queued and handed
// over in bursts, at an animation frame (run-monitor-frames.ts), so a fast
// run cannot flood the page; a change of the run's state is shown at once.
import { ApiError, type ApiEvent, type ApiTransport, type RunEvent } from '../../../electron/api/contract.js';
import { REFUSED_MESSAGE, type ConnectionState } from '../api/websocket.js';
import { ResumeOptions } from './resume-options.svelte.js';
import { frameScheduler, RunEventQueue, type FlushScheduler } from './run-monitor-frames.js';
import { RunMonitor, statusWords } from './run-monitor.svelte.js';
import type { Studio } from './studio.svelte.js';
import { findLiveRuns } from './wizard-session.svelte.js';

type Control = 'pause' | 'continue' | 'cancel' | 'resume';

/**
 * The most events the queue holds: a window whose frames and timers are held
 * back (hidden, or its timers throttled) takes them in bursts of this many,
 * so its queue cannot grow without end (~11 s of a run on the demo model).
 */
export const QUEUED_EVENTS_LIMIT = 2000;

export class TrainPage {
  monitor = $state.raw(new RunMonitor());
  /** the control request in flight (its button shows busy, the others wait) */
  sending = $state<Control | null>(null);
  historyError = $state<string | null>(null);
  /** where Resume continues the run (its recorded device and precision, or others): set up once it can be resumed */
  resumeOptions = $state.raw<ResumeOptions | null>(null);

  /** the connection to PEFT Studio (browser mode; the desktop app's is always open) */
  connection = $state<ConnectionState>('open');
  /** the connection closed and has not opened since: the view may be behind the run */
  lost = $state(false);

  /** the run whose events the monitor takes */
  private following: { runId: string | null; runDir: string } | null = null;
  /** live events heard since the last flush */
  private readonly queue: RunEventQueue<RunEvent>;
  /** the connection state last given (null: none yet) */
  private lastState: ConnectionState | null = null;
  /**
   * The run's record could not be read (e.g. the page opened before it was
   * connected): the view may be missing all of it, so the next 'open' reads
   * it again, as after a lost connection.
   */
  private needsResync = false;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
    schedule: FlushScheduler = frameScheduler(),
  ) {
    this.queue = new RunEventQueue((e) => e.type, (events) => this.monitor.applyAll(events), schedule, QUEUED_EVENTS_LIMIT);
  }

  /** Hands the queued events to the monitor (when the scheduler calls, or now). */
  flush(): void {
    this.queue.flush();
  }

  /**
   * The connection changed: a socket that closed (after being open, or after
   * a try) is a lost connection until it opens again; then the view is
   * rebuilt from the run's record. The first state given (at mount) is only
   * taken as it is: a page not yet connected has lost nothing, but a record
   * it failed to read meanwhile is read again once it is connected.
   */
  setConnection(state: ConnectionState): void {
    const before = this.lastState;
    this.lastState = state;
    this.connection = state;
    if (state === 'refused' || (state === 'closed' && before !== null)) this.lost = true;
    else if (state === 'open') {
      const wasLost = this.lost || this.needsResync;
      this.lost = false;
      if (wasLost) void this.resync();
    }
  }

  get connected(): boolean {
    return this.connection === 'open';
  }

  /** What the page says while it cannot reach PEFT Studio (null while connected, or still connecting at the start). */
  get connectionNotice(): string | null {
    if (this.connection === 'refused') return REFUSED_MESSAGE;
    if (!this.lost) return null;
    return 'Not connected to PEFT Studio. If it is still running, so is the run: what this page shows is from when it last heard. Trying to connect again…';
  }

  /** Why Pause / Resume / Cancel cannot be used now (null: they follow the run's state). */
  get controlsOffBecause(): string | null {
    if (this.connection === 'refused') return 'Pause and Cancel need PEFT Studio: open the address it printed to control the run again.';
    if (this.connection !== 'open') return 'Pause and Cancel work again once this page is connected to PEFT Studio.';
    return null;
  }

  /**
   * What the check before the start said the run would take (RunCheck.time:
   * "about 41 min on this CPU (…)"), to hold the time left against: recorded
   * when this session started the run (hyperparameters-page start), so only
   * for that run. Null for another run.
   */
  get estimateBeforeStart(): string | null {
    const recorded = this.studio.startEstimate;
    return recorded !== null && recorded.runDir === this.studio.runDir ? recorded.text : null;
  }

  /**
   * What a screen reader hears: the run's status when it changes, and each
   * quarter of the way while it trains; not every step. Not the connection
   * (its notice is an alert of its own, and the run's status stays as last
   * heard), and not a failure (its message is an alert): one voice each.
   */
  get announcement(): string {
    const m = this.monitor;
    if (m.status === 'failed' && m.message) return '';
    const words = statusWords(m.status, m.stoppedBy);
    const progress = m.progress;
    if (m.status === 'running' && progress !== null && progress >= 0.25) return `Run ${words}, ${Math.floor(progress * 4) * 25}% done.`;
    return `Run ${words}.`;
  }

  /** Asks the service which runs train now (the Train page offers to switch between them). */
  async loadLiveRuns(): Promise<void> {
    try {
      const live = await findLiveRuns(this.api);
      const heard = this.studio.liveRuns.filter((r) => !live.some((l) => l.runDir === r.runDir));
      this.studio.liveRuns = [...live, ...heard];
    } catch {
      // not connected: the run events fill the list later
    }
  }

  /**
   * Listen for run events; returns the unsubscribe. Events of this run
   * folder count whatever session sent them (a resume starts a new session,
   * with a new id, in the same folder); other runs' events are ignored.
   */
  subscribe(): () => void {
    return this.api.onEvent((e: ApiEvent) => {
      this.studio.noteRunEvent(e);
      const f = this.following;
      if (e.type !== 'run' || !f || (e.runId !== f.runId && e.runDir !== f.runDir)) return;
      if (e.event.type === 'started' && e.runId !== f.runId) {
        f.runId = e.runId;
        this.studio.runId = e.runId;
      }
      this.queue.push(e.event);
      // a run that failed before it wrote its record leaves no folder: ask whether it left one
      if (e.event.type === 'failed') void this.checkFolderLeft(e.runDir);
    });
  }

  /** Whether an error of runHistory is the service's answer that the folder holds no run (not a lost connection). */
  private static noRunThere(e: unknown): e is ApiError {
    return e instanceof ApiError && e.body.code === 'invalid' && e.body.field === 'runDir';
  }

  /** After a failure: a folder with no run left is dropped (studio.dropFailedRun), the failure kept to be shown. */
  private async checkFolderLeft(runDir: string): Promise<void> {
    try {
      await this.api.call('runHistory', { runDir });
    } catch (e) {
      if (TrainPage.noRunThere(e)) this.studio.dropFailedRun(runDir);
    }
  }

  /**
   * The run this tab started failed before it trained, and its folder is gone
   * (studio.failedStart): what it said. Only while no other run is followed.
   */
  get failedBeforeTraining(): { runDir: string; message: string } | null {
    return this.studio.runDir === null ? this.studio.failedStart : null;
  }

  /** Show this run: a fresh monitor, then the folder's history merged under the live events. */
  async follow(runId: string | null, runDir: string): Promise<void> {
    if (this.following && this.following.runDir === runDir) {
      // same folder, new session (a resume): the monitor carries on, its
      // 'started' resets the state; until then it is starting, not resumable
      if (runId !== null && runId !== this.following.runId) {
        this.following.runId = runId;
        this.flush();
        this.monitor.awaitSession();
      }
      return;
    }
    this.following = { runId, runDir };
    this.queue.clear(); // another run's events
    this.monitor = new RunMonitor();
    this.resumeOptions = null;
    this.historyError = null;
    this.needsResync = false;
    const monitor = this.monitor;
    try {
      const history = await this.api.call('runHistory', { runDir });
      if (monitor !== this.monitor) return; // another run was chosen meanwhile
      this.flush(); // live events first: the history does not overrule them
      monitor.loadHistory(history);
      // a past run that is in fact running in this process: follow it live
      if (runId === null && history.runId !== null) {
        this.following = { runId: history.runId, runDir };
        this.studio.runId = history.runId;
      }
    } catch (e) {
      if (monitor !== this.monitor) return;
      // the service answered that no run is there, nor starting, and the run was heard failing: it failed before it trained
      if (TrainPage.noRunThere(e) && this.studio.dropFailedRun(runDir)) return;
      // read it again once connected (it may have failed for want of a connection)
      this.needsResync = true;
      // a run started a moment ago may not have written its metrics yet; live events still come
      if (runId === null) this.historyError = e instanceof Error ? e.message : String(e);
    }
  }

  /**
   * The connection dropped and came back (browser mode over a tunnel that
   * blinked): events sent meanwhile are lost, so the run may have moved on or
   * ended unseen. Rebuild the view from the run folder's record, which the
   * live events then continue.
   */
  async resync(): Promise<void> {
    const f = this.following;
    if (!f) return;
    this.following = null;
    await this.follow(null, f.runDir);
  }

  /** Runs a control; a failure goes to the error banner unless `handled` takes it. */
  private async send(what: Control, act: () => Promise<unknown>, handled: (e: unknown) => boolean = () => false): Promise<void> {
    this.sending = what;
    try {
      await act();
    } catch (e) {
      if (!handled(e)) this.studio.showError(e);
    } finally {
      this.sending = null;
    }
  }

  pause(): Promise<void> {
    const runId = this.studio.runId;
    return runId ? this.send('pause', () => this.api.call('pauseRun', { runId })) : Promise.resolve();
  }
  continue(): Promise<void> {
    const runId = this.studio.runId;
    return runId ? this.send('continue', () => this.api.call('continueRun', { runId })) : Promise.resolve();
  }
  cancel(): Promise<void> {
    const runId = this.studio.runId;
    return runId ? this.send('cancel', () => this.api.call('cancelRun', { runId })) : Promise.resolve();
  }

  /**
   * The Resume options of the run this page follows, from its run.json as it
   * is now (the device and precision the run really used): read when the
   * run can be resumed, once per ending.
   */
  prepareResume(): Promise<void> {
    const runDir = this.following?.runDir;
    if (!runDir || this.resumeOptions?.runDir === runDir) return Promise.resolve();
    this.resumeOptions = new ResumeOptions(this.api, runDir);
    return this.resumeOptions.load();
  }

  /** Continue an ended run from its newest checkpoint, where the Resume options say: a new live run in the same folder. */
  resume(): Promise<void> {
    const runDir = this.studio.runDir;
    if (!runDir) return Promise.resolve();
    const options = this.resumeOptions?.runDir === runDir ? this.resumeOptions : null;
    return this.send('resume', async () => {
      const started = await this.api.call('resumeRun', { runDir, ...(options?.attempt() ?? {}) });
      // the next ending gets its own options, from the record this session writes
      this.resumeOptions = null;
      this.studio.runId = started.runId;
      this.studio.runDir = started.runDir;
    }, (e) => options?.takeError(e) ?? false);
  }
}
