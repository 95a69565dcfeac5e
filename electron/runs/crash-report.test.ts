// Failure messages about memory: a SIGKILL is only called out-of-memory when
// memory was tight, and an allocation failure inside the engine (forced here
// with a real run whose activations cannot be allocated) says it ran out of
// memory, with the estimate, what was free, and what to change.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { runTraining } from '../training/run.js';
import { resolveDevice } from '../engine/device.js';
import { loadAddon } from '../engine/load.js';
import { explainChildDeath, isOutOfMemoryError, outOfMemoryMessage, type ChildDeath } from './crash-report.js';
import type { StartedEvent } from './events.js';

const GiB = 2 ** 30;

async function configFor(flags: string[]) {
  const model = await tinyModel();
  const dir = tempDir('crash');
  const data = writeJsonl(join(dir, 'd.jsonl'), [{ input_ids: [40, 41, 42, 43] }]);
  return trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', join(dir, 'run'), ...flags]));
}

function death(config: ChildDeath['config'], estimateGiB: number, availableGiB: number, peakGiB: number | null): ChildDeath {
  const started = { type: 'started', memoryEstimateBytes: estimateGiB * GiB, availableMemoryBytes: availableGiB * GiB } as StartedEvent;
  return { code: null, signal: 'SIGKILL', config, started, lastStep: 3, lastCheckpoint: null, peakRssBytes: peakGiB === null ? null : peakGiB * GiB, stderrTail: [] };
}

describe('SIGKILL message', () => {
  it('does not blame memory when the estimate and the peak were far below what was available', async () => {
    const config = await configFor(['--steps', '1']);
    const m = explainChildDeath(death(config, 1, 16, 1.5)).message;
    expect(m).toContain('killed by SIGKILL (by the user, or by the system when memory ran out) after step 3');
    expect(m).not.toContain('most likely');
    expect(m).toContain('estimated to need 1.00 GiB and 16.00 GiB was available');
    expect(m).toContain(`train --resume ${config.out}`);
  });

  it('says most likely out of memory when the estimate is above 80% of available memory', async () => {
    const config = await configFor(['--steps', '1']);
    const m = explainChildDeath(death(config, 13, 16, null)).message;
    expect(m).toContain('most likely out of memory');
    expect(m).toContain('--gradient-checkpointing');
  });

  it('says most likely out of memory when the peak reported in the step events came close to available memory', async () => {
    const config = await configFor(['--steps', '1']);
    expect(explainChildDeath(death(config, 2, 16, 14)).message).toContain('most likely out of memory');
    expect(explainChildDeath(death(config, 2, 16, 12)).message).not.toContain('most likely');
  });
});

