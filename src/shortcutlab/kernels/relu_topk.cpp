// The TopK sparse autoencoder's activation in one pass: ReLU, then the k largest entries of each row kept and every
// other entry 0, i.e. PyTorch's
//     z = relu(pre); v, i = z.topk(k, dim=1); f = zeros_like(z).scatter_(1, i, v)
// on a contiguous float32 (N, M) tensor, and its gradient: g where the kept value is > 0 or NaN, +0 elsewhere (what
// scatter's, topk's and relu's backward give together). Values are copied, never computed, and the bytes are
// PyTorch's. Where no two equal values straddle a row's cut the k largest are unambiguous and found fast (a lower
// bound of the cut from interleaved maxima, the entries at or above it, a sorted insertion). Where equal values
// straddle it and they are zeros none of which is -0 (a row with fewer than k positive entries), every pick of zeros
// gives the same bytes. Otherwise the row takes PyTorch's own selection (ATen/native/TopKImpl.h: std::nth_element, or
// std::partial_sort when k * 64 <= M, on (value, column) pairs with its comparator, NaN above every number), which
// decides the pick among equals. shortcutlab/sae.py checks it against PyTorch's ops when it loads;
// tests/test_fused.py checks it.
#include <torch/library.h>  // custom operators (torch.ops), not a Python module: a third of the build time
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

static constexpr int64_t MAX_K = 64;

static inline bool above(float a, float b) { return a > b || (std::isnan(a) && !std::isnan(b)); }

using Pair = std::pair<float, int64_t>;

// PyTorch's selection of a row's k largest (ATen/native/TopKImpl.h, topk_impl_loop with largest=true), written into
// orow at their columns
static void pytorch_pick(const float* buf, int64_t M, int64_t k, float* orow, std::vector<Pair>& q) {
  for (int64_t j = 0; j < M; ++j) q[j] = Pair(buf[j], j);
  auto cmp = [](const Pair& x, const Pair& y) { return above(x.first, y.first); };
  if (k * 64 <= M)
    std::partial_sort(q.begin(), q.begin() + k, q.begin() + M, cmp);
  else
    std::nth_element(q.begin(), q.begin() + (k - 1), q.begin() + M, cmp);
  for (int64_t t = 0; t < k; ++t) orow[q[t].second] = q[t].first;
}

// A lower bound of a row's k-th largest value: the k-th largest of G >= k column-interleaved maxima (distinct entries;
// a lane with no entry counts 0, which no entry is below)
template <int G>
static float lower_bound_of_cut(const float* buf, int64_t M, int64_t k) {
  float mx[G];
  for (int l = 0; l < G; ++l) mx[l] = 0.f;  // every entry is >= 0 (relu) and none is NaN here
  int64_t j0 = 0;
  for (; j0 + G <= M; j0 += G)
    for (int l = 0; l < G; ++l) mx[l] = mx[l] > buf[j0 + l] ? mx[l] : buf[j0 + l];
  for (int l = 0; j0 + l < M; ++l) mx[l] = mx[l] > buf[j0 + l] ? mx[l] : buf[j0 + l];
  std::nth_element(mx, mx + (k - 1), mx + G, [](float a, float b) { return a > b; });
  return mx[k - 1];
}

struct Scratch {
  std::vector<float> buf, cv;
  std::vector<int64_t> col;
  std::vector<Pair> q;
  explicit Scratch(int64_t M) : buf(M), cv(M), col(M), q(M) {}
};

