// Waiting for Ctrl-C or SIGTERM. The first one starts a clean shutdown; a
// second one while that is still running (say, a checkpoint being written)
// means the user insists, and the process exits at once.
export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopWaiter {
  /** resolves with the first signal */
  stopped: Promise<StopSignal>;
  /** removes the handlers (after the shutdown finished) */
  dispose(): void;
}

export function waitForStopSignal(onForced: (signal: StopSignal) => void): StopWaiter {
  let first = true;
  let resolveStop!: (s: StopSignal) => void;
  const stopped = new Promise<StopSignal>((resolve) => (resolveStop = resolve));
  const handler = (signal: StopSignal) => {
    if (first) {
      first = false;
      resolveStop(signal);
    } else {
      onForced(signal);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stopped,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
