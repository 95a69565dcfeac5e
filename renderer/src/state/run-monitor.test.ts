// RunMonitor replays real RunEvent sequences (captured from TrainingRun on
// the demo model; see testdata/README.md) and must show what happened.
import { describe, expect, it } from 'vitest';
import type { RunEvent, RunHistory } from '../../../electron/api/contract.js';
import { cancelledMessage, checkpointStep, EARLIER_LOG_NOTE, entryMessage, RunMonitor, STATUS_WORDS, statusBadge, statusWords } from './run-monitor.svelte.js';
import pausedResumed from './testdata/run-events-paused-resumed.json';
import cancelled from './testdata/run-events-cancelled.json';
import failed from './testdata/run-events-failed.json';

const PAUSED = pausedResumed as RunEvent[];
const CANCELLED = cancelled as RunEvent[];
const FAILED = failed as RunEvent[];

function steps(events: RunEvent[]): Extract<RunEvent, { type: 'step' }>[] {
  return events.filter((e): e is Extract<RunEvent, { type: 'step' }> => e.type === 'step');
}

describe('RunMonitor on a run paused at step 3, resumed, finished', () => {
  it('tracks status, progress and ETA event by event', () => {
    const m = new RunMonitor();
    expect(m.status).toBe('waiting');
    expect(m.progress).toBeNull();

    m.apply(PAUSED[0]); // started
    expect(m.status).toBe('running');
    expect(m.totalSteps).toBe(6);
    expect(m.trainExamples).toBe(99);
    expect(m.evalExamples).toBe(12);
    expect(m.progress).toBe(0);
    expect(m.canPause && m.canCancel && !m.canResume).toBe(true);

    m.apply(PAUSED[1]);
    m.apply(PAUSED[2]); // step 2 of 6
    expect(m.step).toBe(2);
    expect(m.progress).toBeCloseTo(2 / 6, 15);
    expect(m.etaSeconds).toBe(0.03554084999999998);
    expect(m.tokensPerSecond).toBe(275.29761392675624);
    expect(m.memory?.weightBytes).toBe(7607552);

    for (const e of PAUSED.slice(3, 7)) m.apply(e); // step 3, eval, checkpoint, paused
    expect(PAUSED[6].type).toBe('paused');
    expect(m.status).toBe('paused');
    expect(m.canPause).toBe(false);
    expect(m.canResume).toBe(true);
    expect(m.canCancel).toBe(true);
    expect(m.lastCheckpoint).toEqual({ step: 3, dir: '/tmp/d2/paused/checkpoints/step-3', bytes: 254213 });

    m.apply(PAUSED[7]); // resumed
    expect(m.status).toBe('running');
    for (const e of PAUSED.slice(8)) m.apply(e);

    expect(m.status).toBe('finished');
    expect(m.live).toBe(false);
    expect(m.canPause || m.canResume || m.canCancel || m.canResumeRun).toBe(false);
    expect(m.step).toBe(6);
    expect(m.progress).toBe(1);
    expect(m.etaSeconds).toBeNull(); // nothing left: the page says finished, not "0 s"
    expect(m.elapsedSeconds).toBe(0.23108034900000002);
    expect(m.summary?.final_loss).toBe(13.44318492917176);
  });

  it('charts every step and eval once, in order', () => {
    const m = new RunMonitor();
    for (const e of PAUSED) m.apply(e);
    expect(m.points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m.points.map((p) => p.loss)).toEqual(steps(PAUSED).map((s) => s.loss));
    expect(m.points[0]).toEqual({ step: 1, loss: 13.579397381943505, lr: 0.0002 });
    expect(m.points[5].lr).toBe(0.000033333333333333335);
    expect(m.evals).toEqual([
      { step: 3, evalLoss: 12.967843019425104 },
      { step: 6, evalLoss: 12.952715744107351 },
    ]);
    expect(m.bestEvalLoss).toBe(12.952715744107351);
    expect(m.latestLoss).toBe(13.44318492917176);
  });

  it('logs the run in words, newest last', () => {
    const m = new RunMonitor();
    for (const e of PAUSED) m.apply(e);
    const lines = m.log.map((l) => l.message);
    expect(lines[0]).toBe('started: 6 steps, 99 training and 12 eval examples; cpu (avx2+fma kernels, gemm avx512, 1 threads)');
    expect(lines).toContain('eval at step 3: loss 12.9678 (best 12.9678)');
    expect(lines).toContain('checkpoint at step 3: /tmp/d2/paused/checkpoints/step-3');
    expect(lines.indexOf('paused after step 3')).toBeLessThan(lines.indexOf('resumed at step 3'));
    expect(lines[lines.length - 1]).toBe('finished: 6 steps, final loss 13.4432, final eval loss 12.9527');
    expect(m.log.every((l) => l.level === 'info')).toBe(true);
  });
});

