import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../engine/load.js';
import { openModelFolder } from '../models/folder.js';
import { cli, tempDir, tinyModel } from '../testing/e2e-fixtures.js';
import { manyRowsFile } from '../testing/many-rows.js';
import type { TrainConfig } from './config.js';
import { estimateRun, hostShortfall, memoryBudget, memoryShortfall } from './memory-check.js';
import { trainingProcessBytes } from './process-memory.js';

const estimate = { weightBytes: 3 * 2 ** 30, quantizedBytes: 0, quantizedParams: 0, gradientBytes: 2 ** 30, optimizerBytes: 2 ** 31, activationBytes: 2 ** 30, deviceBytes: 0, totalBytes: 7 * 2 ** 30, trainableParams: 1, totalParams: 1 };
const config = { method: 'full', batchSize: 4, gradientCheckpointing: false } as TrainConfig;

describe('memory pre-flight', () => {
  it('passes when the estimate fits and explains the shortfall when it does not', () => {
    expect(memoryShortfall(estimate, 7 * 2 ** 30, config)).toBeNull();
    const msg = memoryShortfall(estimate, 6 * 2 ** 30, config)!;
    expect(msg).toContain('needs about 7.00 GiB');
    expect(msg).toContain('only 6.00 GiB is available');
    for (const advice of ['--batch-size', '--seq-len', '--gradient-checkpointing', '--method lora', '--ignore-memory-check']) expect(msg).toContain(advice);
    // advice that would change nothing is left out
    const lora = memoryShortfall(estimate, 0, { ...config, method: 'lora', batchSize: 1, gradientCheckpointing: true } as TrainConfig)!;
    expect(lora).not.toContain('--method lora');
    expect(lora).not.toContain('--batch-size');
    expect(lora).not.toContain('--gradient-checkpointing,');
  });

  it('on a GPU the budget is its free memory, and the message names it', () => {
    const h200 = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * 2 ** 30, freeBytes: 6 * 2 ** 30, error: '' };
    expect(memoryBudget({ gpu: h200 }, 100 * 2 ** 30)).toEqual({ availableBytes: 6 * 2 ** 30, where: 'on NVIDIA H200', gpu: true });
    const none = { memoryLimitBytes: null, memoryHeadroomBytes: null };
    expect(memoryBudget({ gpu: null }, 100 * 2 ** 30, none)).toEqual({ availableBytes: 100 * 2 ** 30, where: 'in RAM', gpu: false });
    // a container's memory limit below the machine's RAM is where the kernel ends a run: the budget names it
    const container = { memoryLimitBytes: 8 * 2 ** 30, memoryHeadroomBytes: 7 * 2 ** 30 };
    expect(memoryBudget({ gpu: null }, 6 * 2 ** 30, container, 64 * 2 ** 30)).toEqual({ availableBytes: 6 * 2 ** 30, where: "in RAM (within the container's 8.0 GiB memory limit)", gpu: false });
    // one at or above the RAM changes nothing worth saying
    expect(memoryBudget({ gpu: null }, 6 * 2 ** 30, container, 8 * 2 ** 30).where).toBe('in RAM');
    const onGpu = memoryShortfall(estimate, memoryBudget({ gpu: h200 }), config)!;
    expect(onGpu).toContain('but only 6.00 GiB is available on NVIDIA H200.');
    expect(onGpu).toContain('--device cpu');
    expect(onGpu).not.toContain('--precision fp32');
    // a bf16 run moves to the CPU only in fp32
    expect(memoryShortfall(estimate, memoryBudget({ gpu: h200 }), { ...config, precision: 'bf16' })).toContain('--device cpu --precision fp32');
    const inRam = memoryShortfall(estimate, memoryBudget({ gpu: null }, 6 * 2 ** 30), config)!;
    expect(inRam).toContain('but only 6.00 GiB is available in RAM.');
    expect(inRam).not.toContain('--device cpu');
    expect(memoryShortfall(estimate, memoryBudget({ gpu: { ...h200, freeBytes: 7 * 2 ** 30 } }), config)).toBeNull();
  });

  it('a CUDA device adds its runtime and scratch: a named part of the total and of the message', async () => {
    const onGpu = { ...estimate, deviceBytes: 2 ** 29, totalBytes: 7.5 * 2 ** 30 };
    const msg = memoryShortfall(onGpu, { availableBytes: 6 * 2 ** 30, where: 'on NVIDIA H200', gpu: true }, config)!;
    expect(msg).toContain('needs about 7.50 GiB (weights 3.00 GiB, gradients 1.00 GiB, optimizer state 2.00 GiB, activations 1.00 GiB, CUDA runtime and scratch 0.50 GiB) but only 6.00 GiB is available on NVIDIA H200');
    // in RAM the same part is the CPU threads' scratch
    expect(memoryShortfall(onGpu, 6 * 2 ** 30, config)).toContain("activations 1.00 GiB, CPU threads' scratch 0.50 GiB) but only 6.00 GiB is available in RAM");
    expect(memoryShortfall({ ...estimate, deviceBytes: 0 }, 6 * 2 ** 30, config)).toContain('activations 1.00 GiB) but only');
    // the engine's figure for a CUDA device, whatever this machine has (the estimate needs no GPU):
    // 512 MiB context + 32 MiB cuBLASLt workspace for an fp32 file in fp32; the CPU its threads' scratch
    // (native-addon/tests/test_cpu_scratch.cpp and electron/engine/cpu-scratch.test.ts hold it against a run)
    const model = await tinyModel({ seed: 46 });
    const folder = await openModelFolder(model.dir);
    const run = { method: 'lora', batchSize: 1, seqLen: 16, gradientCheckpointing: false, optimizer: 'adamw' } as TrainConfig;
    const lora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj' as const], layers: null, init: 'default' as const };
    const cpu = estimateRun(loadAddon(), folder, run, lora);
    const cuda = estimateRun(loadAddon(), folder, run, lora, { device: 'cuda:0', precision: 'fp32' });
    const c = cpu.device!;
    expect(cpu.deviceBytes).toBeGreaterThan(0);
    expect(cpu.deviceBytes).toBe(c.cpuAttentionBytes! + c.cpuAttentionPartialsBytes! + c.cpuGemmBytes! + c.cpuWeightGemmBytes!);
    expect([c.contextBytes, c.workspaceBytes, c.weightChunkBytes, c.bf16CopyBytes, c.loraPartialsBytes]).toEqual([0, 0, 0, 0, 0]);
    // the fused LoRA kernels' partials for q_proj [64 x 64], rank 4, 16 rows: one row group and one
    // column group, so dH 16 x 4 + dB 64 x 4 + dA 4 x 64 floats = 576 x 4 bytes (lora_fused_plan.h)
    const loraPartialsBytes = (16 * 4 + 64 * 4 + 4 * 64) * 4;
    expect(cuda.deviceBytes).toBe(544 * 2 ** 20 + loraPartialsBytes);
    const noCpu = { cpuAttentionBytes: 0, cpuAttentionPartialsBytes: 0, cpuGemmBytes: 0, cpuWeightGemmBytes: 0 };
    expect(cuda.device).toEqual({ contextBytes: 512 * 2 ** 20, workspaceBytes: 32 * 2 ** 20, weightChunkBytes: 0, bf16CopyBytes: 0, loraPartialsBytes, ...noCpu });
    // the training process is in the CPU's budget (host RAM), not in the GPU's
    expect(cpu.processBytes).toBe(trainingProcessBytes(folder.dir));
    expect(cuda.processBytes).toBe(0);
    expect(cuda.totalBytes).toBe(cpu.totalBytes - cpu.deviceBytes - cpu.processBytes + cuda.deviceBytes);
    expect({ ...cuda, deviceBytes: cpu.deviceBytes, device: cpu.device, totalBytes: cpu.totalBytes, processBytes: cpu.processBytes, host: null }).toEqual(cpu);
    // bf16: two copies of the largest operand, rows padded to 8 values: here the fp32 [vocab 320, hidden 64]
    // head (the MLP's weights are 128 x 64, the widest activation 16 rows x 320 logits)
    const bf16 = estimateRun(loadAddon(), folder, run, lora, { device: 'cuda:0', precision: 'bf16' });
    const { vocabSize: V, hiddenSize: D, intermediateSize: F } = folder.spec;
    expect([V, D, F]).toEqual([320, 64, 128]);
    expect(bf16.device!.bf16CopyBytes).toBe(2 * V * (Math.ceil(D / 8) * 8) * 2);
  });

  it("a GPU run's RAM beside the GPU: the training process and the weights' load, held against the RAM", async () => {
    const gib = 2 ** 30;
    for (const dtype of ['F32', 'BF16'] as const) {
      const model = await tinyModel({ seed: 47, dtype });
      const folder = await openModelFolder(model.dir);
      const run = { method: 'qlora', batchSize: 1, seqLen: 16, gradientCheckpointing: false, optimizer: 'adamw', quantization: { type: 'nf4', blocksize: 64, doubleQuant: true } } as TrainConfig;
      const lora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj' as const], layers: null, init: 'default' as const };
      const onGpu = estimateRun(loadAddon(), folder, run, lora, { device: 'cuda:0', precision: 'fp32' }, 1000);
      // the largest linear it quantizes, gate/up/down [128, 64] = 8,192 values: its fp32 copy (32,768 bytes),
      // its codes (4,096 bytes), 128 absmax codes, one nested scale and the offset (8 bytes), and the
      // fp32 absmax the double quantization holds meanwhile (512 bytes); a BF16 file also widens its
      // fp32-held norms ([64] values: 256 bytes) through the staging buffer
      const load = 8192 * 4 + 4096 + 128 + 8 + 128 * 4 + (dtype === 'BF16' ? 64 * 4 : 0);
      const processBytes = trainingProcessBytes(folder.dir, 1000);
      expect(onGpu.host).toEqual({ processBytes, loadBytes: load, totalBytes: processBytes + load });
      expect(onGpu.processBytes).toBe(0);  // not in the GPU's budget
      expect(hostShortfall(onGpu, processBytes + load, false)).toBeNull();
      const short = hostShortfall(onGpu, processBytes + load - 1, false)!;
      expect(short).toContain(`this run needs about ${((processBytes + load) / gib).toFixed(2)} GiB of RAM beside the GPU's memory (the training process (Node, tokenizer, data rows) ${(processBytes / gib).toFixed(2)} GiB, loading the weights 0.00 GiB)`);
      expect(short).toContain('is available in RAM. Free RAM');
      expect(short).toMatch(/or pass --ignore-memory-check to start anyway\.$/);
      expect(hostShortfall(onGpu, 0, true)).toMatch(/starting anyway, as --ignore-memory-check asks\.$/);
      // on the CPU the RAM is the budget already (the process is in totalBytes): nothing more to check
      const onCpu = estimateRun(loadAddon(), folder, run, lora, undefined, 1000);
      expect(onCpu.host).toBeNull();
      expect(onCpu.processBytes).toBe(processBytes);
      expect(hostShortfall(onCpu, 0, false)).toBeNull();
      // without quantization an F32 file is uploaded from its mapping: the process alone
      const lo = estimateRun(loadAddon(), folder, { ...run, method: 'lora', quantization: null }, lora, { device: 'cuda:0', precision: 'fp32' });
      expect(lo.host!.loadBytes).toBe(dtype === 'BF16' ? 64 * 4 : 0);
    }
  });

  it('estimates with the run settings: the engine formula, LoRA far below full', async () => {
    const model = await tinyModel({ seed: 44 });
    const folder = await openModelFolder(model.dir);
    const base = { method: 'lora', batchSize: 2, seqLen: 64, gradientCheckpointing: false, optimizer: 'adamw' } as TrainConfig;
    const lora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj' as const], layers: null, init: 'default' as const };
    const e = estimateRun(loadAddon(), folder, base, lora);
    const direct = loadAddon().estimateMemory(folder.spec, { method: 'lora', batchSize: 2, seqLen: 64, lora: { rank: 4, targets: ['q_proj'], layers: null, dropout: 0 }, gradientCheckpointing: false, optimizer: 'adamw' });
    // the engine's formula, and on the CPU the training process's own memory besides (rows given: counted)
    expect({ ...e, processBytes: undefined, host: undefined, totalBytes: direct.totalBytes }).toEqual({ ...direct, processBytes: undefined, host: undefined });
    expect(e.totalBytes).toBe(direct.totalBytes + e.processBytes);
    expect(e.processBytes).toBe(trainingProcessBytes(folder.dir));
    expect(estimateRun(loadAddon(), folder, base, lora, undefined, 12345).processBytes).toBe(trainingProcessBytes(folder.dir) + 12345);
    const full = estimateRun(loadAddon(), folder, { ...base, method: 'full' } as TrainConfig, null);
    expect(full.gradientBytes).toBe(full.trainableParams * 4);
    expect(e.gradientBytes).toBeLessThan(full.gradientBytes / 10);
  });

  it('train refuses a run that cannot fit, before writing anything', async () => {
    // wide enough that the activations of a step the engine can hold (at most 2^24 tokens) exceed any test machine
    const model = await tinyModel({ seed: 45, hidden: 256, intermediate: 2048 });
    const dir = tempDir('memcheck');
    // 2^14 rows x 256 tokens of activations (hundreds of GiB): the data has that many rows, that long (a batch never holds more than there are)
    const data = await manyRowsFile(model.spec.vocabSize);
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--batch-size', String(2 ** 14), '--seq-len', '512', '--steps', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/this run needs about [\d.]+ GiB .* but only [\d.]+ GiB is available (in RAM|on .+)\./);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('a run started anyway (--ignore-memory-check) says so, not to pass the flag it was given', () => {
    const estimate = { weightBytes: 0, gradientBytes: 0, optimizerBytes: 0, activationBytes: 2 ** 31, deviceBytes: 0, totalBytes: 2 ** 31, quantizedBytes: 0, quantizedParams: 0, trainableParams: 1, totalParams: 1 };
    const config = { method: 'lora', batchSize: 4, gradientCheckpointing: false, quantization: null, precision: 'fp32' } as unknown as TrainConfig;
    expect(memoryShortfall(estimate, 2 ** 30, config)).toMatch(/; or pass --ignore-memory-check to start anyway\.$/);
    const anyway = memoryShortfall(estimate, 2 ** 30, { ...config, ignoreMemoryCheck: true })!;
    expect(anyway).toMatch(/; starting anyway, as --ignore-memory-check asks\.$/);
    expect(anyway).not.toContain('or pass');
  });
});
