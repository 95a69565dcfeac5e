#!/usr/bin/env bash
# The GPU machine's check of the CUDA backend, in one run of under 6 minutes:
# configure native-addon with -DPS_CUDA=ON for this GPU's architecture, build
# the core, the CUDA parity test and the existing CTest executables, run the
# parity test (every op, CUDA against CPU), then the rest of CTest. Needs
# nvcc and cmake >= 3.18 (no Node). Writes everything under $OUT (or
# /tmp/gpu-check-out when OUT is unset):
#   env.txt        nvidia-smi, nvcc, cmake, CPU count, where Python's cuBLASLt is
#   configure.log  build.log  parity.log  ctest.log
#   timing.log     the fast kernels (flash attention, fused GEMV, fused LoRA, bf16 GEMM:
#                  the simple and the prefetching kernel) against their reference paths,
#                  each test run alone with timings
#   cublaslt-loader.log  cublaslt.log   the cuBLASLt loader on this machine, and
#                  test_cublaslt_gemm (cuBLASLt GEMMs vs the own kernel, the CPU
#                  and float64; fp32 and bf16 inputs; timings)
#   summary.txt    one line per stage: PASS / FAIL / SKIP, seconds
#   bench-*.log / bench-*.jsonl / gpu-quick.md / gpu-quick.json   the quick benchmark (below)
# Then, only with time left in the budget, the quick benchmark: bench_gpu
# --quick (the engine, 1B-shaped LoRA and QLoRA at seq 512) and
# scripts/reference/bench_peft_gpu.py --quick (PyTorch + peft, the same), put
# side by side by scripts/gpu/bench_report.py; a stage without enough time
# left is recorded SKIP, not run. The full benchmark is scripts/bench-gpu.sh.
# Exit status: 0 only when every stage that ran passed (a parity test that
# skips for lack of a device counts as a failure here: this script is for GPU machines).
#
# Usage (from the repository root): scripts/gpu-check.sh
#   GPU_CHECK_ARCH=90        override the architecture (default: nvidia-smi's compute_cap)
#   GPU_CHECK_ALL_ARCHS=1    build for every architecture of the default build (75 .. 120, those
#                            this nvcc knows; slower; checks every arch compiles)
#   GPU_CHECK_BUILD_DIR=...  build directory (default native-addon/build-gpu)
#   GPU_CHECK_JOBS=N         parallel build jobs (default: all CPUs)
#   GPU_CHECK_SANITIZER=1    also run the parity test under compute-sanitizer memcheck (slow)
#   GPU_CHECK_BENCH=0        leave out the quick benchmark
#   GPU_CHECK_PYTHON=...     the Python with torch, transformers, peft (default python3)
#   PEFT_STUDIO_CUBLASLT=... the cuBLASLt library to use (default: the loader's own search,
#                            then, when that finds none, the copy of Python's nvidia-cublas
#                            wheel or PyTorch's torch/lib, asked from $GPU_CHECK_PYTHON)
# The GEMM in use (cuBLASLt or the own kernel, and why) is in summary.txt ("gemm").
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OUT="${OUT:-/tmp/gpu-check-out}"
mkdir -p "$OUT"
BUILD="${GPU_CHECK_BUILD_DIR:-$ROOT/native-addon/build-gpu}"
JOBS="${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}"
START=$(date +%s)
BUDGET=350  # seconds for the whole script (the device session allows 6 minutes)
STATUS=0
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(elapsed) )); }
record() {  # stage, result, seconds, note
  printf '%-12s %-5s %4ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$SUMMARY"
  if [ "$2" = FAIL ]; then STATUS=1; fi
}
# run_stage NAME LOG LIMIT CMD...: runs CMD with a time limit, logs, records.
run_stage() {
  local name="$1" log="$2" limit="$3"
  shift 3
  if [ "$limit" -gt "$(left)" ]; then limit="$(left)"; fi
  if [ "$limit" -le 5 ]; then
    record "$name" FAIL 0 "no time left in the ${BUDGET}s budget"
    return 1
  fi
  local t0=$(date +%s) rc
  timeout --kill-after=5 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then
    record "$name" PASS "$dt" ""
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    record "$name" FAIL "$dt" "timed out after ${limit}s (see $(basename "$log"))"
  else
    record "$name" FAIL "$dt" "exit $rc (see $(basename "$log"))"
  fi
  return $rc
}

