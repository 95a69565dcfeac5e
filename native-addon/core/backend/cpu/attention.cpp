// Causal grouped-query attention on the CPU: the bookkeeping around the block
// kernels of attention_kernels.h. Per call it
//  - checks the shape, pads the segment table and finds, per query, the first
//    key of its segment (so a work unit skips the keys of earlier segments);
//  - transposes K (and V for backward) per kv head, so q.k and dO.v become
//    register-tiled block products with contiguous rows;
//  - forward: hands out (b, head, query block) units dynamically, costliest
//    first (each unit owns its rows of out and lse, so any order gives the
//    same bits);
//  - backward: assigns the units to threads by a fixed greedy schedule;
//    dQ is owned per unit, dK/dV of thread 0 go straight into the caller's
//    gradients and those of the other threads into zeroed buffers that are
//    added afterwards in thread order. Deterministic for a given thread count.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "attention_kernels.h"
#include "cpu_backend.h"
#include "error.h"

namespace ps {

// Register tile of the portable build: 4 x 8 floats = 8 SSE registers.
void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit<4, 8>(a, u, scratch);
}
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch) {
  attn_backward_unit<4, 8>(a, u, dk, dv, scratch);
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

// The segment ids padded to t_pad per row (kAttnSegNever past T), and for each
// real query the first position of its segment (-1 for padding queries).
struct Segments {
  int t_pad = 0;
  std::vector<int32_t> padded;  // [B, t_pad]
  std::vector<int32_t> first;   // [B, T]
};

Segments prepare_segments(const AttnShape& s, const int32_t* seg) {
  Segments r;
  r.t_pad = s.T + kAttnBk;
  r.padded.assign(static_cast<size_t>(s.B) * r.t_pad, kAttnSegNever);
  r.first.assign(static_cast<size_t>(s.B) * s.T, -1);
  std::unordered_map<int32_t, int32_t> first_of;
  for (int b = 0; b < s.B; ++b) {
    first_of.clear();
    for (int t = 0; t < s.T; ++t) {
      const int32_t id = seg[static_cast<size_t>(b) * s.T + t];
      r.padded[static_cast<size_t>(b) * r.t_pad + t] = id;
      if (id >= 0) r.first[static_cast<size_t>(b) * s.T + t] = first_of.emplace(id, t).first->second;
    }
  }
  return r;
}

std::vector<AttnUnit> make_units(const AttnShape& s, const Segments& seg) {
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
          const int32_t f = seg.first[static_cast<size_t>(b) * s.T + t];
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

// x [B,S,Hkv,D] -> xt [B,Hkv,D,s_pad], columns S..s_pad zero.
std::vector<float> transpose_kv(ThreadPool& pool, const AttnShape& s, const float* x, int s_pad) {
  const int S = s.S(), D = s.D, H = s.Hkv;
  std::vector<float> xt(static_cast<size_t>(s.B) * H * D * s_pad, 0.0f);
  constexpr int kTile = 32;
  const int tiles = (S + kTile - 1) / kTile;
  pool.parallel_for(static_cast<size_t>(s.B) * H * tiles, [&](size_t begin, size_t end, int) {
    for (size_t w = begin; w < end; ++w) {
      const int tile = static_cast<int>(w % tiles);
      const size_t bh = w / tiles;
      const int g = static_cast<int>(bh % H), b = static_cast<int>(bh / H);
      float* dst = xt.data() + bh * D * s_pad;
      const int j1 = std::min(S, (tile + 1) * kTile);
      for (int j = tile * kTile; j < j1; ++j) {
        const float* src = x + ((static_cast<size_t>(b) * S + j) * H + g) * D;
        for (int d = 0; d < D; ++d) dst[static_cast<size_t>(d) * s_pad + j] = src[d];
      }
    }
  });
  return xt;
}

}  // namespace

void CpuBackend::attention_forward(const AttnShape& s, const float* q, const float* k,
                                   const float* v, const int32_t* seg, float scale, float* out,
                                   float* lse) {
  check_attention_args("attention_forward", s, q, k, v, seg);
  if (!out || !lse) throw Error("attention_forward: out and lse are required");
  const Segments segs = prepare_segments(s, seg);
  const std::vector<AttnUnit> units = make_units(s, segs);
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.q = q;
  a.k = k;
  a.v = v;
  a.s_pad = s.S() + kAttnBk;
  const std::vector<float> kt = transpose_kv(*pool_, s, k, a.s_pad);
  a.kt = kt.data();
  a.seg = segs.padded.data();
  a.t_pad = segs.t_pad;
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
  const Segments segs = prepare_segments(s, seg);
  const std::vector<AttnUnit> units = make_units(s, segs);
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.q = q;
  a.k = k;
  a.v = v;
  a.s_pad = s.S() + kAttnBk;
  const std::vector<float> kt = transpose_kv(*pool_, s, k, a.s_pad);
  const std::vector<float> vt =
      (dq || dk) ? transpose_kv(*pool_, s, v, a.s_pad) : std::vector<float>();
  a.kt = kt.data();
  a.vt = vt.data();
  a.seg = segs.padded.data();
  a.t_pad = segs.t_pad;
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

  // Thread 0 accumulates into the caller's dK/dV, the others into their own.
  const size_t kv_n = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  std::vector<std::vector<float>> dk_part(nt), dv_part(nt);
  std::vector<float*> dk_of(nt, dk), dv_of(nt, dv);
  for (int th = 1; th < nt; ++th) {
    if (assigned[th].empty()) continue;
    if (dk) {
      dk_part[th].assign(kv_n, 0.0f);
      dk_of[th] = dk_part[th].data();
    }
    if (dv) {
      dv_part[th].assign(kv_n, 0.0f);
      dv_of[th] = dv_part[th].data();
    }
  }

  auto unit_fn = attention_backward_unit_portable;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) unit_fn = attention_backward_unit_avx2;
#endif
  const size_t per_thread = attn_scratch_floats(s.D);
  std::vector<float> scratch(per_thread * nt);
  pool_->parallel_for(nt, [&](size_t begin, size_t end, int) {
    for (size_t th = begin; th < end; ++th)
      for (size_t i : assigned[th])
        unit_fn(a, units[i], dk_of[th], dv_of[th], scratch.data() + per_thread * th);
  });

  pool_->parallel_for(kv_n, [&](size_t begin, size_t end, int) {
    for (int th = 1; th < nt; ++th) {
      if (!dk_part[th].empty()) {
        const float* p = dk_part[th].data();
        for (size_t i = begin; i < end; ++i) dk[i] += p[i];
      }
      if (!dv_part[th].empty()) {
        const float* p = dv_part[th].data();
        for (size_t i = begin; i < end; ++i) dv[i] += p[i];
      }
    }
  });
}

}  // namespace ps
