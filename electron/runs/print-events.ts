// How a run's events read on a terminal or in a log: the progress line
// (rewritten in place on a TTY, throttled otherwise) and one line per notice.
// The CLI prints a child's events with it, and an in-process run its own.
import { describeBest } from './best-adapter.js';
import { trainsAdapter } from '../training/config.js';
import { ProgressReporter } from '../training/progress.js';
import type { RunEvent } from './events.js';
import { countOf } from '../text/plural.js';

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function eventPrinter(stream: { write(text: string): unknown; isTTY?: boolean }): (e: RunEvent) => void {
  const progress = new ProgressReporter(stream);
  return (e) => {
    switch (e.type) {
      case 'started':
        if (e.resumedFrom !== null) progress.message(`resuming ${e.runDir} from step ${e.resumedFrom} of ${e.totalSteps}`);
        progress.message(`training ${e.method} on ${countOf(e.trainExamples, 'example')} for ${countOf(e.totalSteps, 'step')}; ${e.engine}`);
        break;
      case 'step':
        progress.update({ step: e.step, totalSteps: e.totalSteps, loss: e.loss, lr: e.lr, tokensPerSecond: e.tokensPerSecond, elapsedSeconds: e.elapsedSeconds });
        break;
      case 'eval':
        progress.message(`eval at step ${e.step}: loss ${e.evalLoss.toFixed(4)}`);
        break;
      case 'log':
        progress.message(e.level === 'warning' ? `warning: ${e.message}` : e.message);
        break;
      case 'checkpoint':
        progress.message(`checkpoint step ${e.step}: ${formatBytes(e.bytes)} in ${(e.seconds * 1000).toFixed(0)} ms (${e.dir})`);
        break;
      case 'paused':
        progress.message(`paused after step ${e.step}`);
        break;
      case 'resumed':
        progress.message(`resumed after step ${e.step}`);
        break;
      case 'finished':
        if (e.summary.stopped_early) progress.message(e.summary.stopped_early);
        progress.message(`saved ${trainsAdapter(e.summary.method) ? 'adapter' : 'model'} to ${e.summary.out}`);
        if (e.summary.best) progress.message(describeBest(e.summary.best));
        break;
      case 'cancelled':
      case 'failed':
        break; // the caller reports the end (an error line, an exit code)
    }
  };
}