describe('RunMonitor on a cancelled run', () => {
  it('ends cancelled at step 4 of 20, resumable from its checkpoint', () => {
    const m = new RunMonitor();
    for (const e of CANCELLED) m.apply(e);
    expect(m.status).toBe('cancelled');
    expect(m.step).toBe(4);
    expect(m.progress).toBe(0.2);
    expect(m.etaSeconds).toBeNull();
    // the app's words, from the event's fields (its message is the CLI's: "continue with peft-studio train --resume …")
    expect(m.message).toBe('Cancelled after step 4 of 20; a checkpoint at step 4 was saved — Resume continues from it.');
    expect(m.log[m.log.length - 1].message).toBe(m.message);
    expect(m.resumable).toBe(true);
    expect(m.canResumeRun).toBe(true);
    expect(m.canCancel).toBe(false);
    expect(m.evals.map((e) => e.step)).toEqual([2, 4]);
  });

  it('a resumed session replaces the steps it repeats', () => {
    const m = new RunMonitor();
    for (const e of CANCELLED) m.apply(e);
    // the resumed worker continues from the step-4 checkpoint: its step 3
    // would be a replay after an older checkpoint; the newest one wins
    const [, , s3] = steps(CANCELLED);
    m.apply({ ...s3, loss: 1.5 });
    expect(m.points.map((p) => [p.step, p.loss])).toEqual([[1, steps(CANCELLED)[0].loss], [2, steps(CANCELLED)[1].loss], [3, 1.5]]);
    expect(m.status).toBe('cancelled'); // a step alone does not reopen an ended run; 'started' does
    m.apply({ ...(CANCELLED[0] as Extract<RunEvent, { type: 'started' }>), startStep: 4, resumedFrom: 4 });
    expect(m.status).toBe('running');
    expect(m.step).toBe(4);
    expect(m.resumable).toBe(false);
    expect(m.message).toBeNull();
    expect(m.log[m.log.length - 1].message).toBe('resumed from the checkpoint at step 4 of 20; cpu (avx2+fma kernels, gemm avx512, 1 threads)');
  });
});

describe('RunMonitor on a failed run', () => {
  it('shows the message and no resume when the run cannot continue', () => {
    const m = new RunMonitor();
    for (const e of FAILED) m.apply(e);
    expect(m.status).toBe('failed');
    expect(m.failureKind).toBe('error');
    expect(m.message).toBe("--seq-len 512 exceeds the model's max_position_embeddings (256); use --seq-len 256 or less");
    expect(m.canResumeRun).toBe(false);
    expect(m.points).toEqual([]);
    expect(m.progress).toBeNull();
    expect(m.log).toEqual([{ level: 'error', message: m.message }]);
  });

  it('offers resume when the failure left a checkpoint', () => {
    const m = new RunMonitor();
    for (const e of CANCELLED.slice(0, 7)) m.apply(e);
    m.apply({ type: 'failed', kind: 'killed', message: 'the training process was killed (SIGKILL)', step: 4, resumable: true, checkpoint: '/tmp/d2/cancelled/checkpoints/step-4' });
    expect(m.status).toBe('failed');
    expect(m.canResumeRun).toBe(true);
    expect(m.step).toBe(4);
  });
});

