// The Train step: follows one run (studio.runId / runDir). It subscribes to
// that run's events, loads the run folder's history (what happened before
// the page opened, or all of a past run), feeds both to a RunMonitor, and
// sends pause / continue / cancel / resume.
import type { ApiEvent, ApiTransport } from '../../../electron/api/contract.js';
import { RunMonitor } from './run-monitor.svelte.js';
import type { Studio } from './studio.svelte.js';

type Control = 'pause' | 'continue' | 'cancel' | 'resume';

export class TrainPage {
  monitor = $state.raw(new RunMonitor());
  /** the control request in flight (its button shows busy, the others wait) */
  sending = $state<Control | null>(null);
  historyError = $state<string | null>(null);

  /** the run whose events the monitor takes */
  private following: { runId: string | null; runDir: string } | null = null;

  constructor(
    private readonly studio: Studio,
    private readonly api: ApiTransport,
  ) {}

  /**
   * Listen for run events; returns the unsubscribe. Events of this run
   * folder count whatever session sent them (a resume starts a new session,
   * with a new id, in the same folder); other runs' events are ignored.
   */
  subscribe(): () => void {
    return this.api.onEvent((e: ApiEvent) => {
      const f = this.following;
      if (e.type !== 'run' || !f || (e.runId !== f.runId && e.runDir !== f.runDir)) return;
      if (e.event.type === 'started' && e.runId !== f.runId) {
        f.runId = e.runId;
        this.studio.runId = e.runId;
      }
      this.monitor.apply(e.event);
    });
  }

  /** Show this run: a fresh monitor, then the folder's history merged under the live events. */
  async follow(runId: string | null, runDir: string): Promise<void> {
    if (this.following && this.following.runDir === runDir) {
      // same folder, new session (a resume): the monitor carries on, its 'started' resets the state
      this.following.runId = runId ?? this.following.runId;
      return;
    }
    this.following = { runId, runDir };
    this.monitor = new RunMonitor();
    this.historyError = null;
    const monitor = this.monitor;
    try {
      const history = await this.api.call('runHistory', { runDir });
      if (monitor !== this.monitor) return; // another run was chosen meanwhile
      monitor.loadHistory(history);
      // a past run that is in fact running in this process: follow it live
      if (runId === null && history.runId !== null) {
        this.following = { runId: history.runId, runDir };
        this.studio.runId = history.runId;
      }
    } catch (e) {
      if (monitor !== this.monitor) return;
      // a run started a moment ago may not have written its metrics yet; live events still come
      if (runId === null) this.historyError = e instanceof Error ? e.message : String(e);
    }
  }

  private async send(what: Control, act: () => Promise<unknown>): Promise<void> {
    this.sending = what;
    try {
      await act();
    } catch (e) {
      this.studio.showError(e);
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

  /** Continue an ended run from its newest checkpoint: a new live run in the same folder. */
  resume(): Promise<void> {
    const runDir = this.studio.runDir;
    if (!runDir) return Promise.resolve();
    return this.send('resume', async () => {
      const started = await this.api.call('resumeRun', { runDir });
      this.studio.runId = started.runId;
      this.studio.runDir = started.runDir;
    });
  }
}
