#!/usr/bin/env bash
# `npm run bench:gpu` (issue 7, "Benchmark"), and what a GPU machine runs
# directly (it has no Node): LoRA / QLoRA training tokens/s, MFU and peak
# device memory of the engine (native-addon/bench/bench_gpu.cpp) and of
# PyTorch + transformers + peft (scripts/reference/bench_peft_gpu.py) on the
# same random Llama-3.2-1B / Llama-3.1-8B shapes, the same steps, in one run;
# then the comparison (scripts/gpu/bench_report.py):
#   bench/results/gpu.md, bench/results/gpu.json          (full mode)
#   bench/results/gpu-quick.md, bench/results/gpu-quick.json  (--quick)
# and, when $OUT is set, the same files plus every log under $OUT. Rows of an
# earlier run for configs this run did not measure are kept (so 1B and 8B can
# be measured in separate device sessions).
#
# Usage (repository root): scripts/bench-gpu.sh [--quick] [--configs=A,B] [--steps=N]
#        [--warmup=N] [--seq=N] [--batch=N] [--gradient-checkpointing] [--peak-tflops=X]
#   --quick: 1b-lora,1b-qlora at seq 512, 1 warm-up + 2 steps: about 2-3 minutes
#            with the build (a smoke run for a first GPU session).
#   full (default): 1b-lora,1b-qlora,8b-lora,8b-qlora at seq 2048, 2 warm-up + 5
#            steps. With today's fp32 kernels the 8B rows are slow: run them as
#            their own call (--configs=8b-lora,8b-qlora) when device time is short.
# Environment:
#   BENCH_GPU_BUILD_DIR  build directory (default native-addon/build-gpu, shared with gpu-check.sh)
#   BENCH_GPU_ARCH       CUDA architecture (default: nvidia-smi's compute_cap, else 90)
#   BENCH_GPU_JOBS       parallel build jobs (default: all CPUs)
#   BENCH_GPU_TIMEOUT    seconds for each side's run (default 150 quick, 270 full: one call fits the
#                        device tool's 10-minute limit; raise it on your own machine for all four configs)
#   BENCH_GPU_PYTHON     the Python with torch (default python3)
#   The engine's own switches reach its runs unchanged, e.g. PEFT_STUDIO_GEMM=own (the own
#   GEMM kernels even when cuBLASLt loads: what a machine with only the driver gets) and
#   PEFT_STUDIO_GEMM_BF16=prefetch (the prefetching bf16 kernel instead of the simple one).
# Exit: 0 when both sides ran every config (a QLoRA row without bitsandbytes on
# the PyTorch side counts as run), 77 when there is no GPU / CUDA build, 1 otherwise.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BENCH_GPU_BUILD_DIR:-$ROOT/native-addon/build-gpu}"
JOBS="${BENCH_GPU_JOBS:-$(nproc 2>/dev/null || echo 4)}"
PY="${BENCH_GPU_PYTHON:-python3}"
MODE=full
ARGS=()
for a in "$@"; do
  case "$a" in
    --quick) MODE=quick; ARGS+=("$a") ;;
    --configs=*|--steps=*|--warmup=*|--seq=*|--batch=*|--gradient-checkpointing|--peak-tflops=*) ARGS+=("$a") ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench-gpu: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
TIMEOUT="${BENCH_GPU_TIMEOUT:-$([ $MODE = quick ] && echo 150 || echo 270)}"
NAME=$([ $MODE = quick ] && echo gpu-quick || echo gpu)
START=$(date +%s)
say() { echo "[bench-gpu $(( $(date +%s) - START ))s] $*"; }
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  say "skipped: nvcc (the CUDA toolkit) is not installed, so the CUDA backend cannot be built"
  exit 77
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  say "skipped: no NVIDIA GPU visible (nvidia-smi -L fails)"
  exit 77
