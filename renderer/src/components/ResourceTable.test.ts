// The resource table rendered in jsdom from what the service answered for
// the bundled demo model (testdata/demo-overview.json, captured from
// `inspectModel`), on the machine it was captured on and on a smaller one.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';

import type { ModelOverview } from '../../../electron/api/contract.js';
import { choosePrecision } from '../../../electron/engine/precision.js';
import { recommendMethod } from '../../../electron/service/recommend.js';
import ResourceTable from './ResourceTable.svelte';
import captured from './testdata/demo-overview.json';

const demo = captured as unknown as ModelOverview;
let component: ReturnType<typeof mount> | null = null;

afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

function render(overview: ModelOverview): HTMLElement {
  const target = document.createElement('div');
  document.body.append(target);
  component = mount(ResourceTable, { target, props: { overview } });
  flushSync();
  return target;
}

const cell = (root: HTMLElement, id: string) => root.querySelector(`[data-testid="${id}"]`)?.textContent?.replace(/\s+/g, ' ').trim();

/** The same overview on a machine with `available` bytes (fits recomputed as the service does: total <= available). */
function onMachine(available: number, gpus: ModelOverview['machine']['gpus'] = []): ModelOverview {
  const o = structuredClone(demo);
  o.machine.availableMemoryBytes = available;
  o.machine.gpus = gpus;
  // device auto: the first usable GPU when there is one, by its own index (as inspect decides)
  const first = gpus.find((g) => g.error === '') ?? null;
  const { precision, reason } = choosePrecision('auto', first);
  const placed = first ? { device: `cuda:${first.index}` as const, where: `on ${first.name}`, available_bytes: first.freeBytes } : { device: 'cpu' as const, where: 'in RAM', available_bytes: available };
  o.report.fits_in = { ...placed, precision, precision_reason: reason };
  for (const row of Object.values(o.report.memory)) row.fits = row.total_bytes <= available;
  return o;
}

