// Causal grouped-query attention on the CPU: the bookkeeping around the block
// kernels of attention_kernels.h. Per call it
//  - checks the shape and finds, per query, the first key of its segment (so
//    a work unit skips the key blocks of earlier segments);
//  - repacks K and V per kv head into key blocks with contiguous rows (see
//    attention_kernels.h);
//  - forward: hands out (b, head, query block) units dynamically, costliest
//    first (each unit owns its rows of out and lse, so any order gives the
//    same bits);
//  - backward: assigns the units to threads by a fixed greedy schedule;
//    dQ is owned per unit, dK/dV go into per-thread buffers that are added
//    to the caller's gradients afterwards in thread order. Deterministic for
//    a given thread count.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "attention_kernels.h"
#include "cpu_backend.h"
#include "error.h"

namespace ps {

void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit(a, u, scratch);
}
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch) {
  attn_backward_unit(a, u, dk, dv, scratch);
}

namespace {

void check_attention_args(const char* op, const AttnShape& s, const void* q, const void* k,
                          const void* v, const void* seg) {
  auto bad = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (B=" + std::to_string(s.B) +
                " T=" + std::to_string(s.T) + " P=" + std::to_string(s.P) +
                " Hq=" + std::to_string(s.Hq) + " Hkv=" + std::to_string(s.Hkv) +
                " D=" + std::to_string(s.D) + ")");
  };
  if (s.B < 1 || s.T < 1 || s.D < 1) bad("batch, sequence length and head dim must be positive");
  if (s.P < 0) bad("the prefix length P must not be negative");
  if (s.Hq < 1 || s.Hkv < 1 || s.Hq % s.Hkv != 0)
    bad("query heads must be a positive multiple of key/value heads");
  if (!q || !k || !v || !seg) bad("q, k, v and the segment ids are required");
}

// Per query, the first position of its segment (-1 for padding queries).
std::vector<int32_t> segment_starts(const AttnShape& s, const int32_t* seg) {
  std::vector<int32_t> first(static_cast<size_t>(s.B) * s.T, -1);
  std::unordered_map<int32_t, int32_t> first_of;
  for (int b = 0; b < s.B; ++b) {
    first_of.clear();
    for (int t = 0; t < s.T; ++t) {
      const int32_t id = seg[static_cast<size_t>(b) * s.T + t];
      if (id >= 0) first[static_cast<size_t>(b) * s.T + t] = first_of.emplace(id, t).first->second;
    }
  }
  return first;
}

// Segment of every key position as the kernels test it (see kAttnKey*).
std::vector<int32_t> key_segments(const AttnShape& s, const int32_t* seg, int n_blocks) {
  const size_t width = static_cast<size_t>(n_blocks) * kAttnBk;
  std::vector<int32_t> ks(static_cast<size_t>(s.B) * width, kAttnKeyNone);
  for (int b = 0; b < s.B; ++b) {
    int32_t* row = ks.data() + b * width;
    for (int js = 0; js < s.P; ++js) row[js] = kAttnKeyPrefix;
    for (int t = 0; t < s.T; ++t) {
      const int32_t id = seg[static_cast<size_t>(b) * s.T + t];
      row[s.P + t] = id >= 0 ? id : -1;
    }
  }
  return ks;
}

std::vector<AttnUnit> make_units(const AttnShape& s, const std::vector<int32_t>& first) {
  std::vector<AttnUnit> units;
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int t0 = 0; t0 < s.T; t0 += kAttnBq) {
        AttnUnit u;
        u.b = b;
        u.h = h;
        u.t0 = t0;
        u.t1 = std::min(t0 + kAttnBq, s.T);
        for (int t = t0; t < u.t1; ++t) {
          const int32_t f = first[static_cast<size_t>(b) * s.T + t];
          if (f >= 0 && (u.key_lo < 0 || f < u.key_lo)) u.key_lo = f;
        }
        units.push_back(u);
      }
  return units;
}

