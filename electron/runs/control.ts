// Pause and cancel requests, as the training loop sees them: it looks at them
// between optimizer steps only, so a step is never cut in half.
import type { StopCause } from './events.js';

export class RunControl {
  private paused = false;
  private cancelled = false;
  private cause: StopCause | null = null;
  private wake: (() => void) | null = null;

  get pauseRequested(): boolean {
    return this.paused;
  }

  get cancelRequested(): boolean {
    return this.cancelled;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wakeUp();
  }

  /** Who asked first to stop ('user' when nobody has). */
  get stopCause(): StopCause {
    return this.cause ?? 'user';
  }

  /** Stops at the next step boundary (a paused run stops at once); the first cause given is the one kept. */
  cancel(cause: StopCause = 'user'): void {
    this.cause ??= cause;
    this.cancelled = true;
    this.wakeUp();
  }

  /** Resolves when the pause is lifted or the run is cancelled. */
  async waitWhilePaused(): Promise<void> {
    while (this.paused && !this.cancelled) await new Promise<void>((r) => (this.wake = r));
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
