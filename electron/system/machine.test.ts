import { mkdtempSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../cli/commands/inspect.js';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { tinyModel } from '../testing/e2e-fixtures.js';
import { availableMemoryBytes } from './machine.js';

describe('available memory', () => {
  it('reads MemAvailable (kB) from a meminfo file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meminfo-'));
    const f = join(dir, 'meminfo');
    writeFileSync(f, 'MemTotal:       24000000 kB\nMemFree:          100000 kB\nMemAvailable:   12345678 kB\n');
    expect(availableMemoryBytes(f)).toBe(12345678 * 1024);
  });

  it('falls back to os.freemem() without a meminfo file', () => {
    const got = availableMemoryBytes('/nonexistent/meminfo');
    // freemem moves between two calls; the same order of magnitude is the claim
    expect(got).toBeGreaterThan(0);
    expect(Math.abs(got - freemem())).toBeLessThan(freemem());
  });

  it('inspect says a method does not fit when its total exceeds the available memory', async () => {
    const model = await tinyModel({ seed: 43 });
    const folder = await openModelFolder(model.dir);
    const settings = { batch_size: 1, seq_len: 32, rank: 4, targets: ['q_proj' as const], optimizer: 'adamw' as const, gradient_checkpointing: false };
    const machine = { cpu_model: 'test', cpu_threads: 2, total_memory_bytes: 1 << 30, available_memory_bytes: 0 };
    const probe = inspectModel(loadAddon(), folder, settings, machine);
    // between the two totals: LoRA fits, full fine-tuning does not
    machine.available_memory_bytes = Math.floor((probe.memory.lora.total_bytes + probe.memory.full.total_bytes) / 2);
    const r = inspectModel(loadAddon(), folder, settings, machine);
    expect(r.memory.lora.fits).toBe(true);
    expect(r.memory.full.fits).toBe(false);
  });
});
