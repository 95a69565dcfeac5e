// NaN propagation through causal attention, the same on every backend: the
// CPU backend (AVX2 and portable kernels), the CUDA flash kernels (fp32 and
// bf16 / tensor cores) and the CUDA reference kernels (under the simulator in
// every CPU build). A NaN weight shows up as a NaN in q or k; PyTorch's
// softmax then makes every query row that sees it NaN, out and lse. Before
// this, the CPU kernel took a row whose scores were all NaN for "nothing
// visible" and returned 0 (so a NaN weight gave a finite loss).
//
// Inputs: B 3 rows with packed segments and padding, a prefix, GQA rep 2,
// two key blocks. Row 0: one NaN in q at (t 50, head 1). Row 1: one NaN
// in k at a real key of kv head 0. Row 2: clean.
// Asserted, on each backend:
//  - out / lse are NaN exactly on the rows that see a NaN (the NaN query row;
//    every real query of kv head 0's group that sees the NaN key), all other
//    values equal to the same backend's clean run bit for bit; padding
//    queries (no visible key) keep out 0 and lse 0;
//  - backward: the NaN rows' dq, and dk / dv of every key a NaN row sees, are
//    NaN; batch row 2 (no NaN input) gets the clean run's gradients bit for
//    bit. (Elsewhere a tile's 0 * NaN may or may not spread a NaN further:
//    a tiling artifact, as in PyTorch's math path, not asserted.)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "check.h"
#include "device_buffers.h"
#include "error.h"
#include "op_test_util.h"

using ps::AttnShape;
using ps::CudaBackend;
using Kernels = ps::CudaBackend::AttentionKernels;

namespace {

struct Results {
  std::vector<float> out, lse, dq, dk, dv;
};

struct Inputs {
  AttnShape s;
  std::vector<float> q, k, v, dout;
  std::vector<int32_t> seg;
  float scale = 0.125f;
};

Results run_cpu(bool portable, const Inputs& in) {
  ps::CpuBackend c(2, portable);
  const AttnShape& s = in.s;
  Results r;
  r.out.assign(in.q.size(), 0.0f);
  r.lse.assign(static_cast<size_t>(s.B) * s.Hq * s.T, 0.0f);
  r.dq.assign(in.q.size(), 0.0f);
  r.dk.assign(in.k.size(), 0.0f);
  r.dv.assign(in.v.size(), 0.0f);
  c.attention_forward(s, in.q.data(), in.k.data(), in.v.data(), in.seg.data(), in.scale, r.out.data(), r.lse.data());
  c.attention_backward(s, in.q.data(), in.k.data(), in.v.data(), in.seg.data(), in.scale, r.out.data(),
                       r.lse.data(), in.dout.data(), r.dq.data(), r.dk.data(), r.dv.data());
  return r;
}

Results run_cuda(CudaBackend& g, const Inputs& in) {
  const AttnShape& s = in.s;
  cudatest::DeviceBuffers dev(g);
  const size_t nq = in.q.size(), nk = in.k.size(), nl = static_cast<size_t>(s.B) * s.Hq * s.T;
  float *q = dev.put(in.q), *k = dev.put(in.k), *v = dev.put(in.v), *dout = dev.put(in.dout);
  int32_t* seg = dev.put(in.seg);
  float *out = dev.put(std::vector<float>(nq)), *lse = dev.put(std::vector<float>(nl));
  g.attention_forward(s, q, k, v, seg, in.scale, out, lse);
  float *gq = dev.put(std::vector<float>(nq)), *gk = dev.put(std::vector<float>(nk)),
        *gv = dev.put(std::vector<float>(nk));
  g.attention_backward(s, q, k, v, seg, in.scale, out, lse, dout, gq, gk, gv);
  return Results{dev.get(out, nq), dev.get(lse, nl), dev.get(gq, nq), dev.get(gk, nk), dev.get(gv, nk)};
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Whether real query t of row b sees key js (prefix keys: every real query).
bool sees(const Inputs& in, int b, int t, int js) {
  const int32_t st = in.seg[static_cast<size_t>(b) * in.s.T + t];
  if (st < 0) return false;
  if (js < in.s.P) return true;
  const int j = js - in.s.P;
  return j <= t && in.seg[static_cast<size_t>(b) * in.s.T + j] == st;
}

constexpr int kNanRow = 0, kNanT = 50, kNanHead = 1;  // the NaN query
constexpr int kKeyRow = 1, kKeyKv = 0;                // the NaN key's row and kv head
int nan_key_js(const AttnShape& s) { return s.P + 20; }

// Whether query (b, t, h) must come out NaN.
bool nan_query(const Inputs& in, int b, int t, int h) {
  const AttnShape& s = in.s;
  if (in.seg[static_cast<size_t>(b) * s.T + t] < 0) return false;
  if (b == kNanRow && t == kNanT && h == kNanHead) return true;
  return b == kKeyRow && h / (s.Hq / s.Hkv) == kKeyKv && sees(in, b, t, nan_key_js(s));
}

void check_backend(const std::string& name, const Inputs& nan_in, const Results& got, const Results& clean) {
  const AttnShape& s = nan_in.s;
  const int rep = s.Hq / s.Hkv;
  int out_bad = 0, lse_bad = 0, pad_bad = 0, grad_bad = 0, clean_row_bad = 0, nan_rows = 0;
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t)
      for (int h = 0; h < s.Hq; ++h) {
        const bool want_nan = nan_query(nan_in, b, t, h);
        nan_rows += want_nan;
        const bool pad = nan_in.seg[static_cast<size_t>(b) * s.T + t] < 0;
        const size_t li = (static_cast<size_t>(b) * s.Hq + h) * s.T + t;
        const size_t o = ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * s.D;
        if (want_nan ? !std::isnan(got.lse[li]) : !same_bits(got.lse[li], clean.lse[li])) ++lse_bad;
        if (pad && got.lse[li] != 0.0f) ++pad_bad;
        for (int d = 0; d < s.D; ++d) {
          const float x = got.out[o + d];
          if (want_nan ? !std::isnan(x) : !same_bits(x, clean.out[o + d])) ++out_bad;
          if (pad && x != 0.0f) ++pad_bad;
          if (want_nan && !std::isnan(got.dq[o + d])) ++grad_bad;
          if (b == 2 && !same_bits(got.dq[o + d], clean.dq[o + d])) ++clean_row_bad;
        }
        if (!want_nan) continue;
        for (int js = 0; js < s.S(); ++js) {  // every key this NaN row sees: NaN dk and dv
          if (!sees(nan_in, b, t, js)) continue;
          const size_t ko = ((static_cast<size_t>(b) * s.S() + js) * s.Hkv + h / rep) * s.D;
          for (int d = 0; d < s.D; ++d)
            if (!std::isnan(got.dk[ko + d]) || !std::isnan(got.dv[ko + d])) ++grad_bad;
        }
      }
  const size_t row2 = static_cast<size_t>(2) * s.S() * s.Hkv * s.D;
  for (size_t i = row2; i < got.dk.size(); ++i)
    if (!same_bits(got.dk[i], clean.dk[i]) || !same_bits(got.dv[i], clean.dv[i])) ++clean_row_bad;
  std::printf("%s: %d NaN query rows; mismatches out %d lse %d padding %d grads %d clean-row grads %d\n",
              name.c_str(), nan_rows, out_bad, lse_bad, pad_bad, grad_bad, clean_row_bad);
  CHECK(nan_rows > 3);
  CHECK(out_bad == 0);
  CHECK(lse_bad == 0);
  CHECK(pad_bad == 0);
  CHECK(grad_bad == 0);
  CHECK(clean_row_bad == 0);
}

Inputs make_inputs(int D) {
  Inputs in;
  AttnShape& s = in.s;
  s.B = 3, s.T = 100, s.P = 3, s.Hq = 4, s.Hkv = 2, s.D = D;
  optest::Rand r(20261129);
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D, nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  in.q = optest::random_vec(nq, r, -2, 2);
  in.k = optest::random_vec(nk, r, -2, 2);
  in.v = optest::random_vec(nk, r, -2, 2);
  in.dout = optest::random_vec(nq, r, -2, 2);
  in.seg.assign(static_cast<size_t>(s.B) * s.T, 0);
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t) {
      int32_t id = t < 70 ? 0 : 1;                      // two packed segments
      if (t >= 40 && t < 44) id = -1;                   // padding in the middle
      if (t >= s.T - 5) id = -1;                        // and at the end
      in.seg[static_cast<size_t>(b) * s.T + t] = id;
    }
  in.scale = 1.0f / std::sqrt(static_cast<float>(D));
  return in;
}

