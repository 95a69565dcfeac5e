// `inspect` on a tiny model: the documented fields, sizes that match the
// model, and adapter sizes that match files training actually writes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

describe('inspect', () => {
  it('reports sizes, parameters, dtype and a memory table per method', async () => {
    const model = await tinyModel({ seed: 41, dtype: 'BF16', tie: true });
    const r = await cli(['inspect', model.dir, '--batch-size', '2', '--seq-len', '64', '--rank', '4', '--targets', 'q_proj,v_proj,down_proj']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report).sort()).toEqual(['architecture', 'fits_in', 'machine', 'memory', 'model', 'parameters', 'quantization', 'settings', 'sizes', 'stored_dtype', 'weight_file_bytes']);
    // fits is measured on the first GPU the engine lists, else against the available RAM
    const gpu = report.machine.gpus[0];
    expect(report.fits_in).toEqual(gpu
      ? { device: 'cuda:0', where: `on ${gpu.name}`, available_bytes: gpu.free_bytes }
      : { device: 'cpu', where: 'in RAM', available_bytes: report.machine.available_memory_bytes });
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
      expect(Object.keys(m).sort()).toEqual(['activations', 'adapter_bytes', 'fits', 'gradients', 'optimizer_state', 'total_bytes', 'trainable_params', 'weights']);
      const { fits, ...bytes } = m;
      for (const v of Object.values(bytes)) expect(Number.isSafeInteger(v) && (v as number) >= 0).toBe(true);
      // a tiny model fits any machine that runs the tests
      expect(fits).toBe(true);
      expect(m.total_bytes).toBeGreaterThanOrEqual(m.weights + m.gradients + m.optimizer_state + m.activations);
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

  it("the adapter size is exactly the size of the file training writes", async () => {
    const model = await tinyModel({ seed: 42 });
    const dir = tempDir('inspect');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const inspect = JSON.parse((await cli(['inspect', model.dir, '--rank', '3', '--targets', 'all-linear'])).stdout);
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--rank', '3', '--targets', 'all-linear', '--steps', '1', '--threads', '2'])).code).toBe(0);
    expect(statSync(join(dir, 'out', 'adapter_model.safetensors')).size).toBe(inspect.memory.lora.adapter_bytes);
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'full'), '--method', 'full', '--steps', '1', '--threads', '2'])).code).toBe(0);
    expect(statSync(join(dir, 'full', 'model.safetensors')).size).toBe(inspect.memory.full.adapter_bytes);
  });
});