// Rough work of a unit (query rows times keys visited); orders the schedule.
double unit_cost(const AttnShape& s, const AttnUnit& u) {
  const double rows = u.t1 - u.t0;
  if (u.key_lo < 0) return rows;
  return rows * (s.P + u.t1 - u.key_lo + 8);
}

// Unit indices, costliest first (ties in index order).
std::vector<size_t> by_cost(const AttnShape& s, const std::vector<AttnUnit>& units) {
  std::vector<double> cost(units.size());
  for (size_t i = 0; i < units.size(); ++i) cost[i] = unit_cost(s, units[i]);
  std::vector<size_t> order(units.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return cost[x] > cost[y]; });
  return order;
}

// x [B,S,Hkv,D] repacked per (b, kv head) and key block, zero past S:
// transposed  -> [B,Hkv,n_blocks,D,Bk]   (rows of a block's keys per dim)
// !transposed -> [B,Hkv,n_blocks*Bk,D]   (the head's key rows, contiguous)
std::vector<float> pack_kv(ThreadPool& pool, const AttnShape& s, const float* x, int n_blocks,
                           bool transposed) {
  const int S = s.P + s.T, D = s.D, H = s.Hkv;
  const size_t block_floats = static_cast<size_t>(kAttnBk) * D;
  std::vector<float> packed(static_cast<size_t>(s.B) * H * n_blocks * block_floats, 0.0f);
  pool.parallel_for(static_cast<size_t>(s.B) * H * n_blocks, [&](size_t begin, size_t end, int) {
    for (size_t w = begin; w < end; ++w) {
      const int kb = static_cast<int>(w % n_blocks);
      const size_t bh = w / n_blocks;
      const int g = static_cast<int>(bh % H), b = static_cast<int>(bh / H);
      float* dst = packed.data() + w * block_floats;
      const int j0 = kb * kAttnBk, j1 = std::min(S, j0 + kAttnBk);
      for (int j = j0; j < j1; ++j) {
        const float* src = x + ((static_cast<size_t>(b) * S + j) * H + g) * D;
        if (transposed)
          for (int d = 0; d < D; ++d) dst[static_cast<size_t>(d) * kAttnBk + (j - j0)] = src[d];
        else
          std::memcpy(dst + static_cast<size_t>(j - j0) * D, src, sizeof(float) * D);
      }
    }
  });
  return packed;
}

}  // namespace

void CpuBackend::attention_forward(const AttnShape& s, const float* q, const float* k,
                                   const float* v, const int32_t* seg, float scale, float* out,
                                   float* lse) {
  check_attention_args("attention_forward", s, q, k, v, seg);
  if (!out || !lse) throw Error("attention_forward: out and lse are required");
  const std::vector<AttnUnit> units = make_units(s, segment_starts(s, seg));
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.n_blocks = (s.S() + kAttnBk - 1) / kAttnBk;
  const std::vector<int32_t> k_seg = key_segments(s, seg, a.n_blocks);
  const std::vector<float> kt = pack_kv(*pool_, s, k, a.n_blocks, true);
  const std::vector<float> vr = pack_kv(*pool_, s, v, a.n_blocks, false);
  a.q = q;
  a.q_seg = seg;
  a.k_seg = k_seg.data();
  a.kt = kt.data();
  a.vr = vr.data();
  a.out = out;
  a.lse = lse;

  auto unit_fn = attention_forward_unit_portable;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) unit_fn = attention_forward_unit_avx2;
#endif
  const size_t per_thread = attn_scratch_floats(s.D);
  std::vector<float> scratch(per_thread * threads());
  pool_->run_tasks(units.size(), [&](size_t i, int thread) {
    unit_fn(a, units[order[i]], scratch.data() + per_thread * thread);
  });
}

