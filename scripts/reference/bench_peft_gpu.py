"""The PyTorch + transformers + peft reference for bench_gpu (issue 7,
"Benchmark"): the same random Llama shapes, the same LoRA / QLoRA setups and
the same training steps, timed the same way, on the GPU.

  1b   Llama-3.2-1B shape: hidden 2048, 16 layers, 32 / 8 heads, intermediate
       8192, vocab 128256, tied embeddings, llama3 RoPE x32
  8b   Llama-3.1-8B shape: hidden 4096, 32 layers, 32 / 8 heads, intermediate
       14336, vocab 128256, untied lm_head, llama3 RoPE x8
  lora   bf16 base (LlamaForCausalLM random init from its config, sdpa
         attention), peft LoRA r=16 alpha=32 on all seven linears
  qlora  the same with the block linears in bitsandbytes 4-bit NF4
         (blocksize 64, double quantization, bf16 compute), as
         load_in_4bit + bnb_4bit_use_double_quant would hold them; the
         embedding, norms and lm_head stay bf16

Nothing is downloaded: the models are random, built from a LlamaConfig
directly on the GPU. The training step is what HF Trainer does with bf16=True:
forward under torch.autocast(bfloat16) (peft keeps the adapter weights in
fp32), loss with the labels shifted inside, backward, clip_grad_norm_(1.0),
AdamW (lr 1e-4, fused when available), zero_grad. Gradient checkpointing is
off unless --gradient-checkpointing (non-reentrant, transformers' own).
--kbit-prepare adds peft's prepare_model_for_kbit_training to the QLoRA rows
(the QLoRA recipe; it upcasts the bf16 embedding, norms and lm_head to fp32).

Timing: warm-up steps, then each timed step between torch.cuda.synchronize()
calls; the median gives tokens/s, the fastest "best". Memory: peak
torch.cuda.max_memory_allocated (and _reserved) from a reset taken when the
model is built (quantized), so it covers the weights, adapters, optimizer
state and the steps, not the bf16 copy a QLoRA build quantizes from; also
device_bytes_after, the device's used memory (mem_get_info) above the baseline
taken before the model existed, CUDA context excluded as in bench_gpu.
FLOPs and MFU: the definition of bench_gpu.cpp (4 N tokens + attention, N the
block linears + lm_head; the card's dense bf16 peak from the same table).

Output: one JSON line per config on stdout ({"impl": "pytorch+peft", ...};
a QLoRA row without bitsandbytes is {"error": "bitsandbytes missing"}), then a
short table on stderr. Exit 0 when every row ran (or was skipped for missing
bitsandbytes), 1 otherwise, 77 when there is no CUDA GPU.

Usage: python3 bench_peft_gpu.py [--configs 1b-lora,1b-qlora,8b-lora,8b-qlora]
  [--steps N] [--warmup N] [--seq N] [--batch N] [--quick]
  [--gradient-checkpointing] [--peak-tflops X] [--no-autocast] [--kbit-prepare]
"""
import argparse
import gc
import json
import math
import statistics
import sys
import time

