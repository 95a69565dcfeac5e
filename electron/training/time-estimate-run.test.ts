// `train` says how long before it starts: the line comes before the first
// step with the steps and tokens of the data it really has, and run.json
// keeps the seconds and FLOPs it said, consistent with the GEMM speed
// measured into the studio home's calibration.json.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import type { TinyModel } from '../testing/tiny-model.js';
import { METHOD_EFFICIENCY, CHECKPOINTING_FACTOR } from './time-estimate.js';

const home = mkdtempSync(join(tmpdir(), 'ps-time-home-'));
const before = process.env.PEFT_STUDIO_HOME;
beforeAll(() => { process.env.PEFT_STUDIO_HOME = home; });
afterAll(() => { if (before === undefined) delete process.env.PEFT_STUDIO_HOME; else process.env.PEFT_STUDIO_HOME = before; });

describe('train: the time estimate before the start', () => {
  let model: TinyModel;
  let data: string;
  let dir: string;
  // rows of 10, 7, 12 and 5 tokens: 34 real tokens an epoch
  const lengths = [10, 7, 12, 5];

  beforeAll(async () => {
    model = await tinyModel({ seed: 2 });
    dir = tempDir('time-estimate');
    data = writeJsonl(join(dir, 'rows.jsonl'), lengths.map((n, r) => ({ input_ids: Array.from({ length: n }, (_, t) => 40 + ((r + t) % 6)) })));
  });

  for (const ckpt of [false, true]) {
    it(`prints the line before training and records it in run.json${ckpt ? ' (gradient checkpointing)' : ''}`, async () => {
      const out = join(dir, ckpt ? 'ckpt' : 'plain');
      const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '2', '--batch-size', '2',
        '--threads', '1', ...(ckpt ? ['--gradient-checkpointing'] : [])]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.split('\n');
      const at = lines.findIndex((l) => l.startsWith('this run: '));
      expect(at, r.stderr).toBeGreaterThanOrEqual(0);
      // said once the run is under way (after its header), before its first step
      expect(at).toBeGreaterThan(lines.findIndex((l) => l.startsWith('training lora on')));
      const firstStep = lines.findIndex((l) => /^step 1\//.test(l));
      expect(firstStep < 0 || at < firstStep, r.stderr).toBe(true);
      // 2 steps of 2 rows = one epoch of the four rows: 34 tokens
      expect(lines[at]).toMatch(new RegExp(`^this run: 2 steps, 34 tokens; (about \\d+ min|about \\d+ h \\d+ min|under a minute) on this CPU \\(measured \\d+ GFLOP/s x ${(METHOD_EFFICIENCY.lora * (ckpt ? CHECKPOINTING_FACTOR : 1)).toFixed(2)} for LoRA${ckpt ? ' with gradient checkpointing' : ''}; an estimate, ±30%\\)$`));

      const resolved = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).resolved;
      const cache = JSON.parse(readFileSync(join(home, 'calibration.json'), 'utf8'));
      const entry = cache.entries.find((e: { threads: number }) => e.threads === 1);
      expect(entry.cpu.length).toBeGreaterThan(0);
      expect(resolved.time_estimate_flops).toBeGreaterThan(0);
      expect(resolved.time_estimate_s).toBeCloseTo(resolved.time_estimate_flops / (entry.gflops * 1e9 * METHOD_EFFICIENCY.lora * (ckpt ? CHECKPOINTING_FACTOR : 1)), 12);
    });
  }
});