# ---- environment ---------------------------------------------------------------
{
  echo "date: $(date -u)"
  echo "host: $(uname -a)"
  echo "build jobs: $JOBS"
  echo "--- nvidia-smi"; nvidia-smi 2>&1 || echo "(nvidia-smi not available)"
  echo "--- nvcc"; nvcc --version 2>&1 || echo "(nvcc not on PATH)"
  echo "--- cmake"; cmake --version 2>&1 | head -1
} > "$OUT/env.txt"

# ---- where Python's cuBLASLt is (PyTorch's wheels bring one) --------------------------
# Only a fallback: used below when the loader's own search finds no library.
PY="${GPU_CHECK_PYTHON:-python3}"
PY_CUBLASLT="$(timeout 60 "$PY" - <<'PYEOF' 2>/dev/null
import glob, os
def libs(folder):
    found = glob.glob(os.path.join(folder, "libcublasLt.so.*"))
    # the soname file (libcublasLt.so.12) before fully versioned names
    return sorted(found, key=lambda p: (not p.rsplit(".so.", 1)[1].isdigit(), p))
found = []
for name in ("nvidia.cu13", "nvidia.cublas"):  # CUDA 13 wheels, CUDA 12/11 wheels
    try:
        module = __import__(name, fromlist=["_"])
        for folder in getattr(module, "__path__", []):
            found += libs(os.path.join(folder, "lib"))
    except Exception:
        pass
if not found:
    try:
        import torch  # older torch wheels bundle it in torch/lib
        found += libs(os.path.join(os.path.dirname(torch.__file__), "lib"))
    except Exception:
        pass
print(found[0] if found else "")
PYEOF
)"
echo "python ($PY) cuBLASLt: ${PY_CUBLASLT:-none found}" >> "$OUT/env.txt"
echo "PEFT_STUDIO_CUBLASLT (given): ${PEFT_STUDIO_CUBLASLT:-unset}" >> "$OUT/env.txt"

ARCH="${GPU_CHECK_ARCH:-}"
if [ -z "$ARCH" ]; then
  ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
fi
if [ -z "$ARCH" ]; then ARCH=90; fi
ARCH_FLAG=("-DCMAKE_CUDA_ARCHITECTURES=$ARCH")
# every architecture: the build's own default list (CMakeLists.txt)
if [ "${GPU_CHECK_ALL_ARCHS:-0}" = 1 ]; then ARCH="the default list"; ARCH_FLAG=(-UCMAKE_CUDA_ARCHITECTURES); fi
echo "CUDA architectures: $ARCH" | tee -a "$OUT/env.txt"

# ---- configure and build ---------------------------------------------------------
run_stage configure "$OUT/configure.log" 60 \
  cmake -S "$ROOT/native-addon" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPS_CUDA=ON \
  "${ARCH_FLAG[@]}" || { echo "configure failed"; tail -30 "$OUT/configure.log"; exit 1; }

# Every CTest executable (tests/test_*.cpp) and the CUDA tests (tests/cuda/test_*.cpp); no benchmarks.
TARGETS=(ps_core ps_cuda)
# (test_cuda_sim is the CPU simulator's own test: not built with PS_CUDA.)
for f in "$ROOT"/native-addon/tests/cuda/test_*.cpp; do
  name="$(basename "$f" .cpp)"
  [ "$name" = test_cuda_sim ] || TARGETS+=("$name")
done
for f in "$ROOT"/native-addon/tests/test_*.cpp; do TARGETS+=("$(basename "$f" .cpp)"); done
run_stage build "$OUT/build.log" 200 \
  cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" || { echo "build failed"; grep -m20 -iE "error" "$OUT/build.log"; tail -20 "$OUT/build.log"; }

# ---- cuBLASLt: does the loader find it? If not, point it at Python's copy ----------------
# (The CPU-only loader test prints what the real search of this machine found.)
if [ -x "$BUILD/test_cublaslt_loader" ]; then
  "$BUILD/test_cublaslt_loader" > "$OUT/cublaslt-loader.log" 2>&1
  rc=$?
  found="$(grep -m1 'this machine:' "$OUT/cublaslt-loader.log" | sed 's/^ *this machine: //')"
  if echo "$found" | grep -q 'not loaded' && [ -z "${PEFT_STUDIO_CUBLASLT:-}" ] && [ -n "$PY_CUBLASLT" ]; then
    export PEFT_STUDIO_CUBLASLT="$PY_CUBLASLT"
    "$BUILD/test_cublaslt_loader" >> "$OUT/cublaslt-loader.log" 2>&1
    rc=$?
    found="$(grep 'this machine:' "$OUT/cublaslt-loader.log" | tail -1 | sed 's/^ *this machine: //') [PEFT_STUDIO_CUBLASLT from Python]"
  fi
  if [ $rc -ne 0 ]; then record cublaslt-ldr FAIL 0 "test_cublaslt_loader exit $rc (see cublaslt-loader.log)"
  else record cublaslt-ldr PASS 0 "$found"; fi
  # A library is there: the GEMM test must use it (fail, not skip, if it cannot).
  if ! echo "$found" | grep -q 'not loaded'; then export PEFT_STUDIO_REQUIRE_CUBLASLT=1; fi
