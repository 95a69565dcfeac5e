// `inspect` on a tiny model: the documented fields, sizes that match the
// model, and adapter sizes that match files training actually writes.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { loadAddon } from '../engine/load.js';
import type { DeviceInfo, LoraTarget, NativeAddon } from '../engine/native.js';
import { microBatchFlops, uniformMicroBatch } from '../training/step-flops.js';
import { METHOD_EFFICIENCY } from '../training/time-estimate.js';
import { choosePrecision } from '../engine/precision.js';
import { openModelFolder } from '../models/folder.js';
import { machineInfo } from '../system/machine.js';
import { PROCESS_BASE_BYTES, TOKENIZER_BYTES_PER_FILE_BYTE } from '../training/process-memory.js';
import { inspectModel, type InspectReport } from './commands/inspect.js';

describe('inspect', () => {
  it('reports sizes, parameters, dtype and a memory table per method', async () => {
    const model = await tinyModel({ seed: 41, dtype: 'BF16', tie: true });
    const r = await cli(['inspect', model.dir, '--batch-size', '2', '--seq-len', '64', '--rank', '4', '--targets', 'q_proj,v_proj,down_proj']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report).sort()).toEqual(['architecture', 'fits_in', 'machine', 'memory', 'model', 'notices', 'parameters', 'quantization', 'settings', 'sizes', 'stored_dtype', 'time', 'weight_file_bytes']);
    expect(report.notices).toEqual([]);
    // tokens/s per method: on the CPU batch x seq over FLOPs / (the measured GEMM speed x the method's efficiency), on a GPU none
    const t = report.time;
    expect(Object.keys(t.tokens_per_second).sort()).toEqual(['full', 'lora', 'prefix', 'prefix_projection', 'prompt', 'qlora']);
    if (report.fits_in.device === 'cpu') {
      const spec = (await openModelFolder(model.dir)).spec;
      const lora = { method: 'lora' as const, lora: { rank: 4, targets: ['q_proj', 'v_proj', 'down_proj'] as LoraTarget[], layers: null }, virtualTokens: 0, prefixEncoderHidden: null, gradientCheckpointing: false };
      const flops = microBatchFlops(spec, lora, uniformMicroBatch(2, 64, 'lora')).total;
      expect(t.gemm_gflops).toBeGreaterThan(0);
      expect(t.tokens_per_second.lora).toBeCloseTo(128 / (flops / (t.gemm_gflops * 1e9 * METHOD_EFFICIENCY.lora)), 6);
      // full fine-tuning does more work per token than LoRA, at a lower efficiency
      expect(t.tokens_per_second.full).toBeLessThan(t.tokens_per_second.lora);
    } else {
      expect(Object.values(t.tokens_per_second).every((v) => v === null)).toBe(true);
      expect(t.gemm_gflops).toBeNull();
    }
    expect(r.stderr).toBe('');
    // fits is measured on the first GPU the engine can use (by its own index), else against the available RAM
    for (const [i, g] of report.machine.gpus.entries()) expect(g.index).toBe(i);
    const gpu = report.machine.gpus.find((g: { unusable: string | null }) => g.unusable === null);
    // and the precision a run there computes in (auto: bf16 on a GPU with bf16 tensor cores, else fp32)
    const { precision, reason } = choosePrecision('auto', gpu ? { name: gpu.name, computeCapability: gpu.compute_capability } : null);
    expect(report.fits_in).toEqual(gpu
      ? { device: `cuda:${gpu.index}`, where: `on ${gpu.name}`, available_bytes: gpu.free_bytes, precision, precision_reason: reason }
      : { device: 'cpu', where: 'in RAM', available_bytes: report.machine.available_memory_bytes, precision, precision_reason: reason });
    expect(report.quantization).toBeNull();
    expect(report.machine.cpu_threads).toBeGreaterThan(0);
    expect(report.machine.available_memory_bytes).toBeGreaterThan(0);
    expect(report.machine.available_memory_bytes).toBeLessThanOrEqual(report.machine.total_memory_bytes);
    expect(report.architecture).toBe('LlamaForCausalLM');
    expect(report.sizes).toEqual({ hidden: 64, layers: 2, heads: 4, kv_heads: 2, head_dim: 16, intermediate: 128, vocab: 320, max_positions: 512, tie_word_embeddings: true });
    // counted independently: embeddings (tied) + per layer q,k,v,o + mlp + 2 norms + final norm
    const perLayer = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (64 * 128) + 2 * 64;
    expect(report.parameters).toBe(320 * 64 + 2 * perLayer + 64);
    expect(report.stored_dtype).toBe('BF16');
    expect(report.weight_file_bytes).toBe(report.parameters * 2);
    // encoder_hidden_size: PEFT's default is token_dim, kv_heads * head_dim = 32 here
    expect(report.settings).toEqual({ batch_size: 2, seq_len: 64, rank: 4, targets: ['q_proj', 'v_proj', 'down_proj'], virtual_tokens: 20, encoder_hidden_size: 32, optimizer: 'adamw', gradient_checkpointing: false, quant_blocksize: 64, double_quant: true });
    expect(Object.keys(report.memory).sort()).toEqual(['full', 'lora', 'prefix', 'prefix_projection', 'prompt', 'qlora']);
    // prompt tuning: 20 virtual tokens x hidden 64; prefix: 20 x (2 layers x 2 (k, v) x kv dim 32);
    // with the projection MLP: embedding [20, 32] + Linear(32 -> 32) + Linear(32 -> 128), biases included
    expect(report.memory.prompt.trainable_params).toBe(20 * 64);
    expect(report.memory.prefix.trainable_params).toBe(20 * 2 * 2 * 32);
    expect(report.memory.prefix_projection.trainable_params).toBe(20 * 32 + (32 * 32 + 32) + (128 * 32 + 128));
    // the saved file holds the folded table either way
    expect(report.memory.prefix_projection.adapter_bytes).toBe(report.memory.prefix.adapter_bytes);
    for (const method of ['full', 'lora']) {
      const m = report.memory[method];
      // on the CPU (this machine) one more part: what its threads hold while a step runs
      expect(Object.keys(m).sort()).toEqual(['activations', 'adapter_bytes', 'checkpoint_bytes', 'cpu_threads_scratch', 'fits', 'gradients', 'optimizer_state', 'total_bytes', 'trainable_params', 'training_process', 'weights']);
      const { fits, ...bytes } = m;
      for (const v of Object.values(bytes)) expect(Number.isSafeInteger(v) && (v as number) >= 0).toBe(true);
      // a tiny model fits any machine that runs the tests
      expect(fits).toBe(true);
      expect(m.cpu_threads_scratch).toBeGreaterThan(0);
      // and the training process itself: Node's base and the tokenizer (process-memory.ts), no rows (inspect reads no data)
      expect(m.training_process).toBe(PROCESS_BASE_BYTES + statSync(join(model.dir, 'tokenizer.json')).size * TOKENIZER_BYTES_PER_FILE_BYTE);
      expect(m.total_bytes).toBe(m.weights + m.gradients + m.optimizer_state + m.activations + m.cpu_threads_scratch! + m.training_process!);
    }
    const loraParams = 2 * (4 * (64 + 64) + 4 * (64 + 32) + 4 * (128 + 64));
    expect(report.memory.lora.trainable_params).toBe(loraParams);
    expect(report.memory.full.trainable_params).toBe(report.parameters);
    // AdamW keeps two fp32 moments per trainable parameter
    expect(report.memory.lora.optimizer_state).toBe(loraParams * 8);
    expect(report.memory.lora.gradients).toBe(loraParams * 4);
    // A BF16 checkpoint's frozen block linears and tied embedding (= lm_head, read by the 16-bit
    // GEMMs as stored) stay 16-bit (2 bytes a value) under LoRA / prompt / prefix tuning; the
    // norms and the adapter are fp32. Full fine-tuning trains fp32 master copies of everything.
    const linears = 2 * (64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (64 * 128));
    const sixteen = linears + 320 * 64;
    const fp32Base = report.parameters - sixteen;
    expect(fp32Base).toBe(2 * 2 * 64 + 64);
    expect(report.memory.lora.weights).toBe(sixteen * 2 + fp32Base * 4 + loraParams * 4);
    expect(report.memory.prompt.weights).toBe(sixteen * 2 + fp32Base * 4 + 20 * 64 * 4);
    expect(report.memory.full.weights).toBe(report.parameters * 4);
  });

  it('--device / --precision: the CPU in fp32, bf16 there refused; on a GPU each row counts the CUDA runtime and scratch', async () => {
    const model = await tinyModel({ seed: 41, dtype: 'BF16', tie: true });
    const cpu = await cli(['inspect', model.dir, '--device', 'cpu', '--precision', 'fp32']);
    expect(cpu.code, cpu.stderr).toBe(0);
    const report = JSON.parse(cpu.stdout) as InspectReport;
    expect(report.fits_in).toMatchObject({ device: 'cpu', precision: 'fp32', precision_reason: 'fp32: asked for (exact)' });
    for (const row of Object.values(report.memory)) {
      expect(row.cuda_runtime_and_scratch).toBeUndefined();
      expect(row.cpu_threads_scratch).toBeGreaterThan(0);
    }
    const bf16 = await cli(['inspect', model.dir, '--device', 'cpu', '--precision', 'bf16']);
    expect(bf16.code).not.toBe(0);
    expect(bf16.stderr).toContain('--precision bf16: the CPU computes in fp32 only');
    const bad = await cli(['inspect', model.dir, '--precision', 'fp16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--precision: unknown precision 'fp16'; use auto");

    // The report for a machine with an H200: the engine's own addon, its device list given as data
    // (the estimate itself needs no GPU). auto -> cuda:0 in bf16.
    const h200: DeviceInfo = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 150e9, freeBytes: 140e9, error: '' };
    const real = loadAddon();
    const withGpu: NativeAddon = { ...real, cudaBackend: true, devices: () => [h200], estimateMemory: real.estimateMemory.bind(real) };
    const folder = await openModelFolder(model.dir);
    const settings: InspectReport['settings'] = { batch_size: 2, seq_len: 64, rank: 4, targets: ['q_proj', 'v_proj'], optimizer: 'adamw', gradient_checkpointing: false };
    const onGpu = inspectModel(withGpu, folder, settings, machineInfo());
    const onCpu = inspectModel(withGpu, folder, settings, machineInfo(), { device: 'cpu', precision: 'auto' });
    expect(onGpu.fits_in).toEqual({ device: 'cuda:0', where: 'on NVIDIA H200', available_bytes: 140e9, precision: 'bf16', precision_reason: 'bf16: NVIDIA H200 (compute capability 9.0) has bf16 tensor cores (auto)' });
    // LoRA on the BF16 file, 2 x 64 tokens: 512 MiB context + 32 MiB cuBLASLt workspace; the 16-bit
    // [320, 64] head widened whole (320 x 64 x 4 = 81,920 bytes); two bf16 copies of the largest
    // operand, the [128 rows, 320] logits (2 x 40,960 x 2 = 163,840 bytes); the fused LoRA partials of
    // q_proj [64 x 64] at rank 4 over 128 rows = 4 row tiles of 32, each its own row group: dH 128 x 4
    // + dB 4 x 64 x 4 + dA 4 x 4 x 64 floats (v_proj [32 x 64] needs less) = 2,560 x 4 bytes
    const loraPartials = (128 * 4 + 4 * 64 * 4 + 4 * 4 * 64) * 4;
    expect(onGpu.memory.lora.cuda_runtime_and_scratch).toBe(536870912 + 33554432 + 81920 + 163840 + loraPartials);
    // bf16 keeps activations in bf16: each layer but the last holds q, k, v, the attention output, gate
    // and up in 2 bytes instead of 4, beside one fp32 working set (activations.h Bf16Kept); QLoRA
    // recomputes its attention part, so there only gate and up. 2 x 64 rows; every buffer is a
    // multiple of 64 bytes here, so no padding: (L - 1) x 2 bytes x rows x widths.
    const { numLayers: L, numHeads: Hq, numKvHeads: Hkv, headDim: hd, intermediateSize: F } = folder.spec;
    const rows = 2 * 64, Dq = Hq * hd, Dkv = Hkv * hd;
    const saved = (widths: number) => (L - 1) * 2 * rows * widths;
    expect(onCpu.memory.lora.activations - onGpu.memory.lora.activations).toBe(saved(2 * F + 2 * Dq + 2 * Dkv));
    expect(onCpu.memory.full.activations - onGpu.memory.full.activations).toBe(saved(2 * F + 2 * Dq + 2 * Dkv));
    expect(onCpu.memory.qlora.activations - onGpu.memory.qlora.activations).toBe(saved(2 * F));
    for (const method of ['full', 'lora', 'qlora', 'prompt', 'prefix', 'prefix_projection'] as const) {
      const g = onGpu.memory[method], c = onCpu.memory[method];
      expect(g.cuda_runtime_and_scratch).toBeGreaterThanOrEqual(544 * 2 ** 20);
      expect(g.activations).toBeLessThan(c.activations);
      // the GPU's runtime and scratch instead of the CPU threads' scratch; the process is host RAM, not the GPU's
      expect(g.cpu_threads_scratch).toBeUndefined();
      expect(g.training_process).toBeUndefined();
      expect(g.total_bytes).toBe(c.total_bytes - c.activations - c.cpu_threads_scratch! - c.training_process! + g.activations + g.cuda_runtime_and_scratch!);
      // the RAM beside the GPU: the process, and the load's host buffers: the [64] norms widened from BF16
      // (256 bytes); QLoRA's largest quantized linear [F, D] = 8,192 values too: fp32 copy, codes and
      // scales (4,096 + 128 + 8 bytes), the double quantization's fp32 absmax (128 x 4)
      const n = F * folder.spec.hiddenSize;
      const loading = 64 * 4 + (method === 'qlora' ? n * 4 + n / 2 + n / 64 + 8 + (n / 64) * 4 : 0);
      expect(g.host_ram).toEqual({ training_process: c.training_process, loading_weights: loading, total_bytes: c.training_process! + loading, available_bytes: expect.any(Number) });
      expect({ ...g, cuda_runtime_and_scratch: undefined, host_ram: undefined, activations: c.activations, total_bytes: c.total_bytes, fits: c.fits })
        .toEqual({ ...c, cpu_threads_scratch: undefined, training_process: undefined });
    }
    // fp32 asked for: no operand copies, and the CPU's activations
    const fp32 = inspectModel(withGpu, folder, settings, machineInfo(), { device: 'auto', precision: 'fp32' });
    expect(fp32.memory.lora.cuda_runtime_and_scratch).toBe(536870912 + 33554432 + 81920 + loraPartials);
    for (const method of ['full', 'lora', 'qlora', 'prompt', 'prefix', 'prefix_projection'] as const)
      expect(fp32.memory[method].activations).toBe(onCpu.memory[method].activations);

    // on a GPU no speed has been measured: no tokens/s is said, on the CPU one per method
    expect(Object.values(onGpu.time.tokens_per_second).every((v) => v === null)).toBe(true);
    expect(onGpu.time.gemm_gflops).toBeNull();
    expect(Object.values(onCpu.time.tokens_per_second).every((v) => typeof v === 'number' && v > 0)).toBe(true);

    // Three GPUs, GPU 1 unable to report itself: the report lists all three at their own index, GPU 1
    // with why, and --device cuda:2 measures against GPU 2's free memory (not the entry after GPU 0's).
    const broken: DeviceInfo = { index: 1, name: '', computeCapability: '0.0', totalBytes: 0, freeBytes: 0, error: 'CUDA error: unknown error' };
    const l4: DeviceInfo = { index: 2, name: 'NVIDIA L4', computeCapability: '8.9', totalBytes: 24e9, freeBytes: 23e9, error: '' };
    const three: NativeAddon = { ...withGpu, devices: () => [h200, broken, l4] };
    const onThird = inspectModel(three, folder, settings, machineInfo(), { device: 'cuda:2', precision: 'fp32' });
    expect(onThird.fits_in).toMatchObject({ device: 'cuda:2', where: 'on NVIDIA L4', available_bytes: 23e9 });
    expect(onThird.machine.gpus.map((g) => [g.index, g.name, g.unusable])).toEqual([
      [0, 'NVIDIA H200', null], [1, '', 'GPU 1 (cuda:1) cannot be used: CUDA error: unknown error'], [2, 'NVIDIA L4', null]]);
    expect(() => inspectModel(three, folder, settings, machineInfo(), { device: 'cuda:1', precision: 'auto' })).toThrow(
      /^--device cuda:1: GPU 1 \(cuda:1\) cannot be used: CUDA error: unknown error\. .*use --device cuda:0 or cuda:2 \(or auto\), or --device cpu$/);
  });

  it("the adapter size is exactly the size of the file training writes, a checkpoint's within its small files", async () => {
    const model = await tinyModel({ seed: 42 });
    const dir = tempDir('inspect');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const inspect = JSON.parse((await cli(['inspect', model.dir, '--rank', '3', '--targets', 'all-linear'])).stdout);
    const folderBytes = (d: string) => readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--rank', '3', '--targets', 'all-linear', '--steps', '1', '--threads', '2', '--save-every', '1'])).code).toBe(0);
    expect(statSync(join(dir, 'out', 'adapter_model.safetensors')).size).toBe(inspect.memory.lora.adapter_bytes);
    // the weights and AdamW's moments exactly; the JSON files, README and marker within 4 KiB
    expect(Math.abs(folderBytes(join(dir, 'out', 'checkpoints', 'step-1')) - inspect.memory.lora.checkpoint_bytes)).toBeLessThanOrEqual(4096);
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'full'), '--method', 'full', '--steps', '1', '--threads', '2', '--save-every', '1'])).code).toBe(0);
    expect(statSync(join(dir, 'full', 'model.safetensors')).size).toBe(inspect.memory.full.adapter_bytes);
    expect(Math.abs(folderBytes(join(dir, 'full', 'checkpoints', 'step-1')) - inspect.memory.full.checkpoint_bytes)).toBeLessThanOrEqual(4096);
    // full fine-tuning's checkpoint holds the model and two moments of each weight: about three models
    expect(inspect.memory.full.checkpoint_bytes / inspect.memory.full.adapter_bytes).toBeGreaterThan(2.9);
  });

  it('--help names every field the report has (the memory rows\', fits_in\'s, machine\'s and time\'s too)', async () => {
    const model = await tinyModel({ seed: 44 });
    const r = await cli(['inspect', model.dir, '--device', 'cpu', '--seq-len', '32']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    const keysOf = (o: unknown): string[] => (o !== null && typeof o === 'object' && !Array.isArray(o) ? Object.keys(o) : []);
    const memory = report.memory as Record<string, Record<string, unknown>>;
    const fields = new Set([
      ...keysOf(report),
      ...Object.values(memory).flatMap(keysOf),
      ...keysOf(report.fits_in), ...keysOf(report.machine), ...keysOf((report.machine as { limits?: unknown }).limits), ...keysOf(report.time),
    ]);
    // the CPU rows' own parts (part of total_bytes) are among them: the fields the help once left out
    expect(fields).toContain('cpu_threads_scratch');
    expect(fields).toContain('training_process');
    const help = (await cli(['inspect', '--help'])).stdout;
    // a whole word: "fits" is not found inside "fits_in"
    const unnamed = [...fields].filter((f) => !new RegExp(`\\b${f}\\b`).test(help));
    expect(unnamed).toEqual([]);
  });
});