fi
RESULTS="$ROOT/bench/results"
LOGS="${OUT:-$(mktemp -d /tmp/bench-gpu.XXXXXX)}"
mkdir -p "$RESULTS" "$LOGS"

command -v nvcc >/dev/null 2>&1 || export PATH="/usr/local/cuda/bin:$PATH"

# ---- build (reuses gpu-check.sh's directory when it is configured with PS_CUDA=ON) ----
ARCH="${BENCH_GPU_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')}"
ARCH="${ARCH:-90}"
if ! grep -q '^PS_CUDA:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  say "configuring $BUILD (PS_CUDA=ON, sm_$ARCH)"
  cmake -S "$ROOT/native-addon" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPS_CUDA=ON \
    "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" > "$LOGS/bench-configure.log" 2>&1 ||
    { say "configure failed:"; tail -30 "$LOGS/bench-configure.log"; exit 1; }
fi
say "building bench_gpu"
if ! cmake --build "$BUILD" -j "$JOBS" --target bench_gpu > "$LOGS/bench-build.log" 2>&1; then
  say "build failed:"; grep -m20 -iE "error" "$LOGS/bench-build.log"; tail -20 "$LOGS/bench-build.log"; exit 1
fi

# ---- ours, then the reference, on the same arguments ------------------------------------
say "bench_gpu ${ARGS[*]:-} (timeout ${TIMEOUT}s)"
timeout --kill-after=10 "$TIMEOUT" "$BUILD/bench_gpu" "${ARGS[@]}" > "$LOGS/bench-ours.jsonl" 2> "$LOGS/bench-ours.log"
OURS_RC=$?
cat "$LOGS/bench-ours.jsonl"
if [ $OURS_RC -eq 77 ]; then say "bench_gpu skipped: $(head -1 "$LOGS/bench-ours.jsonl")"; exit 77; fi
if [ $OURS_RC -ne 0 ]; then say "bench_gpu exit $OURS_RC (124/137: timed out); its log tail:"; tail -15 "$LOGS/bench-ours.log"; fi

say "bench_peft_gpu.py ${ARGS[*]:-} (timeout ${TIMEOUT}s)"
timeout --kill-after=10 "$TIMEOUT" "$PY" "$ROOT/scripts/reference/bench_peft_gpu.py" "${ARGS[@]}" \
  > "$LOGS/bench-pytorch.jsonl" 2> "$LOGS/bench-pytorch.log"
REF_RC=$?
cat "$LOGS/bench-pytorch.jsonl"
[ $REF_RC -eq 0 ] || { say "bench_peft_gpu.py exit $REF_RC (77: no torch / no GPU; timeout: 124/137); its log tail:"; tail -15 "$LOGS/bench-pytorch.log"; }

# ---- the comparison ------------------------------------------------------------------------
NOTE=""
[ $OURS_RC -eq 0 ] || NOTE="bench_gpu exited with status $OURS_RC (124/137: timed out after ${TIMEOUT}s). "
[ $REF_RC -eq 0 ] || NOTE="${NOTE}bench_peft_gpu.py exited with status $REF_RC (77: torch or its GPU missing; 124/137: timed out)."
"$PY" "$ROOT/scripts/gpu/bench_report.py" "$LOGS/bench-ours.jsonl" "$LOGS/bench-pytorch.jsonl" \
  --json "$RESULTS/$NAME.json" --md "$RESULTS/$NAME.md" --merge "$RESULTS/$NAME.json" --mode "$MODE" --note "$NOTE" ||
  { say "bench_report.py failed"; exit 1; }
if [ -n "${OUT:-}" ] && [ "$OUT" != "$RESULTS" ]; then cp "$RESULTS/$NAME.json" "$RESULTS/$NAME.md" "$OUT/"; fi
say "wrote $RESULTS/$NAME.md and $NAME.json${OUT:+ (copies and logs in $OUT)}"
[ $OURS_RC -eq 0 ] && [ $REF_RC -eq 0 ] && exit 0
exit 1
