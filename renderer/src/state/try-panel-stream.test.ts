// The try panel on the real service (the bundled demo model, a real
// generation child): an answer shows as it comes, and Stop ends the side
// being generated where it is and does not start the other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, ApiMethod, ApiTransport, DemoPaths } from '../../../electron/api/contract.js';
import type { LoraTarget } from '../../../electron/engine/native.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { join } from 'node:path';
import { openSession } from '../../../electron/session.js';
import { tempDir } from '../../../electron/testing/e2e-fixtures.js';
import { saveAdapterFolder } from '../../../electron/training/adapter-files.js';
import { createIpcTransport } from '../api/ipc.js';
import { demoPathsOf, serviceBridge } from '../testing/service-bridge.js';
import { generationStats, NOT_GENERATED_AFTER_STOP, TryPanel } from './try-panel.svelte.js';

process.env.PEFT_STUDIO_HOME = tempDir('try-stream-home');

let service: StudioService;
let demo: DemoPaths;
/** the methods called through the transport, in order */
let calls: ApiMethod[];
let transport: ApiTransport;
/** a LoRA adapter folder of the demo model (B = 0: it answers as the base; what is tested is the panel) */
let adapter: string;

beforeAll(async () => {
  service = createStudioService({ mode: 'browser', allowedRoots: null });
  demo = await demoPathsOf(service);
  adapter = join(tempDir('try-stream-adapter'), 'adapter');
  const session = await openSession(demo.model, { threads: 1 });
  try {
    const lora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'] as LoraTarget[], layers: null, init: 'default' as const };
    session.engine.setupLora({ ...lora, seed: 1 });
    await saveAdapterFolder(adapter, { engine: session.engine, spec: session.folder.spec, lora, baseModel: demo.model });
  } finally {
    session.dispose();
  }
  const ipc = createIpcTransport(serviceBridge(service, () => []));
  transport = {
    call: ((method, request) => {
      calls.push(method);
      return ipc.call(method, request);
    }) as ApiTransport['call'],
    onEvent: (listener) => ipc.onEvent(listener),
  };
});
afterAll(() => service.close());

/** A panel set up for a long sampled answer (the demo model talks for a while at temperature 1). */
function longPanel(): TryPanel {
  calls = [];
  const panel = new TryPanel(transport);
  panel.input.prompt = 'Question: What color is the fox?\nAnswer:';
  panel.input.layout = 'plain';
  panel.input.maxNewTokens = 200;
  panel.input.temperature = 1;
  panel.input.seed = 5;
  return panel;
}

describe('the try panel streams and stops', () => {
  it('shows the answer as it comes, then the answer itself; both sides generated', async () => {
    const panel = longPanel();
    const seen: string[] = [];
    const off = transport.onEvent((e: ApiEvent) => {
      if (e.type === 'generateProgress' && panel.generating === 'base') seen.push(panel.streamed);
    });
    // an adapter folder that is no run: the panel tries it as the adapter on the model given
    await panel.generate(demo.model, adapter);
    off();
    expect(panel.error).toBeNull();
    expect(panel.base).not.toBeNull();
    const text = panel.base!.text;
    expect(seen.length).toBeGreaterThan(3);
    // every state shown while it came is the start of the answer, and it grew
    for (const shown of seen) expect(text.startsWith(shown)).toBe(true);
    expect(seen[seen.length - 1].length).toBeGreaterThan(seen[0].length);
    expect(panel.streamed).toBe(''); // once done, the answer itself is shown
    expect(calls.filter((m) => m === 'generate')).toHaveLength(2);
    expect(panel.base!.stoppedBy).not.toBe('stopped');
  });

  it('Stop ends the base answer where it is, keeps it, and does not start the other side', async () => {
    const whole = longPanel();
    await whole.generate(demo.model, adapter);
    const panel = longPanel();
    let stopping: Promise<void> | null = null;
    const off = transport.onEvent((e: ApiEvent) => {
      if (e.type === 'generateProgress') stopping ??= panel.stop();
    });
    await panel.generate(demo.model, adapter);
    off();
    await stopping;
    expect(panel.stopPressed).toBe(true);
    expect(panel.error).toBeNull();
    expect(panel.base!.stoppedBy).toBe('stopped');
    expect(panel.base!.tokens).toBeLessThan(whole.base!.tokens / 2);
    expect(whole.base!.text.startsWith(panel.base!.text)).toBe(true);
    expect(generationStats(panel.base!)).toMatch(/, stopped \(Stop pressed\)$/);
    expect(panel.adapter).toBeNull();
    expect(calls.filter((m) => m === 'generate')).toHaveLength(1);
    expect(calls).toContain('stopGenerate');
    expect(NOT_GENERATED_AFTER_STOP).toBe('Not generated: Stop was pressed.');
    // Stop pressed at once, while the run is still being read: nothing is generated (review)
    calls = [];
    const early = panel.generate(demo.model, adapter);
    await panel.stop();
    await early;
    expect(calls.filter((m) => m === 'generate')).toHaveLength(0);
    expect(panel.base).toBeNull();
    expect(panel.error).toBeNull();
    // the next Generate starts afresh
    await panel.generate(demo.model, adapter);
    expect(panel.stopPressed).toBe(false);
    expect(panel.adapter).not.toBeNull();
  });
});
