// The loss head: final RMSNorm, lm_head and shifted cross-entropy. Only rows
// whose label counts are gathered (prompt tokens masked with -100 and padding
// cost nothing), and they go through lm_head a chunk at a time so the
// [rows, vocab] logits are never held: per chunk logits -> cross-entropy
// (dlogits in place) -> dh rows = dlogits W, and dW += dlogits^T h if trainable.
// A head held 16-bit (a BF16 / F16 checkpoint's frozen lm_head or tied
// embedding) goes through the 16-bit GEMMs, which widen tiles as they pack
// them: no fp32 copy of any part of the vocabulary table is held, and the
// products equal the fp32 GEMMs on the widened table bit for bit.
// The per-row losses stay in backend memory until the last chunk is done and
// come back in one download (on a device: one wait per pass, not per chunk).
#include <vector>

#include "error.h"
#include "half_weight.h"
#include "model/blocks.h"

namespace ps {

namespace {

// The next `limit` counted rows starting at (run, offset within run), as runs.
RowRuns take_rows(const RowRuns& runs, size_t& run, int& within, int limit) {
  RowRuns out;
  while (limit > 0 && run < runs.size()) {
    const int first = runs[run].first + within;
    const int left = runs[run].second - within;
    const int n = left < limit ? left : limit;
    out.emplace_back(first, n);
    limit -= n;
    within += n;
    if (within == runs[run].second) {
      ++run;
      within = 0;
    }
  }
  return out;
}


// Rows [v0, v0 + rows) of the 16-bit head (W == nullptr) as the 16-bit GEMMs take it.
HalfWeight head_half(const ModelDims& d, const HeadParams& p, int v0, int rows) {
  HalfWeight w;
  w.data = p.W16 + static_cast<size_t>(v0) * d.D;
  w.bf16 = p.W16_bf16;
  w.rows = rows;
  w.cols = d.D;
  return w;
}

}  // namespace

void head_logits(const PassContext& c, const HeadParams& p, const float* x, int n, float* logits) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  if (p.W)
    be.gemm_nt(n, d.V, d.D, 1.0f, x, d.D, p.W, d.D, 0.0f, logits, d.V);
  else
    be.half_gemm_nt(n, x, d.D, head_half(d, p, 0, d.V), 1.0f, 0.0f, logits, d.V);
}

void head_input_grad(const PassContext& c, const HeadParams& p, const float* dlogits, int n, float* dx) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  for (int v0 = 0; v0 < d.V; v0 += kHeadGradRows) {
    const int rows = d.V - v0 < kHeadGradRows ? d.V - v0 : kHeadGradRows;
    const float beta = v0 == 0 ? 0.0f : 1.0f;
    if (p.W)
      be.gemm_nn(n, d.D, rows, 1.0f, dlogits + v0, d.V, p.W + static_cast<size_t>(v0) * d.D, d.D, beta, dx, d.D);
    else
      be.half_gemm_nn(n, dlogits + v0, d.V, head_half(d, p, v0, rows), 1.0f, beta, dx, d.D);
  }
}

LossResult loss_head(const PassContext& c, const HeadParams& p, const float* h, const RowRuns& runs,
                     float grad_scale, bool backward, float* dh) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  Activations& a = *c.arena;
  const int R = c.rows;
  const size_t D = static_cast<size_t>(d.D);
  be.rmsnorm_forward(h, p.norm, a.hf, a.rstd_f, R, d.D, c.eps);
  if (backward) be.fill(a.dnorm, 0.0f, R * D);  // rows without a label get no gradient

  // The per-row losses (double) of all counted rows, in order, are kept in
  // the MLP's product buffer a.act: it is scratch between MLP blocks (the
  // forward writes it before reading it, the backward recomputes it), so it
  // is free while the loss head runs; the download below empties it. Counted
  // rows <= R, and R doubles fit in R * F floats for F >= 2.
  if (d.F < 2) throw Error("internal: the loss head keeps per-row losses in the MLP buffer, which needs F >= 2");
  double* row_loss = reinterpret_cast<double*>(a.act);
  std::vector<int> chunk_rows;

  LossResult result;
  size_t run = 0;
  int within = 0, done = 0;
  for (;;) {
    const RowRuns chunk = take_rows(runs, run, within, a.loss_chunk);
    if (chunk.empty()) break;
    int n = 0;
    for (const auto& r : chunk) {
      be.copy(a.hchunk + n * D, a.hf + r.first * D, r.second * D);
      n += r.second;
    }
    head_logits(c, p, a.hchunk, n, a.logits);
    be.cross_entropy_rows(a.logits, a.targets + done, n, d.V, grad_scale, backward ? a.logits : nullptr,
                          row_loss + done);
    chunk_rows.push_back(n);
    result.tokens += n;  // every gathered row counts (prepare_batch compacts the targets to counted labels)
    if (backward) {
      head_input_grad(c, p, a.logits, n, a.dchunk);
      if (p.dW) be.gemm_tn(d.V, d.D, n, 1.0f, a.logits, d.V, a.hchunk, d.D, 1.0f, p.dW, d.D);
      int off = 0;
      for (const auto& r : chunk) {
        be.copy(a.dnorm + r.first * D, a.dchunk + off * D, r.second * D);
        off += r.second;
      }
    }
    done += n;
  }
  if (backward) {
    be.fill(dh, 0.0f, R * D);
    be.rmsnorm_backward(a.dnorm, h, p.norm, a.rstd_f, R, d.D, dh, p.dnorm);
  }
  // One download for the whole pass, then the sums the former per-chunk
  // cross_entropy returned: rows in order within a chunk from 0.0, chunk sums
  // added in order (the same double additions, so the same bits).
  std::vector<double> losses(static_cast<size_t>(done));
  if (done > 0) be.download(losses.data(), row_loss, losses.size() * sizeof(double));
  size_t r = 0;
  for (int n : chunk_rows) {
    double chunk_sum = 0.0;
    for (int i = 0; i < n; ++i) chunk_sum += losses[r++];
    result.loss_sum += chunk_sum;
  }
  return result;
}

const float* head_logits_row(const PassContext& c, const HeadParams& p, const float* h, int row) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  Activations& a = *c.arena;
  const size_t D = static_cast<size_t>(d.D);
  be.rmsnorm_forward(h + row * D, p.norm, a.hf, a.rstd_f, 1, d.D, c.eps);
  head_logits(c, p, a.hf, 1, a.logits);
  return a.logits;
}

}  // namespace ps