else
  record cublaslt-ldr FAIL 0 "test_cublaslt_loader was not built"
fi

# ---- the parity test first: it is what this machine is for ---------------------------
if [ -x "$BUILD/test_cuda_parity" ]; then
  t0=$(date +%s)
  PS_CUDA_PARITY_TIMING=1 timeout --kill-after=5 90 "$BUILD/test_cuda_parity" > "$OUT/parity.log" 2>&1
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) record parity PASS "$dt" "$(grep -c ' ok$' "$OUT/parity.log") comparisons ok" ;;
    77) record parity FAIL "$dt" "skipped: no CUDA device visible ($(head -1 "$OUT/parity.log"))" ;;
    124|137) record parity FAIL "$dt" "timed out (see parity.log)" ;;
    *) record parity FAIL "$dt" "exit $rc: $(grep -c ' FAIL$' "$OUT/parity.log") comparisons failed (see parity.log)" ;;
  esac
else
  record parity FAIL 0 "test_cuda_parity was not built"
fi

record gemm INFO 0 "$(grep -m1 -o 'GEMM: .*' "$OUT/parity.log" 2>/dev/null || echo 'unknown (no backend line in parity.log)')"

# ---- cuBLASLt GEMMs against the own kernel, the CPU and float64 ---------------------------
if [ -x "$BUILD/test_cublaslt_gemm" ]; then
  t0=$(date +%s)
  PS_CUDA_PARITY_TIMING=1 timeout --kill-after=5 90 "$BUILD/test_cublaslt_gemm" > "$OUT/cublaslt.log" 2>&1
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) record cublaslt PASS "$dt" "$(grep -c 'worst err/bound' "$OUT/cublaslt.log") comparisons ok; $(grep -m1 '^GEMM:' "$OUT/cublaslt.log")" ;;
    77) record cublaslt SKIP "$dt" "$(tail -1 "$OUT/cublaslt.log")" ;;
    124|137) record cublaslt FAIL "$dt" "timed out (see cublaslt.log)" ;;
    *) record cublaslt FAIL "$dt" "exit $rc: $(grep -c 'FAIL' "$OUT/cublaslt.log") failures (see cublaslt.log)" ;;
  esac
else
  record cublaslt FAIL 0 "test_cublaslt_gemm was not built"
fi

# ---- optional: the parity test under compute-sanitizer (out-of-bounds, races) ---------
if [ "${GPU_CHECK_SANITIZER:-0}" = 1 ] && [ -x "$BUILD/test_cuda_parity" ]; then
  SAN="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
  if [ -x "$SAN" ]; then
    run_stage sanitizer "$OUT/sanitizer.log" 150 "$SAN" --tool memcheck --error-exitcode 3 "$BUILD/test_cuda_parity"
  else
    record sanitizer SKIP 0 "compute-sanitizer not found"
  fi
fi

# ---- the rest of CTest (the CPU tests must still pass in a CUDA build) -----------------
run_stage ctest "$OUT/ctest.log" 120 \
  bash -c 'cd "$1" && ctest --output-on-failure -j 4 --timeout 100 -E "^(test_cuda_parity|test_cublaslt_gemm)$"' _ "$BUILD"

# The CUDA context's share of device memory, measured by test_cuda_context_memory in CTest
# (the estimate's 512 MiB allowance is checked against it there).
[ -s "$OUT/cuda-context-memory.txt" ] && record cuda-ctx INFO 0 "$(tail -1 "$OUT/cuda-context-memory.txt" | sed 's/^ *//')"

# ---- kernel timings: the fast kernels against their reference paths, one test at a time --------
# (CTest above ran them in parallel and without timings; here each runs alone with
# PS_CUDA_PARITY_TIMING=1 and prints its own "timing" lines, so the GPU is not shared.)
: > "$OUT/timing.log"
for name in test_flash_attention test_weight_gemv test_lora_fused test_gemm_bf16; do
  [ -x "$BUILD/$name" ] || continue
  if [ "$(left)" -lt 40 ]; then record "timing-$name" SKIP 0 "only $(left)s left"; continue; fi
  echo "=== $name" >> "$OUT/timing.log"
  t0=$(date +%s)
  PS_CUDA_PARITY_TIMING=1 timeout --kill-after=5 60 "$BUILD/$name" >> "$OUT/timing.log" 2>&1
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then record "timing-$name" PASS "$dt" "see timing.log"
  else record "timing-$name" FAIL "$dt" "exit $rc (see timing.log)"; fi
