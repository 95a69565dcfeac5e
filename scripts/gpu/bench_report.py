"""Puts bench_gpu's and bench_peft_gpu.py's JSON lines side by side: writes the
results JSON and a Markdown table (ours vs PyTorch + PEFT: tokens/s and their
ratio against the >= 1.5x target, peak device memory and its ratio against the
<= 0.7x target, MFU). Plain Python 3, no third-party modules (the GPU machine
has no Node; scripts/bench-gpu.sh calls this).

Rows already in --merge (an earlier gpu.json) whose config this run did not
measure are kept, so the 1B and 8B configs can be measured in separate runs.

Usage: bench_report.py OURS.jsonl REFERENCE.jsonl --json OUT.json --md OUT.md
       [--merge OLD.json] [--mode quick|full] [--note TEXT]
"""
import argparse
import datetime
import json
import os
import sys

SPEED_TARGET = 1.5   # ours / PyTorch tokens per second, at least
MEMORY_TARGET = 0.7  # ours / PyTorch peak memory, at most


def read_lines(path):
    """The JSON objects among a file's lines (other lines, e.g. headers and tables, are skipped)."""
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def ratio(a, b):
    return a / b if a and b else None


def combine(ours, ref, when):
    by_config = {}
    for r in ours:
        by_config.setdefault(r["config"], {})["ours"] = r
    for r in ref:
        by_config.setdefault(r["config"], {})["pytorch"] = r
    rows = []
    for config, pair in by_config.items():
        o, p = pair.get("ours"), pair.get("pytorch")
        ok_o = o is not None and "error" not in o
        ok_p = p is not None and "error" not in p
        row = {"config": config, "measured": when, "ours": o, "pytorch": p}
        if ok_o and ok_p:
            row["tokens_per_second_ratio"] = ratio(o["tokens_per_second"], p["tokens_per_second"])
            row["peak_memory_ratio"] = ratio(o.get("peak_memory_bytes"), p.get("peak_memory_bytes"))
            row["peak_memory_ratio_vs_reserved"] = ratio(o.get("peak_memory_bytes"), p.get("peak_reserved_bytes"))
            row["same_shape"] = all(o.get(k) == p.get(k) for k in ("seq", "batch", "gradient_checkpointing"))
            s, m = row["tokens_per_second_ratio"], row["peak_memory_ratio"]
            row["speed_target_met"] = s is not None and s >= SPEED_TARGET
            row["memory_target_met"] = m is not None and m <= MEMORY_TARGET
        rows.append(row)
    return rows


def gib(b):
    return f"{b / 2**30:.2f} GiB" if b else "-"