void CpuBackend::attention_backward(const AttnShape& s, const float* q, const float* k,
                                    const float* v, const int32_t* seg, float scale,
                                    const float* out, const float* lse, const float* dout,
                                    float* dq, float* dk, float* dv) {
  check_attention_args("attention_backward", s, q, k, v, seg);
  if (!out || !lse || !dout) throw Error("attention_backward: out, lse and dout are required");
  if (!dq && !dk && !dv) return;
  const std::vector<AttnUnit> units = make_units(s, segment_starts(s, seg));
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.n_blocks = (s.S() + kAttnBk - 1) / kAttnBk;
  const bool need_ds = dq || dk;
  const std::vector<int32_t> k_seg = key_segments(s, seg, a.n_blocks);
  const std::vector<float> kt = pack_kv(*pool_, s, k, a.n_blocks, true);
  const std::vector<float> vt = need_ds ? pack_kv(*pool_, s, v, a.n_blocks, true) : std::vector<float>();
  const std::vector<float> kr = dq ? pack_kv(*pool_, s, k, a.n_blocks, false) : std::vector<float>();
  a.q = q;
  a.q_seg = seg;
  a.k_seg = k_seg.data();
  a.kt = kt.data();
  a.vt = vt.data();
  a.kr = kr.data();
  a.o = out;
  a.lse_in = lse;
  a.dout = dout;
  a.dq = dq;

  // Fixed greedy schedule: each unit, costliest first, to the least loaded
  // thread (lowest index on ties). Depends only on the shape and thread count.
  const int nt = threads();
  std::vector<std::vector<size_t>> assigned(nt);
  {
    std::vector<double> load(nt, 0.0);
    for (size_t i : order) {
      const int th = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      assigned[th].push_back(i);
      load[th] += unit_cost(s, units[i]);
    }
  }

  // Each thread accumulates dK/dV in its own packed buffers; they are added
  // into the caller's gradients afterwards, thread by thread in order.
  const size_t packed_n = static_cast<size_t>(s.B) * s.Hkv * a.n_blocks * kAttnBk * s.D;
  std::vector<std::vector<float>> dk_part(nt), dv_part(nt);
  for (int th = 0; th < nt; ++th) {
    if (assigned[th].empty()) continue;
    if (dk) dk_part[th].assign(packed_n, 0.0f);
    if (dv) dv_part[th].assign(packed_n, 0.0f);
  }

  auto unit_fn = attention_backward_unit_portable;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) unit_fn = attention_backward_unit_avx2;
#endif
  const size_t per_thread = attn_scratch_floats(s.D);
  std::vector<float> scratch(per_thread * nt);
  pool_->parallel_for(nt, [&](size_t begin, size_t end, int) {
    for (size_t th = begin; th < end; ++th) {
      float* dk_th = dk_part[th].empty() ? nullptr : dk_part[th].data();
      float* dv_th = dv_part[th].empty() ? nullptr : dv_part[th].data();
      for (size_t i : assigned[th]) unit_fn(a, units[i], dk_th, dv_th, scratch.data() + per_thread * th);
    }
  });

  // [B,Hkv,n_blocks*Bk,D] partials -> the caller's [B,S,Hkv,D], per key row.
  const int S = s.S(), D = s.D;
  const size_t head_rows = static_cast<size_t>(a.n_blocks) * kAttnBk;
  pool_->parallel_for(static_cast<size_t>(s.B) * S, [&](size_t begin, size_t end, int) {
    for (size_t row = begin; row < end; ++row) {
      const size_t b = row / S, js = row % S;
      for (int g = 0; g < s.Hkv; ++g) {
        const size_t src = ((b * s.Hkv + g) * head_rows + js) * D;
        const size_t dst = (row * s.Hkv + g) * D;
        for (int th = 0; th < nt; ++th) {
          if (!dk_part[th].empty()) {
            const float* p = dk_part[th].data() + src;
            for (int d = 0; d < D; ++d) dk[dst + d] += p[d];
          }
          if (!dv_part[th].empty()) {
            const float* p = dv_part[th].data() + src;
            for (int d = 0; d < D; ++d) dv[dst + d] += p[d];
          }
        }
      }
    }
  });
}

}  // namespace ps
