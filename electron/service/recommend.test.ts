// The method recommendation on crafted memory rows: LoRA below 70% of the
// available memory, else QLoRA when it fits, else prompt tuning; a 4-bit
// folder cannot be trained by LoRA or full fine-tuning.
import { describe, expect, it } from 'vitest';
import type { InspectReport, MemoryRow } from '../cli/commands/inspect.js';
import { COMFORT, recommendMethod } from './recommend.js';

const GiB = 2 ** 30;
const row = (gib: number): MemoryRow => ({
  weights: gib * GiB, gradients: 0, optimizer_state: 0, activations: 0, total_bytes: gib * GiB, trainable_params: 1, adapter_bytes: 1, checkpoint_bytes: 1, fits: true,
});
/** Memory rows in GiB; full is always the largest, prompt / prefix the smallest. */
function report(lora: number, qlora: number, prompt: number, quantization: InspectReport['quantization'] = null): Pick<InspectReport, 'memory' | 'quantization'> {
  return { memory: { full: row(lora * 4), lora: row(lora), qlora: row(qlora), prompt: row(prompt), prefix: row(prompt * 1.1), prefix_projection: row(prompt * 1.2) }, quantization };
}

describe('recommendMethod', () => {
  it('puts inspect\'s tokens/s beside each method\'s memory, none without an estimate', () => {
    const time: InspectReport['time'] = { tokens_per_second: { full: 90, lora: 200, qlora: 160, prompt: 210, prefix: 190, prefix_projection: 195 }, gemm_gflops: 180, spread: 0.3 };
    const r = recommendMethod({ ...report(6.9, 3, 2), time }, 10 * GiB);
    expect(Object.fromEntries(r.methods.map((m) => [m.method, m.tokensPerSecond]))).toEqual({ lora: 200, qlora: 160, prompt: 210, prefix: 190, full: 90 });
    const gpu = recommendMethod({ ...report(6.9, 3, 2), time: { ...time, tokens_per_second: { full: null, lora: null, qlora: null, prompt: null, prefix: null, prefix_projection: null }, gemm_gflops: null } }, 10 * GiB);
    expect(gpu.methods.every((m) => m.tokensPerSecond === null)).toBe(true);
    expect(recommendMethod(report(6.9, 3, 2), 10 * GiB).methods.every((m) => m.tokensPerSecond === null)).toBe(true);
  });

  it('LoRA when it fits comfortably', () => {
    const r = recommendMethod(report(6.9, 3, 2), 10 * GiB);
    expect(r.recommended).toBe('lora');
    expect(r.recommendation).toBe('LoRA fits comfortably: it needs about 6.9 GiB of the 10.0 GiB available.');
    expect(r.methods.find((m) => m.method === 'full')!.fits).toBe(false); // 27.6 GiB
    expect(r.methods.find((m) => m.method === 'lora')!.fits).toBe(true);
  });

  it('QLoRA when LoRA fits but not comfortably, or not at all', () => {
    expect(COMFORT).toBe(0.7);
    for (const lora of [7.1, 12]) {
      const r = recommendMethod(report(lora, 4, 2), 10 * GiB);
      expect(r.recommended).toBe('qlora');
      expect(r.recommendation).toContain(`LoRA would take ${lora.toFixed(1)} GiB`);
      expect(r.recommendation).toContain('4.0 GiB');
    }
  });

  it('prompt tuning when even QLoRA does not fit, and says so when nothing fits', () => {
    const r = recommendMethod(report(30, 11, 9), 10 * GiB);
    expect(r.recommended).toBe('prompt');
    expect(r.recommendation).toMatch(/even QLoRA needs 11.0 GiB/);
    expect(r.methods.filter((m) => m.fits).map((m) => m.method)).toEqual(['prompt', 'prefix']);
    const none = recommendMethod(report(30, 11, 10.5), 10 * GiB);
    expect(none.recommended).toBe('prompt');
    expect(none.recommendation).toMatch(/nothing fits/);
  });

  it('a bitsandbytes 4-bit folder: LoRA and full fine-tuning unavailable, QLoRA recommended even when small', () => {
    const bnb = { type: 'nf4', blocksize: 64, doubleQuant: true, source: 'bitsandbytes', originalDType: 'BF16' } as InspectReport['quantization'];
    const r = recommendMethod(report(1, 1, 0.5, bnb), 10 * GiB);
    expect(r.recommended).toBe('qlora');
    expect(r.recommendation).toContain('stored in 4 bits');
    const unavailable = Object.fromEntries(r.methods.map((m) => [m.method, m.unavailable]));
    expect(unavailable.lora).toMatch(/choose QLoRA/);
    expect(unavailable.full).toMatch(/cannot be trained directly/);
    expect([unavailable.qlora, unavailable.prompt, unavailable.prefix]).toEqual([null, null, null]);
  });

  it('every method card has its cost and when to pick it', () => {
    for (const m of recommendMethod(report(1, 1, 1), 10 * GiB).methods) {
      expect(m.summary).toMatch(/\.$/);
      expect(m.whenToPick).toMatch(/\.$/);
    }
  });
});
