// Causal grouped-query attention on the CPU: the bookkeeping around the block
// kernels of attention_kernels.h. Per call it
//  - checks the shape and finds, per query, the first key of its segment (so
//    a work unit skips the key blocks of earlier segments);
//  - repacks K and V per kv head into key blocks with contiguous rows (see
//    attention_kernels.h);
//  - forward: hands out (b, head, query block) units dynamically, costliest
//    first (each unit owns its rows of out and lse, so any order gives the
//    same bits); a single query (T = 1, generation) skips the repacking and
//    hands out (row, kv head, run of its query heads) to the direct kernel;
//  - backward: assigns the units to threads by a fixed greedy schedule;
//    dQ is owned per unit, dK/dV go into per-thread buffers that are added
//    to the caller's gradients afterwards in thread order. Deterministic for
//    a given thread count.
// The kernels run in the widest instruction set the CPU has: AVX-512F, AVX2,
// or the portable build.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "attention_buffers.h"
#include "attention_kernels.h"
#include "cpu_backend.h"
#include "error.h"
#include "workspace.h"

namespace ps {

void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit(a, u, scratch);
}
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch) {
  attn_backward_unit(a, u, dk, dv, scratch);
}
void attention_forward_single_portable(const AttnProblem& a, int b, int h0, int h1, float* scratch) {
  attn_forward_single(a, b, h0, h1, scratch);
}

