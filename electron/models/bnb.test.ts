// QLoRA on the Node side, end to end with the real addon:
//  - a folder saved in bitsandbytes' exact 4-bit layout (written here by an
//    independent TypeScript NF4 quantizer) opens without any flag, is taken
//    as it is, and scores exactly as the F16 source quantized by the engine
//    (eval --quant nf4): both quantizers agree to the bit;
//  - eval/generate --quant flags, inspect's qlora row, clear errors for other
//    quantizations;
//  - merge of a QLoRA adapter: dequantized 4-bit weights + scaling·B·A in the
//    original dtype, the same from the bitsandbytes folder and from the F16
//    base with run.json saying the adapter was trained on NF4.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loraTensorShapes, writePeftAdapter } from '../adapters/peft.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { parseModelConfig } from './config.js';
import { openModelFolder } from './folder.js';
import { f16BitsToF32 } from '../safetensors/convert.js';
import { readSafetensorsHeader, readTensorBytes } from '../safetensors/read.js';
import { Prng } from '../random/prng.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { dequantizeNf4, writeBnbFolder } from '../testing/bnb-writer.js';

async function evalLoss(args: string[]): Promise<number> {
  const r = await cli(['eval', ...args, '--batch-size', '4', '--threads', '2']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).loss;
}

function f16Values(bytes: Uint8Array): Float32Array {
  const u16 = new Uint16Array(bytes.slice().buffer);
  return Float32Array.from(u16, (h) => f16BitsToF32(h));
}

describe('bitsandbytes 4-bit folders and --quant nf4', () => {
  it('a bnb folder loads as it is and scores exactly as the F16 source quantized on load', async () => {
    const model = await tinyModel({ seed: 41, dtype: 'F16' });
    const dir = tempDir('bnb');
    for (const doubleQuant of [true, false]) {
      const bnb = join(dir, `bnb-${doubleQuant}`);
      await writeBnbFolder(model, bnb, { doubleQuant });
      const folder = await openModelFolder(bnb);
      expect(folder.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant, source: 'bitsandbytes', originalDType: 'float16' });
      const q = folder.weights.find((w) => w.name === 'model.layers.0.mlp.down_proj.weight')!;
      expect(q.dtype).toBe('U8');
      expect(q.nf4?.shape).toEqual([64, 128]);

      const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 20));
      const fromBnb = await evalLoss(['--model', bnb, '--data', data]);
      const quantizedOnLoad = await evalLoss(['--model', model.dir, '--data', data, '--quant', 'nf4', ...(doubleQuant ? [] : ['--no-double-quant'])]);
      const unquantized = await evalLoss(['--model', model.dir, '--data', data]);
      expect(fromBnb).toBe(quantizedOnLoad);
      expect(Math.abs(fromBnb - unquantized)).toBeGreaterThan(1e-6);
    }
  });

  it('training on a bnb folder records what the engine holds, and other NF4 settings are refused, not ignored', async () => {
    const model = await tinyModel({ seed: 45, dtype: 'F16' });
    const dir = tempDir('bnb-train');
    const bnb = join(dir, 'bnb');
    await writeBnbFolder(model, bnb, { doubleQuant: false });
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(6, 20));
    const common = ['--data', data, '--steps', '2', '--threads', '2'];

    // --method lora on a 4-bit folder is QLoRA: run.json says so, with the folder's settings
    const out = join(dir, 'lora');
    const r = await cli(['train', '--model', bnb, ...common, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.config.method).toBe('qlora');
    expect(run.config.quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: false });

    // asking for other settings than the folder's is an error before anything is written
    const other = join(dir, 'other');
    const bad = await cli(['train', '--model', bnb, ...common, '--out', other, '--method', 'qlora', '--quant-blocksize', '128']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bitsandbytes saved this model in NF4 with blocksize 64 without double quantization, and it is used as saved');
    expect(existsSync(other)).toBe(false);
    const badEval = await cli(['eval', '--model', bnb, '--data', data, '--quant', 'nf4', '--quant-blocksize', '128']);
    expect(badEval.code).toBe(1);
    expect(badEval.stderr).toContain('cannot be re-quantized with blocksize 128');
  });

  it('generate --quant nf4 equals generation from the bnb folder; bad flags are usage errors', async () => {
    const model = await tinyModel({ seed: 42, dtype: 'F16' });
    const bnb = join(tempDir('bnb-gen'), 'bnb');
    await writeBnbFolder(model, bnb);
    const gen = (m: string, extra: string[] = []) => cli(['generate', '--model', m, '--prompt', 'hello', '--max-new-tokens', '8', '--threads', '2', ...extra]);
    const a = await gen(model.dir, ['--quant', 'nf4']);
    const b = await gen(bnb);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const bad = await gen(model.dir, ['--quant', 'nf4', '--quant-blocksize', '48']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/power of two/);
    const orphan = await gen(model.dir, ['--no-double-quant']);
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toMatch(/needs --quant nf4/);
  });

  it('inspect shows the qlora row with 4-bit figures', async () => {
    const model = await tinyModel({ seed: 43, hidden: 64, intermediate: 256 });
    const r = await cli(['inspect', model.dir]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const { lora, qlora } = report.memory;
    const linears = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 64 * 256 * 3); // q,o + k,v + gate,up,down per layer
    // Per tensor of n weights: n/2 code bytes, n/64 absmax codes, one fp32 per 256 absmax
    // values (one here: every tensor has <= 256 blocks) and the fp32 mean offset.
    expect(qlora.quantized_bytes).toBe(linears / 2 + linears / 64 + 14 * (4 + 4));
    expect(qlora.bits_per_quantized_param).toBeGreaterThan(4.127);
    expect(qlora.bits_per_quantized_param).toBeLessThan(4.127 + (14 * 64) / linears + 1e-9);
    expect(qlora.weights).toBe(lora.weights - linears * 4 + qlora.quantized_bytes);
    // A 4-bit run shares one attention-block buffer set between the 2 layers
    // (backward recomputes it): one set less at 1 x 512 tokens. Per token: rstd
    // 1, q 64, k 32, v 32, attention output 64, lse 4 heads, the residual after
    // attention 64, and LoRA H of q and v 8 each (PEFT's default targets, r 8).
    expect(qlora.activations).toBe(lora.activations - 512 * 4 * (1 + 64 + 32 + 32 + 64 + 4 + 64 + 8 + 8));
    expect(typeof qlora.fits).toBe('boolean');
    expect(report.quantization).toBeNull();
    const noDq = JSON.parse((await cli(['inspect', model.dir, '--no-double-quant'])).stdout).memory.qlora;
    expect(noDq.bits_per_quantized_param).toBe(4.5);
  });

  it('other quantizations are refused with what to do', () => {
    const base = { architectures: ['LlamaForCausalLM'], vocab_size: 300, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 };
    const err = (q: unknown) => {
      try {
        parseModelConfig({ ...base, quantization_config: q }, 'config.json');
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(err({ quant_method: 'bitsandbytes', load_in_8bit: true })).toMatch(/8-bit.*Use the original.*--quant nf4/);
    expect(err({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'fp4' })).toMatch(/"fp4".*only bitsandbytes NF4/);
    expect(err({ quant_method: 'gptq' })).toMatch(/pre-quantized \(gptq\)/);
    const ok = parseModelConfig({ ...base, quantization_config: { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true } }, 'config.json');
    expect(ok.bnb4).toEqual({ quantType: 'nf4', doubleQuant: true, computeDType: null });
  });
});

