// The service's own resources over time (review M2, L1): the models the try
// page keeps open are freed before a run starts and after a while idle, and
// nothing starts once close() has begun.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, ApiMethod, DemoPaths, GenerateResponse, StartedRun } from '../api/contract.js';
import { tempDir } from '../testing/e2e-fixtures.js';
import { Generator } from './generate.js';
import { createStudioService, type StudioService } from './service.js';

process.env.PEFT_STUDIO_HOME = tempDir('lifecycle-home');

let demo: DemoPaths;
const request = (adapter: string | null = null) => ({ model: demo.model, adapter, prompt: 'Question: What color is the fox?\nAnswer:', maxNewTokens: 4, temperature: 0, seed: 1 });
const runSettings = (out: string) => ({
  model: demo.model,
  data: demo.datasets.find((d) => d.name === 'task-train')!.path,
  method: 'lora',
  out,
  hyper: { steps: 1, threads: 1, batchSize: 2 },
});

async function ok<T>(service: StudioService, method: ApiMethod, req: unknown): Promise<T> {
  const result = await service.call(method, req);
  if (!result.ok) throw new Error(`${method} failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}

function ended(service: StudioService, runId: string, seen: ApiEvent[]): Promise<string> {
  return new Promise((resolve) => {
    const check = () => {
      const end = seen.find((e) => e.type === 'run' && e.runId === runId && ['finished', 'failed', 'cancelled'].includes(e.event.type));
      if (end && end.type === 'run') {
        off();
        resolve(end.event.type);
      }
    };
    const off = service.onEvent(check);
    check();
  });
}

beforeAll(async () => {
  const s = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await ok<DemoPaths>(s, 'demoPaths', {});
  await s.close();
});

describe('a streamed answer through the API', () => {
  it('comes as generateProgress events for its requestId, which stopGenerate ends; its text is the start of the whole answer', async () => {
    const service = createStudioService({ mode: 'browser', allowedRoots: null });
    try {
      const long = { ...request(), maxNewTokens: 200, temperature: 1, seed: 5 };
      const whole = await ok<GenerateResponse>(service, 'generate', long);
      const events: Extract<ApiEvent, { type: 'generateProgress' }>[] = [];
      let stop: Promise<{ stopped: boolean }> | null = null;
      const off = service.onEvent((e) => {
        if (e.type !== 'generateProgress') return;
        events.push(e);
        stop ??= ok<{ stopped: boolean }>(service, 'stopGenerate', { requestId: 'try-1' });
      });
      const answer = await ok<GenerateResponse>(service, 'generate', { ...long, requestId: 'try-1' });
      off();
      expect(await stop).toEqual({ stopped: true });
      expect(answer.stoppedBy).toBe('stopped');
      expect(answer.tokens).toBeLessThan(whole.tokens / 2);
      expect(whole.text.startsWith(answer.text)).toBe(true);
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((e) => e.requestId === 'try-1')).toBe(true);
      expect(answer.text.startsWith(events.map((e) => e.text).join(''))).toBe(true);
      // a call without a requestId sends no events; a stop of an ended answer stops nothing
      events.length = 0;
      const again = service.onEvent((e) => e.type === 'generateProgress' && events.push(e));
      await ok<GenerateResponse>(service, 'generate', request());
      again();
      expect(events).toEqual([]);
      expect(await ok(service, 'stopGenerate', { requestId: 'try-1' })).toEqual({ stopped: false });
    } finally {
      await service.close();
    }
  });
});

describe('the generate cache (M2)', () => {
  const generator = new Generator();
  afterAll(() => generator.close());

  it('release() frees every open model; the next generate opens it again and answers the same', async () => {
    expect(generator.openSessions).toBe(0);
    const first = await generator.generate(request());
    expect(generator.openSessions).toBe(1);
    await generator.release();
    expect(generator.openSessions).toBe(0);
    const again = await generator.generate(request());
    expect(generator.openSessions).toBe(1);
    expect(again.text).toBe(first.text);
    expect(again.tokens).toBe(first.tokens);
  });

  it('an idle generator frees its models after the idle time', async () => {
    const idle = new Generator({ idleMs: 200 });
    try {
      await idle.generate(request());
      expect(idle.openSessions).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(idle.openSessions).toBe(0);
    } finally {
      await idle.close();
    }
  });

  it('startRun frees the try page\'s models before the run starts', async () => {
    const shared = new Generator();
    const service = createStudioService({ mode: 'browser', allowedRoots: null, generator: shared });
    const seen: ApiEvent[] = [];
    service.onEvent((e) => seen.push(e));
    try {
      await ok<GenerateResponse>(service, 'generate', request());
      expect(shared.openSessions).toBe(1);
      const started = await ok<StartedRun>(service, 'startRun', runSettings(join(tempDir('lifecycle-run'), 'run')));
      expect(shared.openSessions).toBe(0);
      expect(await ended(service, started.runId, seen)).toBe('finished');
    } finally {
      await service.close();
    }
  });
});

describe('close() refuses new work (L1)', () => {
  it('a startRun already inside its checks when close() begins is refused, not left running', async () => {
    const service = createStudioService({ mode: 'browser', allowedRoots: null });
    const starting = service.call('startRun', runSettings(join(tempDir('lifecycle-race'), 'run')));
    const closing = service.close();
    const result = await starting;
    await closing;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatchObject({ code: 'failed', message: expect.stringMatching(/shutting down/) });
  });

  it('startRun, resumeRun and generate after close() are refused with a clear error', async () => {
    const service = createStudioService({ mode: 'browser', allowedRoots: null });
    await service.close();
    for (const [method, req] of [
      ['startRun', runSettings(join(tempDir('lifecycle-late'), 'run'))],
      ['resumeRun', { runDir: tempDir('lifecycle-resume') }],
      ['generate', request()],
    ] as const) {
      const r = await service.call(method, req);
      expect(r.ok, method).toBe(false);
      if (!r.ok) expect(r.error, method).toMatchObject({ code: 'failed', message: expect.stringMatching(/shutting down/) });
    }
  });
});
