// Crash points for the kill tests: with PEFT_STUDIO_CRASH_AT="<point>@<step>"
// the training process SIGKILLs itself when it reaches that point, so a test
// can land a real kill inside a checkpoint write, a moment no timer hits
// reliably. Without the variable this does nothing.
export type CrashPoint =
  | 'step-start' // before an optimizer step's first forward pass
  | 'checkpoint-files' // checkpoint files written in the temp folder, not yet renamed
  | 'checkpoint-renamed' // folder renamed into place, COMPLETE not yet written
  | 'checkpoint-done' // COMPLETE written, older checkpoints not yet pruned
  | 'final-adapter'; // the final adapter written, run.json not yet 'finished'

export function crashPoint(point: CrashPoint, step: number): void {
  const want = process.env.PEFT_STUDIO_CRASH_AT;
  if (want && want === `${point}@${step}`) process.kill(process.pid, 'SIGKILL');
}