describe('the resource table', () => {
  it('shows each method with its trainable parameters, share of the model, memory and saved size', () => {
    const root = render(demo);
    const rows = [...root.querySelectorAll('tbody tr')].map((r) => r.getAttribute('data-testid'));
    expect(rows).toEqual(['resource-row-full', 'resource-row-lora', 'resource-row-qlora', 'resource-row-prompt', 'resource-row-prefix']);
    // 1,881,408 parameters in the demo model
    expect(cell(root, 'resource-trainable-full')).toBe('1,881,408 100% of the model');
    expect(cell(root, 'resource-trainable-lora')).toBe('20,480 1.09% of the model');
    expect(cell(root, 'resource-trainable-prompt')).toBe('3,840 0.2% of the model');
    // 42,296,320 B = 40.34 MiB; 12,407,568 B = 11.83 MiB
    expect(cell(root, 'resource-memory-full')).toMatch(/^40\.3 MiB /);
    expect(cell(root, 'resource-memory-qlora')).toMatch(/^11\.8 MiB /);
    // what training saves, and under it one checkpoint of it (with the optimizer's state): full fine-tuning's is three models
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
    expect(cell(root, 'resource-adapter-full')).toBe(`${mib(demo.report.memory.full.adapter_bytes)} the whole model ${mib(demo.report.memory.full.checkpoint_bytes)} a checkpoint`);
    expect(cell(root, 'resource-adapter-lora')).toBe(`${kib(demo.report.memory.lora.adapter_bytes)} adapter ${kib(demo.report.memory.lora.checkpoint_bytes)} a checkpoint`);
    expect(cell(root, 'resource-checkpoint-full')).toBe('21.6 MiB a checkpoint');
    expect(cell(root, 'resource-checkpoint-lora')).toBe('249.8 KiB a checkpoint');
    for (const m of ['full', 'lora', 'qlora', 'prompt', 'prefix']) expect(cell(root, `resource-fits-${m}`)).toBe('fits');
    expect(root.querySelector('tr.recommended')?.getAttribute('data-testid')).toBe('resource-row-lora');
    expect(root.querySelector('[data-testid^="resource-gpu-"]')).toBeNull();
  });

  it('says which methods do not fit a smaller machine, and by how much', () => {
    // 20,300,000 B available: LoRA (20,120,832) and prefix (20,165,888) fit; prompt (20,639,616) and full (42,296,320) do not
    const root = render(onMachine(20_300_000));
    expect(cell(root, 'resource-fits-lora')).toBe('fits');
    expect(cell(root, 'resource-fits-prefix')).toBe('fits');
    // 42,296,320 - 20,300,000 = 21,996,320 B = 20.98 MiB
    expect(cell(root, 'resource-fits-full')).toBe("doesn't fit 21.0 MiB short");
    // 20,639,616 - 20,300,000 = 339,616 B = 331.66 KiB
    expect(cell(root, 'resource-fits-prompt')).toBe("doesn't fit 331.7 KiB short");
    expect(root.querySelector('[data-testid="resource-row-full"]')?.getAttribute('data-fits')).toBe('false');
    // the available memory falls inside the bars' scale, so its marker is drawn
    expect(root.querySelectorAll('[data-testid="memory-bar"] .limit')).toHaveLength(5);
  });

  it('marks no method "recommended" when none fits this machine', () => {
    // 1 MiB available: every estimate (11.8 MiB and up) is over it; the service
    // still names prompt tuning (the smallest footprint) as its pick
    const small = onMachine(2 ** 20);
    const pick = recommendMethod(small.report, small.machine.availableMemoryBytes);
    expect(pick.recommended).toBe('prompt');
    const root = render({ ...small, methods: pick.methods, recommended: pick.recommended, recommendation: pick.recommendation });
    for (const m of ['full', 'lora', 'qlora', 'prompt', 'prefix']) expect(cell(root, `resource-fits-${m}`)).toMatch(/^doesn't fit /);
    expect(root.querySelector('tr.recommended')).toBeNull();
    expect(root.querySelector('[data-testid="resource-row-prompt"]')!.textContent).not.toContain('recommended');
  });

  it('adds a GPU verdict against the free memory of the GPU a run would use (the first)', () => {
    const MiB = 2 ** 20;
    const gpus = [
      { index: 0, name: 'roomy', computeCapability: '9.0', totalBytes: 64 * MiB, freeBytes: 16 * MiB, error: '' },
      { index: 1, name: 'small', computeCapability: '8.6', totalBytes: 8 * MiB, freeBytes: 8 * MiB, error: '' },
    ];
    const root = render(onMachine(demo.machine.availableMemoryBytes, gpus));
    expect(root.textContent).toContain('16.0 MiB free on roomy');
    // QLoRA 11.8 MiB fits in 16 MiB; LoRA 19.2 MiB is 3.2 MiB short (20,120,832 - 16,777,216 = 3,343,616 B)
    expect(cell(root, 'resource-gpu-qlora')).toBe('fits');
    expect(cell(root, 'resource-gpu-lora')).toBe("doesn't fit 3.2 MiB short");
  });

  it('takes the GPU of the device inspect chose by its index, past one that cannot report itself', () => {
    const MiB = 2 ** 20;
    // GPU 0 failed (listed, with its error), so auto is cuda:1: its 12 MiB, not the first entry's
    const gpus = [
      { index: 0, name: '', computeCapability: '0.0', totalBytes: 0, freeBytes: 0, error: 'CUDA error: unknown error' },
      { index: 1, name: 'small', computeCapability: '8.6', totalBytes: 16 * MiB, freeBytes: 12 * MiB, error: '' },
    ];
    const overview = onMachine(demo.machine.availableMemoryBytes, gpus);
    expect(overview.report.fits_in.device).toBe('cuda:1');
    const root = render(overview);
    expect(root.textContent).toContain('12.0 MiB free on small');
    // QLoRA 11.8 MiB fits in 12 MiB (12,407,568 <= 12,582,912); LoRA is 7.2 MiB short (20,120,832 - 12,582,912 = 7,537,920 B)
    expect(cell(root, 'resource-gpu-qlora')).toBe('fits');
    expect(cell(root, 'resource-gpu-lora')).toBe("doesn't fit 7.2 MiB short");
  });

  it('names the CUDA runtime and scratch in a row that has it, and only there', () => {
    const o = structuredClone(demo);
    const row = o.report.memory.lora;
    // 512 MiB context + 32 MiB cuBLASLt workspace, added to the total as inspect does
    row.cuda_runtime_and_scratch = 544 * 2 ** 20;
    row.total_bytes += row.cuda_runtime_and_scratch;
    const root = render(o);
    const bar = (m: string) => root.querySelector(`[data-testid="resource-row-${m}"] [data-testid="memory-bar"]`)!;
    expect(bar('lora').getAttribute('title')).toContain('CUDA runtime and scratch 544.0 MiB');
    expect(bar('lora').querySelector('.seg.device')).not.toBeNull();
    expect(root.querySelector('[data-testid="resource-row-lora"] .total')!.getAttribute('title')).toContain('CUDA runtime and scratch 544.0 MiB');
    expect(bar('qlora').getAttribute('title')).not.toContain('CUDA');
    expect(bar('qlora').querySelector('.seg.device')).toBeNull();
  });
  it("names the CPU threads' scratch of a CPU row, as its own part of the bar", () => {
    const o = structuredClone(demo);
    const row = o.report.memory.lora;
    // what a CPU run's threads hold while a step runs, added to the total as inspect does
    row.cpu_threads_scratch = 2 * 2 ** 20;
    row.total_bytes += row.cpu_threads_scratch;
    const root = render(o);
    const bar = (m: string) => root.querySelector(`[data-testid="resource-row-${m}"] [data-testid="memory-bar"]`)!;
    expect(bar('lora').getAttribute('title')).toContain("CPU threads' scratch 2.0 MiB");
    expect(bar('lora').getAttribute('title')).not.toContain('CUDA');
    expect(bar('lora').querySelector('.seg.device')).not.toBeNull();
    expect(root.querySelector('[data-testid="resource-row-lora"] .total')!.getAttribute('title')).toContain("CPU threads' scratch 2.0 MiB");
    expect(bar('qlora').querySelector('.seg.device')).toBeNull();
  });
});
