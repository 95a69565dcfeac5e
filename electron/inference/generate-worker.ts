// The generation child (forked by generate-process.ts): it holds the try
// page's open models and runs one generation at a time, on the device the
// job asks for (a GPU's CUDA context lives here, never in the app). It says
// 'ready' once it listens, answers every request id once ('generated' or
// 'failed', with the error the user should see), and ends when the parent
// disconnects: that is how the parent frees the models, and a parent that
// died takes its child with it. A job that asks for it sends its answer's
// text as it comes ('progress'); a 'stop' for a request ends it at its next
// token (it is read at once, between the engine's steps, not queued).
import type { ApiErrorBody } from '../api/contract.js';
import { errorBody } from '../service/errors.js';
import { GenerateSessions } from './generate-sessions.js';
import { parseToWorker, type FromWorkerMessage, type GenerateMessage, type ToWorkerMessage } from './generate-protocol.js';

if (typeof process.send !== 'function') {
  process.stderr.write('peft-studio: this module is the generation child process; the app and `peft-studio serve` start it.\n');
  process.exit(2);
}

const sessions = new GenerateSessions();
let queue: Promise<void> = Promise.resolve();
/** requests received and not answered yet */
let inFlight = 0;
/** ids of the requests received and not answered yet, and of those asked to stop */
const open = new Set<number>();
const stopped = new Set<number>();

function send(message: FromWorkerMessage): void {
  if (process.connected) process.send!(message);
}

/** The id of a request, as far as it can be read (to answer even a malformed one). */
function idOf(raw: unknown): number {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : 0;
}

async function handle(message: GenerateMessage): Promise<void> {
  const { id, job } = message;
  let error: ApiErrorBody;
  try {
    const response = await sessions.generate(job, {
      onText: job.stream ? (text, tokens) => send({ type: 'progress', id, text, tokens }) : undefined,
      shouldStop: () => stopped.has(id),
    });
    send({ type: 'generated', id, response, state: sessions.state });
    return;
  } catch (e) {
    // the engine's own errors (ps::Error, ps::OutOfMemory) arrive as Error with their message
    error = errorBody(e);
  } finally {
    open.delete(id);
    stopped.delete(id);
  }
  send({ type: 'failed', id, error, state: sessions.state });
}

process.on('message', (raw: unknown) => {
  let message: ToWorkerMessage;
  try {
    message = parseToWorker(raw);
  } catch (e) {
    send({ type: 'failed', id: idOf(raw), error: errorBody(e), state: sessions.state });
    return;
  }
  if (message.type === 'stop') {
    if (open.has(message.id)) stopped.add(message.id);
    return;
  }
  const generateMessage = message;
  open.add(generateMessage.id);
  inFlight += 1;
  queue = queue.then(() => handle(generateMessage)).finally(() => (inFlight -= 1));
});
process.on('disconnect', () => {
  // Idle: free the engines in order. Mid-generation (the parent died): the
  // engine is busy on its own threads, so leave it to the exit, which frees
  // the memory and the GPU context all the same.
  if (inFlight === 0) sessions.disposeAll();
  process.exit(0);
});

send({ type: 'ready', pid: process.pid });