Inputs with_nans(Inputs in) {
  const AttnShape& s = in.s;
  in.q[((static_cast<size_t>(kNanRow) * s.T + kNanT) * s.Hq + kNanHead) * s.D + 5] = NAN;
  in.k[((static_cast<size_t>(kKeyRow) * s.S() + nan_key_js(s)) * s.Hkv + kKeyKv) * s.D + 2] = NAN;
  return in;
}

}  // namespace

int main() {
  try {
    for (int D : {64, 128}) {
      const Inputs clean = make_inputs(D), nan_in = with_nans(clean);
      const std::string tag = " D" + std::to_string(D);
      for (bool portable : {false, true}) {
        const std::string name = std::string("cpu ") + (portable ? "portable" : "best kernels") + tag;
        check_backend(name, nan_in, run_cpu(portable, nan_in), run_cpu(portable, clean));
      }
    }
    std::string why;
    if (ps::cuda_device_count(&why) == 0) {
      std::printf("CUDA part skipped: no CUDA device (%s)\n", why.c_str());
      return pstest::finish("test_attention_nan");
    }
    CudaBackend g(0);
    for (int D : {64, 128}) {
      const Inputs clean = make_inputs(D), nan_in = with_nans(clean);
      const std::string tag = " D" + std::to_string(D);
      g.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
      for (Kernels kern : {Kernels::Flash, Kernels::Reference}) {
        g.set_attention_kernels(kern);
        const std::string name = std::string("cuda ") + (kern == Kernels::Flash ? "flash" : "reference") + tag;
        check_backend(name, nan_in, run_cuda(g, nan_in), run_cuda(g, clean));
      }
      g.set_attention_kernels(Kernels::Flash);
      if (ps::cuda::has_bf16_tensor_cores(g.device_info())) {
        g.set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
        g.set_attention_bf16(true);
        check_backend("cuda bf16 attention" + tag, nan_in, run_cuda(g, nan_in), run_cuda(g, clean));
        g.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
      }
    }
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_attention_nan");
}