SHAPES = {
    "1b": dict(label="Llama-3.2-1B shape", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True, rope_factor=32.0),
    "8b": dict(label="Llama-3.1-8B shape", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=False, rope_factor=8.0),
}
VOCAB = 128256
RANK, ALPHA = 16, 32
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Dense bf16 tensor-core peak (FP32 accumulate), TFLOPS; first match in the device name wins (bench_gpu.cpp's table).
PEAKS = [("H200", 989), ("H100 PCIe", 756), ("H100", 989), ("A100", 312), ("L40S", 362), ("RTX 4090", 165),
         ("RTX 3090", 71)]


def table_peak_tflops(name):
    for key, peak in PEAKS:
        if key in name:
            return peak
    return 0


def step_flops(shape, batch, seq):
    """bench_gpu.cpp's step_flops: 4 N tokens + causal attention (forward 4 hd Hq P, backward 8 hd Hq P)."""
    d, f, hd = shape["hidden_size"], shape["intermediate_size"], shape["head_dim"]
    hq, hkv, layers = shape["num_attention_heads"], shape["num_key_value_heads"], shape["num_hidden_layers"]
    dq, dkv = hq * hd, hkv * hd
    n = layers * (d * dq + 2 * d * dkv + dq * d + 3 * d * f) + VOCAB * d
    tokens = batch * seq
    pairs = batch * (seq * (seq + 1) / 2)
    return 4 * n * tokens + 12 * hd * hq * pairs * layers


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch + peft LoRA / QLoRA training throughput on random Llama shapes")
    p.add_argument("--configs", default="1b-lora,1b-qlora,8b-lora,8b-qlora")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1b-lora,1b-qlora at seq 512, 1 warm-up + 2 steps")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=0.0)
    p.add_argument("--no-autocast", action="store_true", help="bf16 weights without autocast (adapters then run fp32)")
    p.add_argument("--kbit-prepare", action="store_true", help="peft prepare_model_for_kbit_training on QLoRA rows")
    a = p.parse_args(argv)
    if a.quick:
        if a.configs == p.get_default("configs"):
            a.configs = "1b-lora,1b-qlora"
        a.seq, a.steps, a.warmup = 512, 2, 1
    a.configs = [c for c in a.configs.split(",") if c]
    for c in a.configs:
        key, _, method = c.partition("-")
        if key not in SHAPES or method not in ("lora", "qlora"):
            p.error(f"unknown config {c!r}: use 1b-lora, 1b-qlora, 8b-lora, 8b-qlora")
    a.steps, a.warmup, a.batch = max(1, a.steps), max(0, a.warmup), max(1, a.batch)
    return a


def llama_config(shape, seq):
    """The shape's LlamaConfig, for transformers 4.x (rope_theta + rope_scaling) and 5.x (rope_parameters)."""
    import dataclasses
    import inspect
    from transformers import LlamaConfig
    rope = {"rope_type": "llama3", "factor": shape["rope_factor"], "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    kw = dict(vocab_size=VOCAB, hidden_size=shape["hidden_size"], intermediate_size=shape["intermediate_size"],
              num_hidden_layers=shape["num_hidden_layers"], num_attention_heads=shape["num_attention_heads"],
              num_key_value_heads=shape["num_key_value_heads"], head_dim=shape["head_dim"], hidden_act="silu",
              max_position_embeddings=max(131072, seq), rms_norm_eps=1e-5,
              tie_word_embeddings=shape["tie_word_embeddings"], attention_bias=False, mlp_bias=False, use_cache=False,
              bos_token_id=128000, eos_token_id=128001)
    fields = set(inspect.signature(LlamaConfig.__init__).parameters)
    if dataclasses.is_dataclass(LlamaConfig):
        fields |= {f.name for f in dataclasses.fields(LlamaConfig)}
    if "rope_parameters" in fields:
        kw["rope_parameters"] = dict(rope, rope_theta=500000.0)
    else:
        kw.update(rope_theta=500000.0, rope_scaling=rope)
    return LlamaConfig(**kw)


def build_model(torch, shape, seq):
    """A random bf16 LlamaForCausalLM with sdpa attention made directly on the GPU (no host copy, no download)."""
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    cfg = llama_config(shape, seq)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            try:
                model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
            except TypeError:  # transformers 4.x: torch_dtype
                model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    finally:
        torch.set_default_dtype(old)
    if next(model.parameters()).dtype != torch.bfloat16:
        model = model.to(torch.bfloat16)
    return model


def quantize_block_linears(torch, model):
    """Replaces the seven linears of every block with bitsandbytes Linear4bit (NF4, blocksize 64, double
    quantization, bf16 compute): the modules and quant states load_in_4bit would create."""
    import bitsandbytes as bnb
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, lin in list(parent.named_children()):
                if name not in TARGETS:
                    continue
                q = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=False, compute_dtype=torch.bfloat16,
                                      compress_statistics=True, quant_type="nf4", device="meta")
                kwargs = dict(requires_grad=False, blocksize=64, compress_statistics=True, quant_type="nf4")
                try:
                    w = bnb.nn.Params4bit(lin.weight.data, module=q, **kwargs)
                except TypeError:  # bitsandbytes < 0.43 has no module argument
                    w = bnb.nn.Params4bit(lin.weight.data, **kwargs)
                w = w.to("cuda")  # quantizes (bitsandbytes >= 0.43 also when the data is on the GPU already)
                if getattr(w, "quant_state", None) is None:  # older: only a host -> GPU move quantizes
                    w = bnb.nn.Params4bit(lin.weight.data.cpu(), **kwargs).cuda(torch.cuda.current_device())
                q.weight = w
                setattr(parent, name, q)
                del lin, w
    try:
        model.is_loaded_in_4bit = True  # peft then wraps the 4-bit layers with its bnb LoRA layer
    except Exception:  # a read-only property in some transformers versions
        pass
    return model