namespace {

// One instruction set's kernels.
struct AttnKernels {
  void (*forward)(const AttnProblem&, const AttnUnit&, float*);
  void (*backward)(const AttnProblem&, const AttnUnit&, float*, float*, float*);
  void (*forward_single)(const AttnProblem&, int, int, int, float*);
};

AttnKernels attn_kernels(const CpuBackend& be) {
#if defined(PS_HAVE_AVX2_KERNELS)
  if (be.use_avx512_attention())
    return {attention_forward_unit_avx512, attention_backward_unit_avx512, attention_forward_single_avx512};
  if (be.use_avx2())
    return {attention_forward_unit_avx2, attention_backward_unit_avx2, attention_forward_single_avx2};
#endif
  (void)be;
  return {attention_forward_unit_portable, attention_backward_unit_portable,
          attention_forward_single_portable};
}

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

// Per (b, key block): see AttnProblem::blk_seg.
std::vector<int32_t> block_segments(const AttnShape& s, const std::vector<int32_t>& k_seg, int n_blocks) {
  std::vector<int32_t> bs(static_cast<size_t>(s.B) * n_blocks);
  for (size_t blk = 0; blk < bs.size(); ++blk) {
    const int32_t* ks = k_seg.data() + blk * kAttnBk;
    int32_t common = kAttnKeyPrefix;
    for (int jj = 0; jj < kAttnBk && common != kAttnBlockMixed; ++jj) {
      if (ks[jj] == kAttnKeyPrefix) continue;
      if (ks[jj] < 0 || (common != kAttnKeyPrefix && ks[jj] != common))
        common = kAttnBlockMixed;  // padding, past S, or a second segment
      else
        common = ks[jj];
    }
    bs[blk] = common;
  }
  return bs;
}

std::vector<AttnUnit> make_units(const AttnShape& s, const int32_t* seg, const std::vector<int32_t>& first) {
  std::vector<AttnUnit> units;
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int t0 = 0; t0 < s.T; t0 += kAttnBq) {
        AttnUnit u;
        u.b = b;
        u.h = h;
        u.t0 = t0;
        u.t1 = std::min(t0 + kAttnBq, s.T);
        const int32_t* seg_row = seg + static_cast<size_t>(b) * s.T;
        u.seg = seg_row[t0];
        for (int t = t0; t < u.t1; ++t) {
          const int32_t f = first[static_cast<size_t>(b) * s.T + t];
          if (f >= 0 && (u.key_lo < 0 || f < u.key_lo)) u.key_lo = f;
          if (seg_row[t] != u.seg) u.seg = -1;
        }
        if (u.seg < 0) u.seg = -1;
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


// x [B,S,Hkv,D] repacked per (b, kv head) and key block into `packed`, zero
// past S:
// transposed  -> [B,Hkv,n_blocks,D,Bk]   (rows of a block's keys per dim)
// !transposed -> [B,Hkv,n_blocks*Bk,D]   (the head's key rows, contiguous)
const float* pack_kv(ThreadPool& pool, const AttnShape& s, const float* x, int n_blocks,
                     bool transposed, Workspace& ws) {
  const int S = s.P + s.T, D = s.D, H = s.Hkv;
  const size_t block_floats = static_cast<size_t>(kAttnBk) * D;
  float* packed = ws.get(attn_packed_floats(s.B, H, S, D));
  pool.parallel_for(static_cast<size_t>(s.B) * H * n_blocks, [&](size_t begin, size_t end, int) {
    for (size_t w = begin; w < end; ++w) {
      const int kb = static_cast<int>(w % n_blocks);
      const size_t bh = w / n_blocks;
      const int g = static_cast<int>(bh % H), b = static_cast<int>(bh / H);
      float* dst = packed + w * block_floats;
      const int j0 = kb * kAttnBk, j1 = std::min(S, j0 + kAttnBk);
      if (j1 - j0 < kAttnBk) std::memset(dst, 0, sizeof(float) * block_floats);
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
  const AttnKernels kern = attn_kernels(*this);
  if (s.T == 1) {
    // One query per row (generation): K and V are read where they are. A
    // unit is (row, kv head, a run of its query heads), so each key row is
    // read once per run; a group is split into runs only as far as needed to
    // give every thread about two units.
    AttnProblem a;
    a.s = s;
    a.scale = scale;
    a.q = q;
    a.q_seg = seg;
    a.k = k;
    a.v = v;
    a.out = out;
    a.lse = lse;
    const int group = s.Hq / s.Hkv, kv_units = s.B * s.Hkv;
    const int runs = std::min(group, std::max(1, (2 * threads() + kv_units - 1) / kv_units));
    const int run_len = (group + runs - 1) / runs;
    const size_t per_thread = static_cast<size_t>(run_len) * (s.S() + 2 * s.D + 1);
    float* scratch = attn_buffers().scratch.get(per_thread * threads());
    pool_->run_tasks(static_cast<size_t>(kv_units) * runs, [&](size_t i, int thread) {
      const int b = static_cast<int>(i / (static_cast<size_t>(s.Hkv) * runs));
      const int g = static_cast<int>(i / runs % s.Hkv), r = static_cast<int>(i % runs);
      const int h0 = g * group + r * run_len, h1 = std::min(h0 + run_len, (g + 1) * group);
      if (h0 < h1) kern.forward_single(a, b, h0, h1, scratch + per_thread * thread);
    });
    return;
  }
  const std::vector<AttnUnit> units = make_units(s, seg, segment_starts(s, seg));
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.n_blocks = (s.S() + kAttnBk - 1) / kAttnBk;
  const std::vector<int32_t> k_seg = key_segments(s, seg, a.n_blocks);
  const std::vector<int32_t> blk_seg = block_segments(s, k_seg, a.n_blocks);
  const float* kt = pack_kv(*pool_, s, k, a.n_blocks, true, attn_buffers().kt);
  const float* vr = pack_kv(*pool_, s, v, a.n_blocks, false, attn_buffers().v);
  a.q = q;
  a.q_seg = seg;
  a.k_seg = k_seg.data();
  a.blk_seg = blk_seg.data();
  a.kt = kt;
  a.vr = vr;
  a.out = out;
  a.lse = lse;

  const auto unit_fn = kern.forward;
  const size_t per_thread = attn_scratch_floats(s.D);
  float* scratch = attn_buffers().scratch.get(per_thread * threads());
  pool_->run_tasks(units.size(), [&](size_t i, int thread) {
    unit_fn(a, units[order[i]], scratch + per_thread * thread);
  });
}

void CpuBackend::attention_backward(const AttnShape& s, const float* q, const float* k,
                                    const float* v, const int32_t* seg, float scale,
                                    const float* out, const float* lse, const float* dout,
                                    float* dq, float* dk, float* dv) {
  check_attention_args("attention_backward", s, q, k, v, seg);
  if (!out || !lse || !dout) throw Error("attention_backward: out, lse and dout are required");
  if (!dq && !dk && !dv) return;
  const std::vector<AttnUnit> units = make_units(s, seg, segment_starts(s, seg));
  const std::vector<size_t> order = by_cost(s, units);

  AttnProblem a;
  a.s = s;
  a.scale = scale;
  a.n_blocks = (s.S() + kAttnBk - 1) / kAttnBk;
  const bool need_ds = dq || dk;
  const std::vector<int32_t> k_seg = key_segments(s, seg, a.n_blocks);
  const std::vector<int32_t> blk_seg = block_segments(s, k_seg, a.n_blocks);
  const float* kt = pack_kv(*pool_, s, k, a.n_blocks, true, attn_buffers().kt);
  const float* vt = need_ds ? pack_kv(*pool_, s, v, a.n_blocks, true, attn_buffers().v) : nullptr;
  const float* kr = dq ? pack_kv(*pool_, s, k, a.n_blocks, false, attn_buffers().kr) : nullptr;
  a.q = q;
  a.q_seg = seg;
  a.k_seg = k_seg.data();
  a.blk_seg = blk_seg.data();
  a.kt = kt;
  a.vt = vt;
  a.kr = kr;
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
  const size_t packed_n = attn_packed_floats(s.B, s.Hkv, s.S(), s.D);
  // Thread th's partials at partials + wanted th packed_n: its dK partial,
  // then its dV partial (each only when wanted); nullptr where not wanted or
  // the thread has no unit.
  const size_t wanted = (dk ? 1 : 0) + (dv ? 1 : 0);
  Workspace& partials_ws = attn_buffers().partials;
  float* partials = partials_ws.get(wanted * nt * packed_n);
  std::vector<float*> dk_part(nt, nullptr), dv_part(nt, nullptr);
  for (int th = 0; th < nt; ++th) {
    if (assigned[th].empty()) continue;
    float* own = partials + wanted * th * packed_n;
    if (dk) dk_part[th] = own;
    if (dv) dv_part[th] = own + (dk ? packed_n : 0);
  }

  const auto unit_fn = attn_kernels(*this).backward;
  const size_t per_thread = attn_scratch_floats(s.D);
  float* scratch = attn_buffers().scratch.get(per_thread * nt);
  pool_->parallel_for(nt, [&](size_t begin, size_t end, int) {
    for (size_t th = begin; th < end; ++th) {
      float* dk_th = dk_part[th];
      float* dv_th = dv_part[th];
      if (dk_th) std::memset(dk_th, 0, sizeof(float) * packed_n);  // each thread zeroes its own
      if (dv_th) std::memset(dv_th, 0, sizeof(float) * packed_n);
      for (size_t i : assigned[th]) unit_fn(a, units[i], dk_th, dv_th, scratch + per_thread * th);
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
          if (dk_part[th]) {
            const float* p = dk_part[th] + src;
            for (int d = 0; d < D; ++d) dk[dst + d] += p[d];
          }
          if (dv_part[th]) {
            const float* p = dv_part[th] + src;
            for (int d = 0; d < D; ++d) dv[dst + d] += p[d];
          }
        }
      }
    }
  });
  if (wanted * nt * packed_n * sizeof(float) > kAttnKeptPartialsBytes) partials_ws.release();
}

AttnBuffers& CpuBackend::attn_buffers() {
  if (!attn_buffers_) attn_buffers_ = std::make_unique<AttnBuffers>();
  return *attn_buffers_;
}

}  // namespace ps