done

# ---- the quick benchmark, only with time left (ours first: it is what we measure) ---------
# skip_unless_time NAME SECONDS: true when at least SECONDS remain; else records SKIP.
skip_unless_time() {
  if [ "$(left)" -lt "$2" ]; then
    record "$1" SKIP 0 "only $(left)s left of the ${BUDGET}s budget (needs about $2s)"
    return 1
  fi
}
# bench_stage NAME JSONL LOG CAP CMD...: runs CMD (stdout -> JSONL, stderr -> LOG) for at
# most CAP seconds or what is left of the budget. A run cut short by the budget
# (not by its own cap) is SKIP, not FAIL: it says nothing about the code.
bench_stage() {
  local name="$1" jsonl="$2" log="$3" cap="$4" limit t0 rc dt
  shift 4
  limit=$(( $(left) < cap ? $(left) : cap ))
  t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$jsonl" 2> "$log"
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) record "$name" PASS "$dt" "tokens/s: $(grep -o '"tokens_per_second": [0-9.e+]*' "$jsonl" | cut -d' ' -f2 | tr '\n' ' ')" ;;
    77) record "$name" FAIL "$dt" "skipped: $(head -1 "$jsonl")" ;;
    124|137)
      if [ "$limit" -lt "$cap" ]; then record "$name" SKIP "$dt" "cut at the end of the ${BUDGET}s budget (${limit}s)"
      else record "$name" FAIL "$dt" "timed out after ${cap}s (see $(basename "$log"))"; fi ;;
    *) record "$name" FAIL "$dt" "exit $rc (see $(basename "$jsonl") / $(basename "$log"))" ;;
  esac
}
if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
  PY="${GPU_CHECK_PYTHON:-python3}"
  if skip_unless_time bench-build 30; then
    run_stage bench-build "$OUT/bench-build.log" 90 cmake --build "$BUILD" -j "$JOBS" --target bench_gpu
  fi
  if [ -x "$BUILD/bench_gpu" ] && skip_unless_time bench-ours 50; then
    bench_stage bench-ours "$OUT/bench-ours.jsonl" "$OUT/bench-ours.log" 150 "$BUILD/bench_gpu" --quick
  fi
  if skip_unless_time bench-torch 40; then
    bench_stage bench-torch "$OUT/bench-pytorch.jsonl" "$OUT/bench-pytorch.log" 120 \
      "$PY" "$ROOT/scripts/reference/bench_peft_gpu.py" --quick
  fi
  if [ -s "$OUT/bench-ours.jsonl" ] || [ -s "$OUT/bench-pytorch.jsonl" ]; then
    "$PY" "$ROOT/scripts/gpu/bench_report.py" "$OUT/bench-ours.jsonl" "$OUT/bench-pytorch.jsonl" \
      --json "$OUT/gpu-quick.json" --md "$OUT/gpu-quick.md" --mode "quick (gpu-check.sh)" > /dev/null 2>&1 ||
      echo "bench_report.py failed" >> "$SUMMARY"
  fi
fi

echo "total        $(elapsed)s" | tee -a "$SUMMARY"
echo "--- parity: failures (first 30)"; grep -E "FAIL|unexpected" "$OUT/parity.log" 2>/dev/null | head -30
echo "--- parity (tail)"; tail -12 "$OUT/parity.log" 2>/dev/null
echo "--- cuBLASLt GEMM: failures (first 20), timings"
grep -E "FAIL|unexpected|not run" "$OUT/cublaslt.log" 2>/dev/null | head -20
grep -E "GFLOP/s" "$OUT/cublaslt.log" 2>/dev/null
echo "--- ctest (tail)"; tail -6 "$OUT/ctest.log" 2>/dev/null
echo "--- bf16 GEMM: simple vs prefetching kernel (the default is the faster; test_gemm_bf16)"
grep -E "simple .* prefetch " "$OUT/timing.log" 2>/dev/null
echo "--- kernel timings"; grep -iE "timing|ms|GB/s|TFLOP" "$OUT/timing.log" 2>/dev/null | grep -vE "simple .* prefetch " | head -40
if [ -s "$OUT/gpu-quick.md" ]; then echo "--- quick benchmark"; grep '^|' "$OUT/gpu-quick.md"; fi
exit $STATUS