def run_config(torch, name, a):
    key, _, method = name.partition("-")
    shape = SHAPES[key]
    qlora = method == "qlora"
    row = {"impl": "pytorch+peft", "config": name, "model": shape["label"], "method": method,
           "device": torch.cuda.get_device_name(), "batch": a.batch, "seq": a.seq, "warmup": a.warmup,
           "steps": a.steps, "gradient_checkpointing": a.gradient_checkpointing, "autocast": not a.no_autocast}
    if qlora:
        try:
            import bitsandbytes
            row["bitsandbytes"] = bitsandbytes.__version__
        except Exception as e:  # ImportError, or a broken CUDA setup inside bitsandbytes
            row["error"] = "bitsandbytes missing" + (f" ({type(e).__name__}: {e})" if not isinstance(e, ImportError) else "")
            return row
    from peft import LoraConfig, get_peft_model

    gc.collect()
    torch.cuda.empty_cache()
    baseline_free = torch.cuda.mem_get_info()[0]
    t_load = time.perf_counter()
    model = build_model(torch, shape, a.seq)
    if qlora:
        model = quantize_block_linears(torch, model)
        if a.kbit_prepare:
            from peft import prepare_model_for_kbit_training
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=a.gradient_checkpointing)
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    row["base_bytes"] = torch.cuda.memory_allocated()
    row["attn_implementation"] = getattr(model.config, "_attn_implementation", "?")
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    lcfg = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0, bias="none",
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)
    model.train()
    lora_classes = sorted({type(m).__module__ + "." + type(m).__name__ for n, m in model.named_modules()
                           if n.endswith(".q_proj")})
    row["lora_layer"] = ",".join(lora_classes)
    params = [p for p in model.parameters() if p.requires_grad]
    row["trainable_params"] = sum(p.numel() for p in params)
    try:
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
        row["optimizer"] = "AdamW fused"
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        row["optimizer"] = "AdamW"
    row["load_seconds"] = time.perf_counter() - t_load

    g = torch.Generator(device="cuda").manual_seed(7)
    ids = torch.randint(0, VOCAB, (a.batch, a.seq), device="cuda", generator=g)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=not a.no_autocast):
            out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.detach()

    first = None
    for i in range(a.warmup):
        loss = step()
        if i == 0:
            first = loss.item()
    times = []
    last = None
    for i in range(a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        last = loss.item()
        if first is None:
            first = last
        print(f"{name} step {i + 1}: {times[-1]:.3f} s, loss {last:.4f}", file=sys.stderr, flush=True)
    if not (math.isfinite(first) and math.isfinite(last)):
        raise RuntimeError(f"the loss is not finite (first {first}, last {last})")
    step_s = statistics.median(times)
    flops = step_flops(shape, a.batch, a.seq)
    peak = a.peak_tflops or table_peak_tflops(row["device"])
    row.update({
        "tokens_per_step": a.batch * a.seq, "step_seconds": step_s, "best_step_seconds": min(times),
        "tokens_per_second": a.batch * a.seq / step_s, "flops_per_step": flops, "tflops": flops / step_s * 1e-12,
        "peak_tflops": peak, "mfu": (flops / step_s * 1e-12 / peak) if peak else 0.0,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
        "device_bytes_after": max(0, baseline_free - torch.cuda.mem_get_info()[0]),
        "first_loss": first, "last_loss": last, "expected_first_loss": math.log(VOCAB),
    })
    del opt, model, params, ids
    return row


def main(argv):
    a = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_peft_gpu: skipped: torch is not installed", flush=True)
        return 77
    if not torch.cuda.is_available():
        print("bench_peft_gpu: skipped: torch sees no CUDA GPU", flush=True)
        return 77
    import peft
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    print(f"# bench_peft_gpu: {torch.cuda.get_device_name()}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, peft {peft.__version__}, batch {a.batch} x seq {a.seq}, {a.warmup} warm-up + "
          f"{a.steps} timed steps, gradient checkpointing {'on' if a.gradient_checkpointing else 'off'}", flush=True)
    status = 0
    rows = []
    for name in a.configs:
        try:
            row = run_config(torch, name, a)
        except Exception as e:  # one failing config (e.g. out of memory) does not stop the others
            row = {"impl": "pytorch+peft", "config": name, "error": f"{type(e).__name__}: {e}"[:2000]}
        if "error" in row and not row["error"].startswith("bitsandbytes missing"):
            status = 1
        row.update({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__})
        print(json.dumps(row), flush=True)
        rows.append(row)
        gc.collect()
        torch.cuda.empty_cache()
    print(f"\n{'config':<10} {'tok/s':>9} {'step ms':>9} {'TFLOPS':>8} {'MFU':>7} {'peak alloc':>11} {'peak rsvd':>11}",
          file=sys.stderr)
    for r in rows:
        if "error" in r:
            print(f"{r['config']:<10} FAILED: {r['error'][:200]}", file=sys.stderr)
            continue
        print(f"{r['config']:<10} {r['tokens_per_second']:9.0f} {r['step_seconds'] * 1e3:9.1f} {r['tflops']:8.1f} "
              f"{r['mfu'] * 100:6.1f}% {r['peak_memory_bytes'] / 2**20:7.0f} MiB {r['peak_reserved_bytes'] / 2**20:7.0f} MiB",
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
