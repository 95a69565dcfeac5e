// What a stop signal (Ctrl-C, SIGTERM) does to a command that stops in two
// steps (train: at the next step with a checkpoint, then at once; generate:
// the answer where it is, then at once): the first stops gently, a second
// one stops at once; a second one within SAME_SIGNAL_MS of the first is the
// same signal delivered twice, not a second press (GNU timeout sends its
// signal to the command and then to the whole process group, which the
// command is in), so it is ignored.

export const SAME_SIGNAL_MS = 500;

export function stopSignalAction(count: number, msSinceFirst: number): 'cancel' | 'kill' | 'ignore' {
  if (count === 1) return 'cancel';
  return msSinceFirst < SAME_SIGNAL_MS ? 'ignore' : 'kill';
}