describe('RunMonitor details', () => {
  it('takes the speed of every token read when the step reports it', () => {
    const m = new RunMonitor();
    const step = steps(PAUSED)[0];
    m.apply(step);
    expect(m.tokensPerSecond).toBe(step.tokensPerSecond);
    expect(m.inputTokensPerSecond).toBeNull(); // today's events: trained tokens only
    m.apply({ ...step, step: 2, inputTokensPerSecond: 5012.5 } as RunEvent);
    expect(m.inputTokensPerSecond).toBe(5012.5);
  });

  it('reads NaN (null on the wire) as an unknown ETA', () => {
    const m = new RunMonitor();
    const [s1] = steps(PAUSED);
    m.apply({ ...s1, etaSeconds: null as unknown as number });
    expect(m.etaSeconds).toBeNull();
    m.apply({ ...s1, step: 2, etaSeconds: Number.NaN });
    expect(m.etaSeconds).toBeNull();
  });

  it('draws a past run from its history', () => {
    const s = steps(CANCELLED);
    const history: RunHistory = {
      dir: '/tmp/d2/cancelled',
      entry: {
        dir: '/tmp/d2/cancelled', model: '/m', method: 'lora', status: 'cancelled', created: '', updated: '',
        steps_done: 4, total_steps: 20, best_eval_loss: 12.945465707596705, adapter: '/tmp/d2/cancelled/checkpoints/step-4', resumable: true,
        message: 'cancelled after step 4 of 20; continue with peft-studio train --resume /tmp/d2/cancelled',
      },
      config: {} as RunHistory['config'],
      steps: s.map((e) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond, elapsedSeconds: null })),
      evals: [{ step: 2, evalLoss: 12.974549816758278 }, { step: 4, evalLoss: 12.945465707596705 }],
      trainableParams: null,
      warnings: [],
      trainedPromptFormat: null,
      runId: null,
    };
    const m = new RunMonitor();
    m.loadHistory(history);
    expect(m.status).toBe('cancelled');
    expect(m.step).toBe(4);
    expect(m.progress).toBe(0.2);
    expect(m.points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(m.bestEvalLoss).toBe(12.945465707596705);
    expect(m.tokensPerSecond).toBe(s[3].tokensPerSecond);
    expect(m.canResumeRun).toBe(true);
    expect(m.message).toBe('Cancelled after step 4 of 20; a checkpoint at step 4 was saved — Resume continues from it.');
  });

  it('rebuilds the log it can from the history: a note, then each evaluation with the best so far', () => {
    const m = new RunMonitor();
    m.loadHistory({ ...cancelledHistory(null), evals: [{ step: 2, evalLoss: 12.5 }, { step: 4, evalLoss: 12.75 }] });
    expect(m.log.map((l) => l.message)).toEqual([
      EARLIER_LOG_NOTE,
      'eval at step 2: loss 12.5000 (best 12.5000)',
      'eval at step 4: loss 12.7500 (best 12.5000)',
    ]);
    // loaded again (a resync): not doubled
    m.loadHistory(cancelledHistory(null));
    expect(m.log.filter((l) => l.message === EARLIER_LOG_NOTE)).toHaveLength(1);
    // nothing done yet: nothing to say
    const fresh = new RunMonitor();
    fresh.loadHistory({ ...cancelledHistory(null), steps: [], evals: [] });
    expect(fresh.log).toEqual([]);
  });

  it('puts the record\'s lines before those heard live', () => {
    const m = new RunMonitor();
    m.apply({ type: 'log', level: 'warning', message: 'heard live' });
    m.loadHistory({ ...cancelledHistory('live'), evals: [{ step: 2, evalLoss: 12.5 }] });
    expect(m.log.map((l) => l.message)).toEqual([EARLIER_LOG_NOTE, 'eval at step 2: loss 12.5000 (best 12.5000)', 'heard live']);
  });

  it('a finished run\'s progress is complete even with no step counted (never an indeterminate bar)', () => {
    const m = new RunMonitor();
    m.loadHistory({ ...cancelledHistory(null), steps: [], entry: { ...cancelledHistory(null).entry, status: 'finished', steps_done: 0, total_steps: 0, resumable: false } });
    expect(m.status).toBe('finished');
    expect(m.progress).toBe(1);
    expect(m.etaSeconds).toBeNull();
    const live = new RunMonitor();
    live.apply({ type: 'finished', summary: { ...(PAUSED.find((e) => e.type === 'finished') as Extract<RunEvent, { type: 'finished' }>).summary, steps: 0 } });
    expect(live.progress).toBe(1);
  });

  it('words every status as the Train and Runs pages show it', () => {
    expect(STATUS_WORDS.running).toBe('training');
    // a run the app's shutdown stopped is not called cancelled: the user did not cancel it
    expect(statusWords('cancelled', 'shutdown')).toBe('stopped');
    expect(statusWords('cancelled', 'user')).toBe('cancelled');
    expect(statusWords('cancelled')).toBe('cancelled');
    const m = new RunMonitor();
    m.apply({ type: 'cancelled', step: 4, checkpoint: null, message: 'stopped because PEFT Studio shut down after step 4 of 9', reason: 'shutdown' });
    expect(m.stoppedBy).toBe('shutdown');
    expect(m.message).toMatch(/^Stopped after step 4 .*because PEFT Studio shut down/);
    expect(STATUS_WORDS.waiting).toBe('starting…');
    expect(statusBadge('running')).toBe('accent');
    expect(statusBadge('missing')).toBe('bad');
    expect(statusBadge('paused')).toBe('warn');
  });

  it('a page that heard only the ending takes both speeds from the record\'s last step, as one', () => {
    const s = steps(PAUSED);
    const m = new RunMonitor();
    m.apply(PAUSED.find((e) => e.type === 'finished')!);
    m.loadHistory({
      dir: '/r', runId: null, config: {} as RunHistory['config'],
      entry: { dir: '/r', model: '/m', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 6, total_steps: 6, best_eval_loss: null, adapter: null, resumable: false, message: null },
      steps: s.map((e, i) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: 0, tokensPerSecond: 100 + i, elapsedSeconds: null, inputTokensPerSecond: 900 + i })),
      evals: [],
      trainableParams: null,
      warnings: [],
      trainedPromptFormat: null,
    });
    expect(m.status).toBe('finished');
    expect([m.tokensPerSecond, m.inputTokensPerSecond]).toEqual([100 + s.length - 1, 900 + s.length - 1]);
  });

  it('keeps live points and status when the history arrives late', () => {
    const s = steps(PAUSED);
    const m = new RunMonitor();
    m.apply(s[3]);
    m.apply(s[4]); // live: steps 4, 5
    m.loadHistory({
      dir: '/r', runId: 'x', config: {} as RunHistory['config'],
      entry: { dir: '/r', model: '/m', method: 'lora', status: 'interrupted', created: '', updated: '', steps_done: 3, total_steps: 6, best_eval_loss: null, adapter: null, resumable: true, message: null },
      steps: s.slice(0, 4).map((e) => ({ step: e.step, loss: 99, lr: e.lr, gradNorm: 0, tokensPerSecond: 0, elapsedSeconds: null })),
      evals: [],
      trainableParams: null,
      warnings: [],
      trainedPromptFormat: null,
    });
    expect(m.points.map((p) => [p.step, p.loss])).toEqual([[1, 99], [2, 99], [3, 99], [4, s[3].loss], [5, s[4].loss]]);
    expect(m.status).toBe('running');
    expect(m.step).toBe(5);
  });
});