def fmt(x, spec, suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


def cell_error(side):
    if side is None:
        return "not run"
    return "error: " + str(side.get("error", "")).replace("|", "/").replace("\n", " ")[:160]


def markdown(doc):
    rows = doc["rows"]
    out = ["# GPU training benchmark: PEFT Studio vs PyTorch + transformers + peft", ""]
    devices = sorted({r[s]["device"] for r in rows for s in ("ours", "pytorch") if r.get(s) and r[s].get("device")})
    out.append(f"Device: {', '.join(devices) or 'unknown'}. Generated {doc['generated']} by `scripts/bench-gpu.sh`"
               f" ({doc['mode']} mode). Random models shaped like Llama-3.2-1B (tied) and Llama-3.1-8B (untied),"
               " LoRA r=16 alpha=32 on all seven linears; QLoRA: the block linears in NF4 (blocksize 64, double"
               " quantization). One step = forward + backward + AdamW (clip 1.0); tokens/s from the median timed step.")
    if doc.get("note"):
        out += ["", doc["note"]]
    out += ["", f"Targets: tokens/s ratio >= {SPEED_TARGET}x, peak memory ratio <= {MEMORY_TARGET}x.", "",
            "| config | seq x batch | ours tok/s | PyTorch+PEFT tok/s | speed ratio | ours peak mem | PyTorch peak "
            "(alloc / reserved) | mem ratio | ours MFU | PyTorch MFU | targets | measured |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        o, p = r.get("ours"), r.get("pytorch")
        ok_o = o is not None and "error" not in o
        ok_p = p is not None and "error" not in p
        shape = o or p or {}
        sb = f"{shape.get('seq', '?')} x {shape.get('batch', '?')}" + (
            " (ckpt)" if shape.get("gradient_checkpointing") else "")
        ours_tps = fmt(o["tokens_per_second"], ".0f") if ok_o else cell_error(o)
        ref_tps = fmt(p["tokens_per_second"], ".0f") if ok_p else cell_error(p)
        ours_mem = gib(o.get("peak_memory_bytes")) if ok_o else "-"
        ref_mem = f"{gib(p.get('peak_memory_bytes'))} / {gib(p.get('peak_reserved_bytes'))}" if ok_p else "-"
        if ok_o and ok_p:
            targets = ("speed " + ("met" if r["speed_target_met"] else "missed") + ", memory " +
                       ("met" if r["memory_target_met"] else "missed"))
            if not r.get("same_shape", True):
                targets += " (shapes differ!)"
        else:
            targets = "-"
        out.append(" | ".join([
            f"| {r['config']}", sb, ours_tps, ref_tps, fmt(r.get("tokens_per_second_ratio"), ".2f", "x"), ours_mem,
            ref_mem, fmt(r.get("peak_memory_ratio"), ".2f", "x"),
            fmt(o.get("mfu") * 100 if ok_o and o.get("mfu") else None, ".1f", "%"),
            fmt(p.get("mfu") * 100 if ok_p and p.get("mfu") else None, ".1f", "%"), targets, r.get("measured", ""),
        ]) + " |")
    versions = next((p for r in rows for p in [r.get("pytorch")] if p and p.get("torch")), None)
    engine = next((o.get("engine") for r in rows for o in [r.get("ours")] if o and o.get("engine")), None)
    out += ["",
            "- ours: the engine core (`native-addon/bench/bench_gpu.cpp`)" + (f", `{engine}`" if engine else "") + ".",
            "- PyTorch+PEFT: `scripts/reference/bench_peft_gpu.py`" + (
                f" (torch {versions['torch']}, transformers {versions['transformers']}, peft {versions['peft']})"
                if versions else "") + ": bf16 weights, sdpa attention, autocast bf16 as HF Trainer with bf16=True, "
            "fused AdamW; QLoRA through bitsandbytes Linear4bit.",
            "- Peak memory: ours = device memory taken at the peak (cudaMemGetInfo sampled every 2 ms, above the "
            "baseline with the CUDA context up); PyTorch = torch.cuda.max_memory_allocated (what its caching "
            "allocator reserved in parentheses). The ratio uses allocated, the stricter comparison for us.",
            "- MFU: (4 N tokens + causal attention) FLOPs per step over the step time and the card's dense bf16 "
            "peak; N = the block linears + lm_head. The same FLOPs count on both sides, so the MFU ratio is the "
            "speed ratio.", ""]
    return "\n".join(out)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("ours")
    p.add_argument("reference")
    p.add_argument("--json", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--merge")
    p.add_argument("--mode", default="full")
    p.add_argument("--note", default="")
    a = p.parse_args(argv)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = combine(read_lines(a.ours), read_lines(a.reference), when)
    if a.merge and os.path.exists(a.merge):
        try:
            with open(a.merge) as f:
                old = json.load(f).get("rows", [])
            seen = {r["config"] for r in rows}
            rows = [r for r in old if r.get("config") not in seen] + rows
        except (OSError, ValueError, AttributeError) as e:
            print(f"bench_report: ignoring {a.merge}: {e}", file=sys.stderr)
    order = {c: i for i, c in enumerate(["1b-lora", "1b-qlora", "8b-lora", "8b-qlora"])}
    rows.sort(key=lambda r: order.get(r["config"], 99))
    doc = {"generated": when, "mode": a.mode, "note": a.note, "speed_target": SPEED_TARGET,
           "memory_target": MEMORY_TARGET, "rows": rows}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
