// The generation child (forked by generate-process.ts): it holds the try
// page's open models and runs one generation at a time, on the device the
// job asks for (a GPU's CUDA context lives here, never in the app). It says
// 'ready' once it listens, answers every request id once ('generated' or
// 'failed', with the error the user should see), and ends when the parent
// disconnects: that is how the parent frees the models, and a parent that
// died takes its child with it.
import type { ApiErrorBody } from '../api/contract.js';
import { errorBody } from '../service/errors.js';
import { GenerateSessions } from './generate-sessions.js';
import { parseToWorker, type FromWorkerMessage } from './generate-protocol.js';

if (typeof process.send !== 'function') {
  process.stderr.write('peft-studio: this module is the generation child process; the app and `peft-studio serve` start it.\n');
  process.exit(2);
}

const sessions = new GenerateSessions();
let queue: Promise<void> = Promise.resolve();
/** requests received and not answered yet */
let inFlight = 0;

function send(message: FromWorkerMessage): void {
  if (process.connected) process.send!(message);
}

/** The id of a request, as far as it can be read (to answer even a malformed one). */
function idOf(raw: unknown): number {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : 0;
}

async function handle(raw: unknown): Promise<void> {
  let error: ApiErrorBody;
  try {
    const message = parseToWorker(raw);
    const response = await sessions.generate(message.job);
    send({ type: 'generated', id: message.id, response, state: sessions.state });
    return;
  } catch (e) {
    // the engine's own errors (ps::Error, ps::OutOfMemory) arrive as Error with their message
    error = errorBody(e);
  }
  send({ type: 'failed', id: idOf(raw), error, state: sessions.state });
}

process.on('message', (raw: unknown) => {
  inFlight += 1;
  queue = queue.then(() => handle(raw)).finally(() => (inFlight -= 1));
});
process.on('disconnect', () => {
  // Idle: free the engines in order. Mid-generation (the parent died): the
  // engine is busy on its own threads, so leave it to the exit, which frees
  // the memory and the GPU context all the same.
  if (inFlight === 0) sessions.disposeAll();
  process.exit(0);
});

send({ type: 'ready', pid: process.pid });