/** The cancelled run's folder as runHistory reports it (run.json still says cancelled). */
function cancelledHistory(runId: string | null): RunHistory {
  const s = steps(CANCELLED);
  return {
    dir: '/tmp/d2/cancelled',
    entry: {
      dir: '/tmp/d2/cancelled', model: '/m', method: 'lora', status: 'cancelled', created: '', updated: '',
      steps_done: 4, total_steps: 20, best_eval_loss: null, adapter: '/tmp/d2/cancelled/checkpoints/step-4', resumable: true,
      message: 'cancelled after step 4 of 20; continue with peft-studio train --resume /tmp/d2/cancelled',
    },
    config: {} as RunHistory['config'],
    steps: s.map((e) => ({ step: e.step, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond, elapsedSeconds: null })),
    evals: [],
    trainableParams: null,
    warnings: [],
    trainedPromptFormat: null,
    runId,
  };
}

describe('RunMonitor while a resumed session starts', () => {
  it('opened on a folder a live session is resuming: starting, not the old cancelled, no second resume', () => {
    const m = new RunMonitor();
    m.loadHistory(cancelledHistory('the-resumed-session'));
    expect(m.status).toBe('waiting');
    expect(m.live).toBe(true);
    expect(m.canResumeRun).toBe(false);
    expect(m.message).toBeNull();
    expect(m.step).toBe(4);
    expect(m.points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    m.apply({ ...(CANCELLED[0] as Extract<RunEvent, { type: 'started' }>), startStep: 4, resumedFrom: 4 });
    expect(m.status).toBe('running');
    // the same folder with no live session is the ended run, resumable
    const past = new RunMonitor();
    past.loadHistory(cancelledHistory(null));
    expect(past.status).toBe('cancelled');
    expect(past.canResumeRun).toBe(true);
  });

  it('awaitSession turns an ended run into a starting one, keeping its chart', () => {
    const m = new RunMonitor();
    for (const e of CANCELLED) m.apply(e);
    expect(m.canResumeRun).toBe(true);
    m.awaitSession();
    expect(m.status).toBe('waiting');
    expect(m.canResumeRun).toBe(false);
    expect(m.message).toBeNull();
    expect(m.points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(m.step).toBe(4);
  });
});

describe('RunMonitor.applyAll (a burst of queued events)', () => {
  it('ends exactly where applying the events one by one ends', () => {
    for (const events of [PAUSED, CANCELLED, FAILED]) {
      const one = new RunMonitor();
      for (const e of events) one.apply(e);
      const all = new RunMonitor();
      all.applyAll(events);
      const view = (m: RunMonitor) => ({
        status: m.status, step: m.step, totalSteps: m.totalSteps, points: m.points, evals: m.evals, log: m.log,
        tokensPerSecond: m.tokensPerSecond, etaSeconds: m.etaSeconds, elapsedSeconds: m.elapsedSeconds, memory: m.memory,
        message: m.message, resumable: m.resumable, summary: m.summary, bestEvalLoss: m.bestEvalLoss,
      });
      expect(view(all)).toEqual(view(one));
    }
  });

  it('replaces repeated steps within one burst, and copies the series once', () => {
    const [s1] = steps(PAUSED);
    const m = new RunMonitor();
    m.apply({ ...s1, step: 1 });
    const before = m.points;
    const burst: RunEvent[] = [2, 3, 4, 3, 4, 5].map((step, i) => ({ ...s1, step, loss: i }));
    m.applyAll(burst);
    expect(before).toHaveLength(1); // the old array is not mutated
    expect(m.points.map((p) => [p.step, p.loss])).toEqual([[1, s1.loss], [2, 0], [3, 3], [4, 4], [5, 5]]);
    expect(m.step).toBe(5);
  });
});

describe('cancelledMessage and checkpointStep', () => {
  it('says when PEFT Studio stopped the run, not the user', () => {
    expect(cancelledMessage(365, 20000, 365, 'shutdown')).toBe(
      'Stopped after step 365 of 20000 because PEFT Studio shut down (it was closed, or its server stopped); a checkpoint at step 365 was saved — Resume continues from it.',
    );
    expect(cancelledMessage(365, 20000, 365)).toMatch(/^Cancelled after step 365 of 20000;/);
  });

  it('says where it stopped, what was kept, and the way on', () => {
    expect(cancelledMessage(7, 200, 7)).toBe('Cancelled after step 7 of 200; a checkpoint at step 7 was saved — Resume continues from it.');
    expect(cancelledMessage(7, null, 5)).toBe('Cancelled after step 7; a checkpoint at step 5 was saved — Resume continues from it.');
    expect(cancelledMessage(0, 20, null)).toBe('Cancelled before the first step finished; nothing was saved.');
    expect(cancelledMessage(3, 20, null)).toBe('Cancelled after step 3 of 20; no checkpoint was saved, so a resume starts over from step 0.');
  });
  it('words a cancelled record for the app and leaves other endings as recorded', () => {
    const entry = cancelledHistory(null).entry;
    expect(entryMessage(entry)).toBe('Cancelled after step 4 of 20; a checkpoint at step 4 was saved — Resume continues from it.');
    expect(entryMessage({ ...entry, status: 'failed', message: 'out of memory' })).toBe('out of memory');
  });
  it('reads the step from a checkpoint folder', () => {
    expect(checkpointStep('/tmp/d2/cancelled/checkpoints/step-4')).toBe(4);
    expect(checkpointStep('C:\\runs\\a\\checkpoints\\step-120\\')).toBe(120);
    expect(checkpointStep('/tmp/step-4x')).toBeNull();
    expect(checkpointStep(null)).toBeNull();
  });
});

describe('an interrupted run, in the app', () => {
  it('says what happened and that Resume is the way on, not a command line', () => {
    const history = cancelledHistory(null);
    history.entry = { ...history.entry, status: 'interrupted', message: 'the process (pid 42) is gone; continue with peft-studio train --resume /tmp/d2/cancelled' };
    const m = new RunMonitor();
    m.loadHistory(history);
    expect(m.status).toBe('interrupted');
    expect(m.message).toBe('Interrupted after step 4: the training process is gone (a crash, a kill, or the app closed). Resume continues from the checkpoint at step 4.');
    expect(m.canResumeRun).toBe(true);
  });
});

describe('RunMonitor: the settings that look like a slip', () => {
  // as the worker sends it for a demo run of --steps 20 --warmup-steps 20 (electron/service/service-run-warnings.test.ts runs one)
  const warmup = {
    fields: ['warmupSteps' as const, 'steps' as const],
    cli: "--warmup-steps 20 is not below the run's 20 steps: the learning rate rises for the whole run and never reaches --lr 0.0002; use fewer warmup steps",
    app: "Warmup steps 20 is not below the run's 20 steps: the learning rate rises for the whole run and never reaches the Learning rate (0.0002); use fewer warmup steps, or more Steps",
  };
  const started = CANCELLED[0] as Extract<RunEvent, { type: 'started' }>;

  it('takes them from the started event; a started event recorded before they were sent has none', () => {
    const old = new RunMonitor();
    expect(old.warnings).toBeNull(); // not said yet
    old.apply(started);
    expect('warnings' in started).toBe(false);
    expect(old.warnings).toEqual([]);
    const m = new RunMonitor();
    m.apply({ ...started, warnings: [warmup] });
    expect(m.warnings).toEqual([warmup]);
    // a record read after the live start does not overrule it
    m.loadHistory({ ...cancelledHistory('live'), warnings: [] });
    expect(m.warnings).toEqual([warmup]);
  });

  it('a page opened later (a reload) takes them from the record; the next session\'s start says its own', () => {
    const m = new RunMonitor();
    m.loadHistory({ ...cancelledHistory(null), warnings: [warmup] });
    expect(m.warnings).toEqual([warmup]);
    m.awaitSession();
    m.apply({ ...started, startStep: 4, resumedFrom: 4, warnings: [] });
    expect(m.warnings).toEqual([]);
  });
});

describe('RunMonitor on a run that early stopping ended, with a kept best adapter', () => {
  it('keeps the reason and the best adapter of the finished event, and says them in the log', () => {
    const m = new RunMonitor();
    m.apply(PAUSED[0]);
    const base = (PAUSED.find((e) => e.type === 'finished') as Extract<RunEvent, { type: 'finished' }>).summary;
    const reason = 'stopped early at step 26: the eval loss did not improve for 3 evaluations; best 2.3755 at step 20';
    m.apply({ type: 'finished', summary: { ...base, steps: 26, stopped_early: reason, best: { dir: '/runs/a/best', step: 20, eval_loss: 2.375526921048937 } } });
    expect(m.status).toBe('finished');
    expect(m.stoppedEarly).toBe(reason);
    expect(m.best).toEqual({ dir: '/runs/a/best', step: 20, eval_loss: 2.375526921048937 });
    const said = m.log.map((l) => l.message);
    expect(said).toContain(reason);
    expect(said).toContain('best eval loss 2.3755 at step 20: /runs/a/best');
    // a run that went to the end says neither
    const plain = new RunMonitor();
    plain.apply(PAUSED[0]);
    plain.apply({ type: 'finished', summary: base });
    expect(plain.stoppedEarly).toBeNull();
    expect(plain.best).toBeNull();
  });
});
