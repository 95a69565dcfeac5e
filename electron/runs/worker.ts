// The child process of a run (forked by manager.ts). It waits for one
// 'start' message, trains, and sends every event up the IPC channel. Pause,
// resume and cancel arrive as messages; SIGINT/SIGTERM (Ctrl-C reaches the
// whole process group) and a vanished parent count as cancel, so the run
// stops at a step boundary with a checkpoint instead of dying mid-write.
import { RunControl } from './control.js';
import type { ControlMessage, RunEvent, WorkerMessage } from './events.js';
import { executeRun } from './execute.js';

if (typeof process.send !== 'function') {
  process.stderr.write('peft-studio: this module is the training child process; start runs with `peft-studio train` or the app.\n');
  process.exit(2);
}

const control = new RunControl();
let started = false;

function send(event: RunEvent): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    const message: WorkerMessage = { type: 'event', event };
    process.send!(message, undefined, {}, () => resolve());
  });
}

process.on('message', (message: ControlMessage) => {
  switch (message.type) {
    case 'start':
      if (started) return;
      started = true;
      void run(message.config, message.resume, message.overwrite ?? false);
      return;
    case 'pause':
      control.pause();
      return;
    case 'resume':
      control.resume();
      return;
    case 'cancel':
      control.cancel(message.reason ?? 'user');
      return;
  }
});
// the parent gone, or the system stopping the process: a shutdown; Ctrl-C in the terminal: the user
process.on('disconnect', () => control.cancel('shutdown'));
process.on('SIGINT', () => control.cancel('user'));
process.on('SIGTERM', () => control.cancel('shutdown'));

async function run(config: Extract<ControlMessage, { type: 'start' }>['config'], resume: boolean, overwrite: boolean): Promise<void> {
  let pending: Promise<void> = Promise.resolve();
  const end = await executeRun(config, { resume, overwrite, control, emit: (e) => void (pending = send(e)) });
  await pending; // the end event is on its way before the channel closes
  process.exit(end.type === 'failed' ? 1 : 0);
}