describe('a kill the user asked for (second Ctrl-C)', () => {
  it('says the user stopped it, not memory, even when memory was tight', async () => {
    const config = await configFor(['--steps', '1']);
    for (const d of [death(config, 1, 16, 1.5), death(config, 13, 16, 14)]) {
      const m = explainChildDeath({ ...d, stoppedByUser: true }).message;
      expect(m).toContain("stopped at once at the user's request");
      expect(m).toContain('after step 3');
      expect(m).not.toMatch(/memory|--seq-len|SIGKILL \(by the user, or by the system/);
      expect(m).toContain(`train --resume ${config.out}`);
    }
  });
});

describe('a kill the app made while shutting down (its step outlasted the grace)', () => {
  it('says the app shut down, not memory and not the user', async () => {
    const config = await configFor(['--steps', '1']);
    const m = explainChildDeath({ ...death(config, 13, 16, 14), stoppedByShutdown: true }).message;
    expect(m).toContain('stopped at once because PEFT Studio shut down after step 3');
    expect(m).not.toMatch(/memory|user's request/);
    expect(m).toContain(`train --resume ${config.out}`);
  });
});

describe('an allocation failure in the engine', () => {
  it('is recognized from the texts the binding passes on (std::bad_alloc, ps::OutOfMemory), and only those', () => {
    expect(isOutOfMemoryError('std::bad_alloc')).toBe(true);
    expect(isOutOfMemoryError('out of memory allocating 35316498432 bytes for a CPU buffer')).toBe(true);
    expect(isOutOfMemoryError('d.jsonl:3: "labels" has 2 entries but "input_ids" has 3; they must match')).toBe(false);
  });

  it('a GPU allocation failure keeps the engine\'s words and says where and what to change', async () => {
    const config = await configFor(['--steps', '1']);
    // the text CudaBackend::alloc throws (ps::OutOfMemory)
    const engine = 'out of memory allocating 4294967296 bytes for a buffer on NVIDIA H200 (1024 MiB free of 143771 MiB)';
    expect(isOutOfMemoryError(engine)).toBe(true);
    const m = outOfMemoryMessage(engine, { estimateBytes: 3 * GiB, availableBytes: 4 * GiB, where: 'on NVIDIA H200', gpu: true }, config, 'after step 2');
    expect(m).toBe(
      `the run ran out of memory after step 2: the engine could not allocate memory (${engine}); the run was estimated to need 3.00 GiB and 4.00 GiB ` +
      `was available on NVIDIA H200 when it started. Close other programs (nvidia-smi lists what holds the GPU), continue on the CPU with peft-studio train --resume ${config.out} --device cpu, ` +
      'or start a new run with a shorter --seq-len, a lower --rank, --gradient-checkpointing.');
    // a bf16 run continues on the CPU in fp32 (the CPU refuses bf16)
    const bf16 = outOfMemoryMessage(engine, { estimateBytes: 3 * GiB, availableBytes: 4 * GiB, where: 'on NVIDIA H200', gpu: true }, { ...config, precision: 'bf16' }, 'after step 2');
    expect(bf16).toContain(`continue on the CPU with peft-studio train --resume ${config.out} --device cpu --precision fp32, `);
  });

  it('fails the run with an out-of-memory message: the estimate, what was free, and what to change', async () => {
    // 16 rows of 262144 tokens in one batch: ~33 GiB of activations in one
    // allocation, more than this machine's memory, so the engine's arena
    // allocation fails (glibc refuses it; nothing is touched).
    const model = await tinyModel({ maxPosition: 262144 });
    const dir = tempDir('oom');
    const row = { input_ids: Array.from({ length: 262144 }, (_, i) => 40 + (i % 6)) };
    const data = writeJsonl(join(dir, 'long.jsonl'), Array.from({ length: 16 }, () => row));
    const out = join(dir, 'run');
    const config = trainConfigFromArgs(parseArgs(trainSpec, ['--model', model.dir, '--data', data, '--out', out, '--steps', '1', '--batch-size', '16',
      '--seq-len', '262144', '--eval-split', '0', '--threads', '2', '--ignore-memory-check']));
    let log = '';
    const error = await runTraining(config, { stderr: (t) => (log += t), stderrIsTTY: false }).then(() => null, (e: Error) => e);
    expect(error, log).not.toBeNull();
    const message = error!.message;
    expect(message).toMatch(/^the run ran out of memory before its first step: the engine could not allocate memory \(out of memory allocating \d+ bytes for activations/);
    const [estimate, available] = [...message.matchAll(/(\d+\.\d\d) GiB/g)].map((m) => Number(m[1]));
    expect(estimate).toBeGreaterThan(available); // the check was skipped by --ignore-memory-check, and says so
    expect(message).toContain('(--ignore-memory-check started it anyway)');
    // the run resolved --device auto to the CPU here, so the figure is the RAM's (on a GPU: "on <its name>")
    expect(message).toMatch(/GiB was available in RAM when it started/);
    for (const advice of ['--batch-size', '--seq-len', '--gradient-checkpointing']) expect(message).toContain(advice);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(record.message).toBe(message);
    // the engine was made before the arena failed: run.json records the device it used
    expect(record.config.device).toBe(resolveDevice(loadAddon(), 'auto').device);
  }, 120_000);
});

describe('SIGBUS message', () => {
  it("names the model's weight file, which most likely changed or shrank under the memory mapping, and what to do", async () => {
    const config = await configFor(['--steps', '1']);
    const m = explainChildDeath({ ...death(config, 1, 16, null), signal: 'SIGBUS' });
    expect(m.kind).toBe('crashed');
    expect(m.message).toContain(`crashed (SIGBUS) after step 3: it read a memory-mapped file that was no longer there in full. Most likely the model's weight file (${join(config.model, 'model.safetensors')}) changed or shrank while the run used it`);
    expect(m.message).toContain(`then resume: peft-studio train --resume ${config.out}`);
  });
});