describe('inspect notices', () => {
  it('says which tensors config.json does not use, and warns about a --seq-len beyond the positions', async () => {
    const model = await tinyModel({ seed: 43, layers: 3 });
    const config = JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8'));
    writeFileSync(join(model.dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 2 }));
    const r = await cli(['inspect', model.dir, '--seq-len', '100000']);
    expect(r.code, r.stderr).toBe(0);
    const unused = 'config.json has 2 layers (num_hidden_layers) but the weights have 3: model.layers.2.* (9 tensors) are not used. ' +
      'If config.json was edited by mistake, restore its num_hidden_layers; the model runs with the first 2 layers only';
    const seqLen = "--seq-len 100000 is beyond the model's max_position_embeddings (512): train refuses it, so these estimates are for a length no run can use; use --seq-len 512 or less";
    expect(r.stderr).toBe(`note: ${unused}\nwarning: ${seqLen}\n`);
    // the app reads the same report (service/model.ts modelOverview)
    expect(JSON.parse(r.stdout).notices).toEqual([unused, seqLen]);
    // at the limit: nothing to say about the length
    expect((await cli(['inspect', model.dir, '--seq-len', '512'])).stderr).toBe(`note: ${unused}\n`);
  });

  it('without --seq-len: the length train would take (512, or the model\'s positions when fewer), not a warning about a default', async () => {
    const model = await tinyModel({ seed: 44, maxPosition: 128 });
    const r = await cli(['inspect', model.dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).settings.seq_len).toBe(128);
  });
});
