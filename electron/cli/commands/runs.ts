// `peft-studio runs`: the runs this user started (from the run index), with
// status, progress, best eval loss and where the adapter is. A run whose
// process is gone shows as interrupted, resumable with train --resume.
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { indexFile, listRuns, type RunIndexEntry } from '../../runs/run-index.js';
import { countOf } from '../../text/plural.js';
import { describeBest } from '../../runs/best-adapter.js';

export const runsSpec: CommandSpec = {
  name: 'runs',
  summary: 'List training runs: status, steps, best eval loss, adapter location.',
  positionals: [],
  flags: [{ name: 'json', kind: 'boolean', help: 'print the list as JSON' }],
  notes: ['The index lives in $PEFT_STUDIO_HOME/runs.json (default ~/.peft-studio); each run folder is the source of truth.'],
};

function table(runs: RunIndexEntry[]): string {
  const rows = runs.map((r) => [
    r.status,
    `${r.steps_done}/${r.total_steps ?? '?'}`,
    r.best_eval_loss === null ? '-' : r.best_eval_loss.toFixed(4),
    r.dora ? `${r.method}+dora` : r.method,
    r.created ? r.created.slice(0, 19).replace('T', ' ') : '-',
    r.dir,
    r.adapter ?? '-',
  ]);
  const header = ['STATUS', 'STEPS', 'BEST EVAL', 'METHOD', 'CREATED', 'RUN', 'ADAPTER'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export const runsCommand: Command = {
  spec: runsSpec,
  async run(args, io) {
    const runs = await listRuns();
    if (args.boolean('json')) {
      io.stdout(JSON.stringify(runs, null, 2) + '\n');
      return;
    }
    if (runs.length === 0) {
      io.stdout(`no runs yet (index: ${indexFile()})\n`);
      return;
    }
    io.stdout(table(runs));
    for (const r of runs) {
      if (r.stop_reason) io.stdout(`${r.dir}: ${r.stop_reason}\n`);
      if (r.best) io.stdout(`${r.dir}: ${describeBest(r.best)}\n`);
    }
    const resumable = runs.filter((r) => r.status === 'interrupted' || r.status === 'cancelled' || r.status === 'failed');
    if (resumable.length) io.stderr(`${countOf(resumable.length, 'run')} can be continued with: peft-studio train --resume RUN\n`);
  },
};