describe('merge of a QLoRA adapter', () => {
  const LORA: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'down_proj'], layers: null, init: 'default' };

  it('merges dequant(W4) + s·B·A into the original dtype, from a bnb folder or an F16 base trained with NF4', async () => {
    const model = await tinyModel({ seed: 44, dtype: 'F16' });
    const dir = tempDir('qmerge');
    const bnb = join(dir, 'bnb');
    const quantized = await writeBnbFolder(model, bnb);
    const rng = new Prng(5);
    const adapterTensors = loraTensorShapes(model.spec, LORA).map(({ name, shape }) => ({
      name,
      shape,
      data: Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.2),
    }));
    const adapter = join(dir, 'adapter');
    await writePeftAdapter({ dir: adapter, spec: model.spec, lora: LORA, baseModelNameOrPath: bnb, tensors: adapterTensors });

    const fromBnb = await cli(['merge', '--model', bnb, '--adapter', adapter, '--out', join(dir, 'm1'), '--threads', '2']);
    expect(fromBnb.code, fromBnb.stderr).toBe(0);
    // The same adapter recorded (run.json) as trained on an NF4 base, merged into the F16 source.
    writeFileSync(join(adapter, 'run.json'), JSON.stringify({ config: { method: 'qlora', quantization: { type: 'nf4', blocksize: 64, doubleQuant: true } } }));
    const fromF16 = await cli(['merge', '--model', model.dir, '--adapter', adapter, '--out', join(dir, 'm2'), '--threads', '2']);
    expect(fromF16.code, fromF16.stderr).toBe(0);

    const h1 = await readSafetensorsHeader(join(dir, 'm1', 'model.safetensors'));
    const h2 = await readSafetensorsHeader(join(dir, 'm2', 'model.safetensors'));
    expect([...h1.byName.keys()].sort()).toEqual([...model.tensors.keys()].sort()); // bnb companions gone
    const byName = new Map(adapterTensors.map((t) => [t.name, t]));
    for (const [name, t] of model.tensors) {
      const b1 = await readTensorBytes(h1, name);
      expect(h1.byName.get(name)!.dtype, name).toBe('F16');
      expect(h1.byName.get(name)!.shape, name).toEqual(t.shape);
      expect(Buffer.from(b1).equals(Buffer.from(await readTensorBytes(h2, name))), name).toBe(true);
      const q = quantized.get(name);
      if (!q) continue;
      const [out, inF] = t.shape;
      const W = Float64Array.from(dequantizeNf4(q, out * inF, 64));
      const module = name.replace(/\.weight$/, '');
      const A = byName.get(`${module}.lora_A.weight`);
      if (A) {
        const B = byName.get(`${module}.lora_B.weight`)!;
        for (let o = 0; o < out; o++)
          for (let i = 0; i < inF; i++) {
            let acc = 0;
            for (let k = 0; k < 4; k++) acc += B.data[o * 4 + k] * A.data[k * inF + i];
            W[o * inF + i] += 2 * acc; // scaling alpha / r = 2
          }
      }
      const got = f16Values(b1);
      let worst = 0;
      for (let i = 0; i < W.length; i++) worst = Math.max(worst, Math.abs(got[i] - W[i]) / Math.max(Math.abs(W[i]), 6e-5));
      expect(worst, name).toBeLessThan(1e-3); // F16 rounding (2^-11) only
    }
    const config = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'm1', 'config.json'), 'utf8'));
    expect(config.quantization_config).toBeUndefined();
    expect(config.torch_dtype).toBe('float16');
  });
});
