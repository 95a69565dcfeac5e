// What the executable does when the reader of its output goes away
// (`peft-studio runs | head -1`, `generate … | grep -m1 …`): it ends at once,
// without a word. A C program would be killed by SIGPIPE there, silently; Node
// ignores SIGPIPE, so the write fails with EPIPE instead, and an 'error' event
// nobody listens to ends the process with a stack trace.
//
// stdout closed: the reader has read what it wanted, so the command did its
// job: exit 0 (as ripgrep does; a SIGPIPE death's 141 would fail a
// `set -o pipefail` pipeline that did what its author meant).
// stderr closed: the messages, an error among them, can no longer be
// delivered, and the command is cut short before it finished: exit 1.
// Any other write error is not ours to hide: it is thrown as before.

export const CLOSED_STDOUT_EXIT = 0;
export const CLOSED_STDERR_EXIT = 1;

/** Ends the process with `code` when `stream`'s reader has closed the pipe (EPIPE). */
export function endQuietlyWhenClosed(stream: NodeJS.WriteStream, code: number): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(code);
    throw error;
  });
}