// One row: relu; the candidates (entries at or above a lower bound of the cut: every entry of the k largest and every
// entry equal to the k-th); the k largest of them by sorted insertion; if an entry left out equals the k-th, PyTorch's
// own selection decides instead. A row with a NaN, or shorter than 2k, takes every entry as a candidate.
static void keep_row(const float* row, float* orow, int64_t M, int64_t k, Scratch& s) {
  float* buf = s.buf.data();
  int nan = 0;  // an int, not a bool: with a bool the loop is not vectorised (2x slower)
  for (int64_t j = 0; j < M; ++j) {
    const float v = 0.f > row[j] ? 0.f : row[j];  // F.relu: NaN and -0 pass through
    buf[j] = v;
    nan |= (v != v);
  }
  const float bound = nan || M < 2 * k ? 0.f
                      : k <= 16        ? lower_bound_of_cut<32>(buf, M, k)
                                       : lower_bound_of_cut<64>(buf, M, k);
  float* cv = s.cv.data();
  int64_t* col = s.col.data();
  int64_t n = 0;
  for (int64_t j = 0; j < M; ++j) {  // branch-free compaction (a NaN is >= nothing: the bound is 0 then, take all)
    col[n] = j;
    cv[n] = buf[j];
    n += (buf[j] >= bound) | nan;
  }
  float val[MAX_K];
  int64_t idx[MAX_K];
  int64_t kept = 0;  // val[0..kept) sorted, largest first; among equal values the earlier column first
  for (int64_t t = 0; t < n; ++t) {
    const float x = cv[t];
    if (kept == k && !above(x, val[k - 1])) continue;
    int64_t pos = kept < k ? kept : k - 1;
    while (pos > 0 && above(x, val[pos - 1])) {
      val[pos] = val[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    val[pos] = x;
    idx[pos] = col[t];
    if (kept < k) ++kept;
  }
  const float cut = val[k - 1];
  int64_t equal_in = 0, equal_all = 0;  // entries equal to the cut (neither above the other): kept, and in all
  for (int64_t t = 0; t < k; ++t) equal_in += !above(cut, val[t]) & !above(val[t], cut);
  for (int64_t t = 0; t < n; ++t) equal_all += !above(cut, cv[t]) & !above(cv[t], cut);
  if (equal_all > equal_in) {  // equal values straddle the cut
    // Fewer than k positive entries: the cut is 0, and which zeros are kept shows only in their sign. With no -0
    // in the row every pick gives the same bytes (forward and gradient); else PyTorch's selection decides.
    int negzero = 0;
    for (int64_t j = 0; j < M; ++j) negzero |= (buf[j] == 0.f) & std::signbit(buf[j]);
    if (!(cut == 0.f && !negzero)) {
      pytorch_pick(buf, M, k, orow, s.q);
      return;
    }
  }
  for (int64_t t = 0; t < k; ++t) orow[idx[t]] = val[t];
}

at::Tensor forward(at::Tensor pre, int64_t k) {
  TORCH_CHECK(pre.dim() == 2 && pre.scalar_type() == at::kFloat && pre.is_contiguous(),
              "relu_topk: a contiguous float32 (N, M) tensor");
  const int64_t N = pre.size(0), M = pre.size(1);
  TORCH_CHECK(k >= 1 && k <= M && k <= MAX_K, "relu_topk: 1 <= k <= min(M, 64)");
  auto out = at::zeros_like(pre);
  const float* p = pre.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, N, 64, [=](int64_t begin, int64_t end) {
    Scratch scratch(M);
    for (int64_t n = begin; n < end; ++n) keep_row(p + n * M, o + n * M, M, k, scratch);
  });
  return out;
}

// g: the gradient of the output; f: the forward's output
at::Tensor backward(at::Tensor g, at::Tensor f) {
  TORCH_CHECK(f.dim() == 2 && f.scalar_type() == at::kFloat && f.is_contiguous() && g.sizes() == f.sizes() &&
                  g.scalar_type() == at::kFloat,
              "relu_topk backward: float32 (N, M) tensors");
  g = g.contiguous();
  auto out = at::empty_like(f);
  const float* gp = g.data_ptr<float>();
  const float* fp = f.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, f.numel(), 16384, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = (fp[i] > 0.f || std::isnan(fp[i])) ? gp[i] : 0.f;
  });
  return out;
}

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {  // torch.ops.<build name>.<op>: shortcutlab/native.py
  m.def("forward", &forward);
  m.def("backward", &backward);
}
