// Peak extra memory of the NaN / Inf scan of one large 4-bit weight: the
// chunked scan (model/non_finite_scan.h, what Engine::non_finite_tensors
// runs) against the old whole-tensor path (the weight dequantized to fp32 at
// once, then counted), on a synthetic NF4 weight of the size of Llama 3 8B's
// embedding, 128256 x 4096 (double quantization, blocksize 64), with two
// double quantization groups' nested scales set to NaN (2 x 16384 values).
//
// Measured (Linux): the process's peak resident set (VmHWM, reset before each
// scan through /proc/self/clear_refs) minus its resident set before the scan,
// and the scan's counted scratch. Both paths must give the same counts.
//
// Usage: bench_non_finite [rows] [cols]   (default 128256 4096; about 3 GB of
// memory while the weight is quantized, then 0.3 GB for the 4-bit weight).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "model/non_finite.h"
#include "model/non_finite_scan.h"
#include "model/weights.h"
#include "threadpool.h"

namespace {

// A field of /proc/self/status in bytes (VmRSS, VmHWM), or -1.
long long status_bytes(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size()) * 1024;
  return -1;
}

// Sets the peak resident set back to the current one; false where the kernel does not allow it.
bool reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

double mib(long long b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

struct Measured {
  ps::NonFiniteCount count;
  long long peak_extra = -1;  // bytes
  double seconds = 0;
};

template <typename Fn>
Measured measure(Fn&& scan) {
  const bool reset = reset_peak();
  const long long before = status_bytes("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  Measured m;
  m.count = scan();
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (reset) m.peak_extra = status_bytes("VmHWM") - before;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 128256, cols = argc > 2 ? std::atoll(argv[2]) : 4096;
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  ps::CpuBackend be(2);
  ps::ThreadPool pool(2);
  ps::QuantizationOptions q;
  q.type = ps::QuantizationOptions::Type::Nf4;
  ps::WeightStore store(be, &pool, {{name, {rows, cols}, false}}, q);
  {
    // Uniform values in (-1, 1) from a xorshift (fast: 0.5 G values), quantized across the pool.
    std::vector<float> v(static_cast<size_t>(rows * cols));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (float& f : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      f = static_cast<float>(static_cast<int64_t>(x >> 40) - (int64_t(1) << 23)) / float(1 << 23);
    }
    const auto t0 = std::chrono::steady_clock::now();
    store.set(name, v.data(), v.size());
    std::printf("quantized [%lld, %lld] in %.1f s\n", static_cast<long long>(rows), static_cast<long long>(cols),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const ps::WeightTensor& w = store.get(name);
  ps::Nf4Quantized& nf4 = *w.nf4;
  const size_t groups = nf4.nested_absmax.size();
  nf4.nested_absmax[groups / 2] = std::numeric_limits<float>::quiet_NaN();
  nf4.nested_absmax[groups - 1] = std::numeric_limits<float>::quiet_NaN();
  std::printf("4-bit weight: %.1f MiB resident, %zu double quantization groups; RSS now %.1f MiB\n",
              mib(static_cast<long long>(w.resident_bytes())), groups, mib(status_bytes("VmRSS")));

  ps::NonFiniteScan scan(be);
  const Measured chunked = measure([&] { return scan.weight(store, w); });
  const Measured whole = measure([&] {
    std::vector<float> buf(w.numel);
    store.read(name, buf.data());
    return ps::count_non_finite(buf.data(), buf.size());
  });
  std::printf("chunked scan:      %llu NaN %llu Inf, %.2f s, peak extra RSS %.1f MiB, scratch %.1f MiB (%zu chunks)\n",
              static_cast<unsigned long long>(chunked.count.nan), static_cast<unsigned long long>(chunked.count.inf),
              chunked.seconds, mib(chunked.peak_extra), mib(static_cast<long long>(scan.scratch_values() * 4)),
              scan.chunks());
  std::printf("whole-tensor path: %llu NaN %llu Inf, %.2f s, peak extra RSS %.1f MiB, buffer %.1f MiB\n",
              static_cast<unsigned long long>(whole.count.nan), static_cast<unsigned long long>(whole.count.inf),
              whole.seconds, mib(whole.peak_extra), mib(static_cast<long long>(w.numel * 4)));
  const bool same = chunked.count.nan == whole.count.nan && chunked.count.inf == whole.count.inf;
  if (!same) std::printf("MISMATCH: the two paths count differently\n");
  return same ? 0 : 1;
}
