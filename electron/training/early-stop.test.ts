// The rules of --keep-best and --early-stop, value by value (Hugging Face's
// EarlyStoppingCallback: the best moves on any strictly lower loss, the
// patience resets only on an improvement by more than the threshold), the
// settings they need, and old checkpoints without the new trainer fields.
import { describe, expect, it } from 'vitest';
import { positionFromState } from '../runs/resume.js';
import type { TrainerState } from '../runs/checkpoint-format.js';
import { earlyStopReason, judgeEvaluation, shouldStopEarly, type EvalTrack } from './early-stop.js';
import { trainConfigFromSettings, type TrainSettings } from './settings.js';

/** Feeds losses at steps 10, 20, ...; returns the track after each, and the step it stops at (null: never). */
function feed(losses: number[], patience: number, delta: number): { tracks: EvalTrack[]; newBest: boolean[]; stop: number | null } {
  let track: EvalTrack = { bestEvalLoss: null, bestEvalStep: -1, evalsWithoutImprovement: 0 };
  const tracks: EvalTrack[] = [];
  const newBest: boolean[] = [];
  for (const [i, loss] of losses.entries()) {
    const judged = judgeEvaluation(track, loss, (i + 1) * 10, delta);
    track = judged.position;
    tracks.push(track);
    newBest.push(judged.newBest);
    if (shouldStopEarly(track, { patience, delta })) return { tracks, newBest, stop: (i + 1) * 10 };
  }
  return { tracks, newBest, stop: null };
}

describe('judging evaluations', () => {
  it('stops `patience` evaluations after the best; an equal loss is no improvement', () => {
    const r = feed([3, 2, 2.5, 2, 2.1, 1.9], 3, 0);
    expect(r.newBest).toEqual([true, true, false, false, false]);
    expect(r.stop).toBe(50);
    expect(r.tracks[4]).toEqual({ bestEvalLoss: 2, bestEvalStep: 20, evalsWithoutImprovement: 3 });
  });

  it('a later improvement resets the count', () => {
    const r = feed([3, 2, 2.5, 1.5, 1.6, 1.7], 3, 0);
    expect(r.stop).toBeNull();
    expect(r.tracks[5]).toEqual({ bestEvalLoss: 1.5, bestEvalStep: 40, evalsWithoutImprovement: 2 });
  });

  it('with a threshold, small improvements move the best but count towards the patience', () => {
    const r = feed([3, 2.95, 2.9, 2.0], 2, 0.1);
    expect(r.stop).toBe(30);
    expect(r.newBest).toEqual([true, true, true]);
    expect(r.tracks[2]).toEqual({ bestEvalLoss: 2.9, bestEvalStep: 30, evalsWithoutImprovement: 2 });
  });

  it('says why in one line', () => {
    expect(earlyStopReason({ step: 420, evaluations: 3, bestEvalStep: 300, bestEvalLoss: 1.2344 }, 0))
      .toBe('stopped early at step 420: the eval loss did not improve for 3 evaluations; best 1.2344 at step 300');
    expect(earlyStopReason({ step: 20, evaluations: 1, bestEvalStep: -1, bestEvalLoss: 2 }, 0.05))
      .toBe('stopped early at step 20: the eval loss did not improve by more than 0.05 for 1 evaluation; best 2.0000');
  });
});

describe('the settings keep-best and early stopping need (the app names fields)', () => {
  const base: TrainSettings = { model: '/m', data: '/d.jsonl', out: '/r', threads: 1 };
  const refusal = (s: TrainSettings) => {
    try {
      trainConfigFromSettings({ ...base, ...s });
    } catch (e) {
      return { field: (e as { field: string }).field, message: (e as Error).message };
    }
    return null;
  };
  it('needs an eval set and evaluations during the run', () => {
    expect(refusal({ earlyStop: 2, evalEvery: 5 })).toEqual({ field: 'earlyStop', message: 'earlyStop stops when the eval loss stops improving, so it needs an eval set: give evalData FILE, or evalSplit above 0' });
    expect(refusal({ keepBest: true, evalSplit: 0.2 })).toEqual({ field: 'keepBest', message: 'keepBest keeps the adapter of the lowest eval loss during the run, so it needs evalEvery N above 0 (with evaluation at the end only there is one eval loss)' });
    expect(refusal({ earlyStopDelta: 0.1, evalSplit: 0.2, evalEvery: 5 })?.field).toBe('earlyStopDelta');
    expect(refusal({ earlyStop: 0, evalSplit: 0.2, evalEvery: 5 })).toEqual({ field: 'earlyStop', message: 'earlyStop expects an integer >= 1, got 0' });
    expect(refusal({ earlyStop: 2, earlyStopDelta: -1, evalSplit: 0.2, evalEvery: 5 })).toEqual({ field: 'earlyStopDelta', message: 'earlyStopDelta expects a number >= 0, got -1' });
    // keepBest false is "not given", as a switch
    expect(refusal({ keepBest: false })).toBeNull();
  });
  it('resolves them, with an eval file or a split', () => {
    const c = trainConfigFromSettings({ ...base, evalData: '/e.jsonl', evalEvery: 5, keepBest: true, earlyStop: 3, earlyStopDelta: 0.01 });
    expect(c).toMatchObject({ keepBest: true, earlyStop: 3, earlyStopDelta: 0.01 });
    expect(trainConfigFromSettings(base)).toMatchObject({ keepBest: false, earlyStop: 0, earlyStopDelta: 0 });
  });
});

describe('a checkpoint of an older version (no best step, no patience count)', () => {
  it('resumes with the count at 0 and the best loss it recorded', () => {
    const state = {
      step: 40, elapsed_s: 1, final_loss: 1.5,
      data: { epoch: 0, step_in_epoch: 40 },
      eval: { last_eval_step: 40, final_eval_loss: 2.5, best_eval_loss: 2.25 },
    } as TrainerState;
    expect(positionFromState(state)).toMatchObject({ bestEvalLoss: 2.25, bestEvalStep: -1, evalsWithoutImprovement: 0 });
    const now = { ...state, eval: { ...state.eval, best_eval_step: 30, evals_without_improvement: 1 } } as TrainerState;
    expect(positionFromState(now)).toMatchObject({ bestEvalLoss: 2.25, bestEvalStep: 30, evalsWithoutImprovement: 1 });
  });
});
