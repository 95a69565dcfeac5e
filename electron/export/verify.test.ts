// The reload check's comparison and its refusal text (verify.ts): the
// relative difference against a hand-computed value, and the message a
// failed check shows, with its default ending naming what to report.
import { describe, expect, it } from 'vitest';
import { compareLoss, ExportCheckError } from './verify.js';

describe('compareLoss', () => {
  it('is |loss - source| / source against the tolerance; a non-finite loss fails', () => {
    const c = compareLoss('gguf', 2.002, 2, 1e-3);
    expect(c.relativeDifference).toBeCloseTo(0.001, 12);
    expect(compareLoss('gguf', 2.0019, 2, 1e-3).passed).toBe(true);
    expect(compareLoss('gguf', 2.0021, 2, 1e-3).passed).toBe(false);
    expect(compareLoss('gguf', Number.NaN, 2, 1e-3).passed).toBe(false);
  });
});

describe('ExportCheckError', () => {
  const check = compareLoss('merged', 2.5, 2, 1e-3);

  it('without a cause says it is a bug and names what to report: the adapter, or a full run\'s model', () => {
    expect(new ExportCheckError(check).message).toBe('the merged export failed its reload check: it scores loss 2.5 where the source adapter scores 2 (relative difference 2.50e-1 > tolerance 0.001); nothing was written. This is a bug in the exporter: please report it with the adapter');
    const model = new ExportCheckError(check, 'model').message;
    expect(model).toMatch(/where the source model scores 2 .*please report it with the model$/);
    expect(model).not.toContain('${');
  });

  it('with a cause shows the cause instead', () => {
    expect(new ExportCheckError(check, 'model', 'Export it with f32').message).toMatch(/nothing was written\. Export it with f32$/);
  });
});
