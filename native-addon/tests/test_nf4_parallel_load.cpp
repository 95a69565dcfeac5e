// NF4 quantization across a thread pool (what a QLoRA load does for every
// block linear) gives the SAME BYTES as the serial quantizer: codes, absmax or
// double-quantization codes, nested scales and offset, for every thread count,
// on weights whose block count splits unevenly across the threads. The serial
// quantizer itself is checked bit for bit against a float64 reference in
// test_nf4_quant.cpp, which also runs its largest case through a pool.
//
// Then the load path end to end: a WeightStore quantizing a BF16 / F32 file on
// load (widened across its pool, then quantized across it) holds the bytes
// the serial quantizer gives for the file's values, widened here by hand.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "model/weights.h"
#include "quant/nf4_quantize.h"
#include "threadpool.h"

namespace {

std::vector<float> normal_weights(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> w(n);
  for (auto& x : w) x = d(rng);
  return w;
}

// Counts the differing bytes / values of every buffer of two quantized weights.
int differences(const ps::Nf4Quantized& a, const ps::Nf4Quantized& b) {
  int bad = 0;
  bad += a.rows != b.rows || a.cols != b.cols || a.blocksize != b.blocksize;
  bad += a.codes.size() != b.codes.size() || a.absmax.size() != b.absmax.size() ||
         a.absmax_codes.size() != b.absmax_codes.size() ||
         a.nested_absmax.size() != b.nested_absmax.size();
  if (bad) return bad;
  bad += std::memcmp(&a.nested_offset, &b.nested_offset, sizeof(float)) != 0;
  for (size_t i = 0; i < a.codes.size(); ++i) bad += a.codes[i] != b.codes[i];
  for (size_t i = 0; i < a.absmax_codes.size(); ++i) bad += a.absmax_codes[i] != b.absmax_codes[i];
  // Bitwise, so a -0.0 for a 0.0 would count.
  bad += a.absmax.size() && std::memcmp(a.absmax.data(), b.absmax.data(), a.absmax.size() * 4) != 0;
  bad += a.nested_absmax.size() &&
         std::memcmp(a.nested_absmax.data(), b.nested_absmax.data(), a.nested_absmax.size() * 4) != 0;
  return bad;
}

// differences() itself: one changed bit in each buffer is seen.
void test_differences_sees_a_change() {
  const auto w = normal_weights(3 * 1000, 5, 0.02f);
  const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), 3, 1000, 64, true);
  CHECK(differences(q, q) == 0);
  ps::Nf4Quantized x = q;
  x.codes[17] ^= 1;
  CHECK(differences(q, x) == 1);
  x = q;
  x.absmax_codes[3] ^= 0x80;
  CHECK(differences(q, x) == 1);
  x = q;
  x.nested_absmax[0] = std::nextafter(x.nested_absmax[0], 1.0f);
  CHECK(differences(q, x) == 1);
  x = q;
  x.nested_offset = -x.nested_offset;
  CHECK(differences(q, x) == 1);
  const ps::Nf4Quantized p = ps::nf4_quantize(w.data(), 3, 1000, 64, false);
  x = p;
  x.absmax[2] = -0.0f * x.absmax[2];
  x.absmax[5] = -x.absmax[5];
  CHECK(differences(p, x) == 1);  // the absmax buffer differs
}

// Sizes chosen so the block counts do not divide by 2, 3, 5 or 7 and the
// element counts are odd where possible (a half-used last byte, a partial
// last block), and one weight is large enough that the double quantization's
// 8-bit pass (one value per block) also goes across the pool.
void test_thread_counts_agree() {
  struct Case { int64_t rows, cols; int bs; bool dq; };
  const Case cases[] = {{999, 1237, 64, true},  {999, 1237, 64, false}, {577, 1531, 32, true},
                        {301, 3001, 4096, true}, {2053, 2049, 64, true}, {256, 257, 256, true}};
  std::vector<ps::ThreadPool*> pools;
  for (int t : {1, 2, 3, 5, 7}) pools.push_back(new ps::ThreadPool(t));
  for (const Case& c : cases) {
    const size_t n = static_cast<size_t>(c.rows * c.cols);
    auto w = normal_weights(n, static_cast<uint32_t>(c.rows + 7 * c.cols), 0.02f);
    // Zero blocks (the 1e-38 divisor) at the start, the middle and the end,
    // and values on the extremes of a block.
    for (size_t i = 0; i < static_cast<size_t>(c.bs) && i < n; ++i) w[i] = 0.0f;
    for (size_t i = n / 2 / c.bs * c.bs; i < n / 2 / c.bs * c.bs + c.bs && i < n; ++i) w[i] = 0.0f;
    for (size_t i = n - n % c.bs; i < n; ++i) w[i] = 0.0f;
    w[n / 3] = 1.0f;
    w[n / 3 + 1] = -1.0f;
    const ps::Nf4Quantized serial = ps::nf4_quantize(w.data(), c.rows, c.cols, c.bs, c.dq);
    CHECK(c.dq == serial.double_quant());
    if (c.rows == 2053) CHECK(serial.absmax_codes.size() >= (size_t(1) << 16));  // the DQ pass is split too
    for (ps::ThreadPool* pool : pools) {
      const ps::Nf4Quantized par = ps::nf4_quantize(w.data(), c.rows, c.cols, c.bs, c.dq, pool);
      const int bad = differences(serial, par);
      if (bad)
        pstest::fail(__FILE__, __LINE__,
                     "[" + std::to_string(c.rows) + "x" + std::to_string(c.cols) + "] bs=" + std::to_string(c.bs) +
                         (c.dq ? " dq" : "") + " on " + std::to_string(pool->size()) + " threads: " +
                         std::to_string(bad) + " values differ from the serial quantizer");
    }
  }
  // A non-finite value is reported at the first position whatever the split,
  // before anything is quantized.
  auto w = normal_weights(700 * 701, 3, 0.02f);
  w[700 * 600 + 5] = std::numeric_limits<float>::quiet_NaN();
  w[700 * 100 + 9] = std::numeric_limits<float>::infinity();
  std::string serial_msg, pooled_msg;
  try {
    ps::nf4_quantize(w.data(), 700, 701, 64, true);
  } catch (const ps::Error& e) {
    serial_msg = e.what();
  }
  try {
    ps::nf4_quantize(w.data(), 700, 701, 64, true, pools[2]);
  } catch (const ps::Error& e) {
    pooled_msg = e.what();
  }
  CHECK(serial_msg.find("row 99, column 610") != std::string::npos);  // 70009 = 99 * 701 + 610
  CHECK(pooled_msg == serial_msg);
  for (auto* p : pools) delete p;
}

