// RunCompare's reads against a transport that answers from a table we change:
// a picked run that moved on without this app hearing of it (a CLI resume)
// is read again at Refresh, its points and results replaced, not merged; an
// unchanged run is not read again.
import { describe, expect, it } from 'vitest';
import type { ApiTransport, RunHistory, RunIndexEntry } from '../../../electron/api/contract.js';
import { trainConfigFromSettings } from '../../../electron/training/settings.js';
import { RunCompare } from './run-compare.svelte.js';

const config = trainConfigFromSettings({ model: '/m', data: '/d.jsonl', out: '/runs/b', threads: 1, steps: 6, evalSplit: 0.2, evalEvery: 2 });

function entry(dir: string, steps: number, status: RunIndexEntry['status'], updated: string): RunIndexEntry {
  return { dir, model: '/m', method: 'lora', status, created: 't0', updated, steps_done: steps, total_steps: 6, best_eval_loss: null, adapter: null, resumable: status !== 'finished', message: null };
}

function history(dir: string, steps: number, status: RunIndexEntry['status'], updated: string): RunHistory {
  return {
    dir, entry: entry(dir, steps, status, updated), config, runId: null, warnings: [], trainedPromptFormat: null, trainableParams: 100,
    steps: Array.from({ length: steps }, (_, i) => ({ step: i + 1, loss: 10 - i, lr: 1e-3, gradNorm: 1, tokensPerSecond: 1, elapsedSeconds: (i + 1) * 0.5 })),
    evals: Array.from({ length: Math.floor(steps / 2) }, (_, i) => ({ step: 2 * (i + 1), evalLoss: 9 - i })),
  };
}

describe('RunCompare at Refresh', () => {
  it('reads again a run whose listed entry moved on, and only that one', async () => {
    const served = new Map<string, RunHistory>([
      ['/runs/a', history('/runs/a', 6, 'finished', 't1')],
      ['/runs/b', history('/runs/b', 3, 'interrupted', 't1')],
    ]);
    const reads: string[] = [];
    const api = {
      call: async (method: string, request: { runDir: string }) => {
        expect(method).toBe('runHistory');
        reads.push(request.runDir);
        return served.get(request.runDir)!;
      },
      onEvent: () => () => undefined,
    } as unknown as ApiTransport;
    const compare = new RunCompare(api);
    compare.toggle('/runs/a');
    compare.toggle('/runs/b');
    await expect.poll(() => compare.loaded.length).toBe(2);
    const bestOfB = () => compare.results([entry('/runs/a', 6, 'finished', 't1'), served.get('/runs/b')!.entry]).find((r) => r.label === 'Best eval loss')!.values[1];
    expect(bestOfB()).toContain('at step 2');

    // nothing changed: no read
    compare.sync([served.get('/runs/a')!.entry, served.get('/runs/b')!.entry]);
    await Promise.resolve();
    expect(reads).toEqual(['/runs/a', '/runs/b']);

    // b was resumed from a terminal to its end
    served.set('/runs/b', history('/runs/b', 6, 'finished', 't2'));
    compare.sync([served.get('/runs/a')!.entry, served.get('/runs/b')!.entry]);
    await expect.poll(() => compare.loaded.find((r) => r.dir === '/runs/b')!.history.entry.steps_done).toBe(6);
    expect(reads).toEqual(['/runs/a', '/runs/b', '/runs/b']);
    const b = compare.loaded.find((r) => r.dir === '/runs/b')!;
    expect(b.monitor.points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.monitor.evals.map((e) => e.step)).toEqual([2, 4, 6]);
    expect(bestOfB()).toContain('at step 6');
  });
});

describe('RunCompare across visits to other pages', () => {
  it('the picks are kept where they outlive the page; a new comparison picks and reads them again', async () => {
    const served = new Map<string, RunHistory>([
      ['/runs/a', history('/runs/a', 6, 'finished', 't1')],
      ['/runs/b', history('/runs/b', 6, 'finished', 't1')],
    ]);
    const api = {
      call: async (_method: string, request: { runDir: string }) => served.get(request.runDir)!,
      onEvent: () => () => undefined,
    } as unknown as ApiTransport;
    const kept = { comparedRuns: [] as string[] };
    const first = new RunCompare(api, kept);
    first.toggle('/runs/b');
    first.toggle('/runs/a');
    expect(kept.comparedRuns).toEqual(['/runs/b', '/runs/a']);
    // the Runs page opened again: a new comparison of the same runs, in the same order
    const again = new RunCompare(api, kept);
    await expect.poll(() => again.loaded.map((r) => r.dir)).toEqual(['/runs/b', '/runs/a']);
    again.toggle('/runs/b');
    expect(kept.comparedRuns).toEqual(['/runs/a']);
    // a run gone from the list leaves the kept picks too
    again.sync([]);
    expect(kept.comparedRuns).toEqual([]);
  });
});