uint16_t bf16_bits(float x) {  // round to nearest even; finite values
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

// A WeightStore quantizing on load: two block linears from a file, one BF16
// (widened, then quantized), one F32; on 1 and 3 threads.
void test_store_load() {
  const std::string q_name = "model.layers.0.self_attn.q_proj.weight";
  const std::string d_name = "model.layers.0.mlp.down_proj.weight";
  const int64_t qr = 513, qc = 1027, dr = 1031, dc = 515;  // 513*1027: 8232 blocks + 11 values
  const auto qv = normal_weights(static_cast<size_t>(qr * qc), 11, 0.03f);
  const auto dv = normal_weights(static_cast<size_t>(dr * dc), 12, 0.02f);
  std::vector<uint16_t> q_bf16(qv.size());
  std::vector<float> q_wide(qv.size());
  for (size_t i = 0; i < qv.size(); ++i) {
    q_bf16[i] = bf16_bits(qv[i]);
    q_wide[i] = from_bf16(q_bf16[i]);
  }
  const char* tmp = std::getenv("TMPDIR");
  // One file per process: two runs at once rewrote each other's file under
  // the load (aborts in 9 of 15 pairs).
  const std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ps_test_nf4_parallel_load_" +
                           std::to_string(::getpid()) + ".bin";
  const uint64_t d_offset = (q_bf16.size() * 2 + 63) / 64 * 64;
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(q_bf16.data()), static_cast<std::streamsize>(q_bf16.size() * 2));
    f.seekp(static_cast<std::streamoff>(d_offset));
    f.write(reinterpret_cast<const char*>(dv.data()), static_cast<std::streamsize>(dv.size() * 4));
    CHECK(f.good());
  }
  std::vector<ps::WeightRef> refs(2);
  refs[0].name = q_name, refs[0].file = path, refs[0].offset = 0, refs[0].dtype = ps::DType::BF16,
  refs[0].shape = {qr, qc};
  refs[1].name = d_name, refs[1].file = path, refs[1].offset = d_offset, refs[1].dtype = ps::DType::F32,
  refs[1].shape = {dr, dc};

  const ps::Nf4Quantized want_q = ps::nf4_quantize(q_wide.data(), qr, qc, 64, true);
  const ps::Nf4Quantized want_d = ps::nf4_quantize(dv.data(), dr, dc, 64, true);
  ps::QuantizationOptions quant;
  quant.type = ps::QuantizationOptions::Type::Nf4;
  for (int threads : {1, 3}) {
    ps::CpuBackend be(threads);
    ps::WeightStore store(be, &be.pool(), {{q_name, {qr, qc}}, {d_name, {dr, dc}}}, quant);
    store.load(refs);
    CHECK(store.get(q_name).nf4 && store.get(d_name).nf4);
    if (!store.get(q_name).nf4 || !store.get(d_name).nf4) continue;
    const int bad_q = differences(want_q, *store.get(q_name).nf4);
    const int bad_d = differences(want_d, *store.get(d_name).nf4);
    if (bad_q || bad_d)
      pstest::fail(__FILE__, __LINE__,
                   "load on " + std::to_string(threads) + " threads: " + std::to_string(bad_q) + " (BF16) and " +
                       std::to_string(bad_d) + " (F32) values differ from the serial quantizer");
    // set() quantizes through the same path.
    store.set(q_name, q_wide.data(), q_wide.size());
    CHECK(differences(want_q, *store.get(q_name).nf4) == 0);
  }
  std::remove(path.c_str());
}

}  // namespace

int main() {
  test_differences_sees_a_change();
  test_thread_counts_agree();
  test_store_load();
  return pstest::finish("test_nf4_parallel_load");
}
