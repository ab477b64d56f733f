// ReLU followed by a 2x2, stride-2 max-pool (floor mode) on a channels-last bf16 or fp32 tensor, forward and
// backward in one pass each, giving PyTorch's `max_pool2d(relu(y), 2)` and its gradient bit for bit
// (shortcutlab/fused.py explains why; tests/test_fused.py checks it). PyTorch's own pair reads and writes the
// full-size activation in four kernels and keeps int64 indices; here the forward reads it once, keeps one byte per output
// (the winner's position in its window, 0..3, or 4 where no gradient flows), the backward writes it once.
// Rules copied from PyTorch's kernels: relu(v) = v < 0 ? +0 : v (so -0 and NaN pass unchanged); the window
// is scanned row by row and a value replaces the running max when it is greater or NaN; relu's gradient
// passes where its output is > 0 or NaN; the max-pool gradient is 0 + g at the winner (so -0 becomes +0).
#include <torch/library.h>  // custom operators (torch.ops), not a Python module: a third of the build time
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Parallel.h>
#include <cstdint>
#include <cstring>
#include <vector>

// Bits <-> float for the two dtypes: bf16 is the high half of an fp32.
static inline float as_float(uint16_t b) { uint32_t u = static_cast<uint32_t>(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
static inline float as_float(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }

static inline uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// One 2x2 window row: x00 x01 / x10 x11 for C channels each; m = max-pool(relu(x)) by PyTorch's rules
template <typename B>
static inline void window_row(const B* __restrict a, const B* __restrict b, const B* __restrict c, const B* __restrict d,
                              B* __restrict pw, uint8_t* __restrict cw, const int64_t C) {
  for (int64_t ch = 0; ch < C; ++ch) {
    float f0 = as_float(a[ch]), f1 = as_float(b[ch]), f2 = as_float(c[ch]), f3 = as_float(d[ch]);
    // relu: a negative value becomes +0; -0 and NaN stay as they are
    f0 = f0 < 0.f ? 0.f : f0; f1 = f1 < 0.f ? 0.f : f1; f2 = f2 < 0.f ? 0.f : f2; f3 = f3 < 0.f ? 0.f : f3;
    // max-pool's rule, window scanned row by row: a value replaces the running max when greater, or NaN
    float m = f0, k = 0.f;
    if (f1 > m || __builtin_isnan(f1)) { m = f1; k = 1.f; }
    if (f2 > m || __builtin_isnan(f2)) { m = f2; k = 2.f; }
    if (f3 > m || __builtin_isnan(f3)) { m = f3; k = 3.f; }
    uint32_t mb = bits_of(m);
    pw[ch] = static_cast<B>(sizeof(B) == 2 ? (mb >> 16) : mb);
    // relu's gradient passes only where its output is > 0 (or NaN): elsewhere nothing flows back
    if (!(m > 0.f || __builtin_isnan(m))) k = 4.f;
    cw[ch] = static_cast<uint8_t>(static_cast<int>(k));
  }
}

template <typename B>
static void fwd_kernel(const B* y, B* p, uint8_t* code, const int64_t N, const int64_t H, const int64_t W, const int64_t C) {
  const int64_t OH = H / 2, OW = W / 2;
  at::parallel_for(0, N * OH, 1, [=](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / OH, oh = row % OH;
      const B* r0 = y + ((n * H + 2 * oh) * W) * C;
      const B* r1 = r0 + W * C;
      for (int64_t ow = 0; ow < OW; ++ow)
        window_row(r0 + 2 * ow * C, r0 + (2 * ow + 1) * C, r1 + 2 * ow * C, r1 + (2 * ow + 1) * C,
                   p + (row * OW + ow) * C, code + (row * OW + ow) * C, C);
    }
  });
}

// the winner gets 0 + g (so -0 becomes +0), every other position +0
template <typename B>
static inline void grad_row(const B* __restrict gw, const uint8_t* __restrict cw, B* __restrict o, const uint8_t want,
                            const B negzero, const int64_t C) {
  for (int64_t ch = 0; ch < C; ++ch) {
    B v = gw[ch];
    o[ch] = (cw[ch] == want && v != negzero) ? v : B(0);
  }
}

template <typename B>
static void bwd_kernel(const B* g, const uint8_t* code, B* gy, const int64_t N, const int64_t H, const int64_t W, const int64_t C, const B negzero) {
  const int64_t OH = H / 2, OW = W / 2;
  at::parallel_for(0, N * H, 1, [=](int64_t begin, int64_t end) {
    for (int64_t irow = begin; irow < end; ++irow) {
      const int64_t n = irow / H, ih = irow % H;
      B* out = gy + irow * W * C;
      if (ih >= 2 * OH) { std::memset(out, 0, sizeof(B) * W * C); continue; }
      const int64_t base = (n * OH + ih / 2) * OW;
      const uint8_t dy = static_cast<uint8_t>((ih % 2) * 2);
      for (int64_t iw = 0; iw < 2 * OW; ++iw)
        grad_row(g + (base + iw / 2) * C, code + (base + iw / 2) * C, out + iw * C, static_cast<uint8_t>(dy + iw % 2), negzero, C);
      if (W > 2 * OW) std::memset(out + 2 * OW * C, 0, sizeof(B) * (W - 2 * OW) * C);
    }
  });
}

std::vector<at::Tensor> relu_pool_forward(at::Tensor y) {
  TORCH_CHECK(y.dim() == 4 && y.is_contiguous(at::MemoryFormat::ChannelsLast), "relu_pool: 4-d channels-last input");
  const int64_t N = y.size(0), C = y.size(1), H = y.size(2), W = y.size(3);
  auto cl = at::MemoryFormat::ChannelsLast;
  auto p = at::empty({N, C, H / 2, W / 2}, y.options().memory_format(cl));
  auto code = at::empty({N, C, H / 2, W / 2}, y.options().dtype(at::kByte).memory_format(cl));
  if (y.scalar_type() == at::kBFloat16) {
    fwd_kernel(static_cast<const uint16_t*>(y.data_ptr()), static_cast<uint16_t*>(p.data_ptr()), code.data_ptr<uint8_t>(), N, H, W, C);
  } else {
    TORCH_CHECK(y.scalar_type() == at::kFloat, "relu_pool: bf16 or fp32");
    fwd_kernel(static_cast<const uint32_t*>(y.data_ptr()), static_cast<uint32_t*>(p.data_ptr()), code.data_ptr<uint8_t>(), N, H, W, C);
  }
  return {p, code};
}

at::Tensor relu_pool_backward(at::Tensor g, at::Tensor code, int64_t H, int64_t W) {
  g = g.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = g.size(0), C = g.size(1);
  auto gy = at::empty({N, C, H, W}, g.options().memory_format(at::MemoryFormat::ChannelsLast));
  if (g.scalar_type() == at::kBFloat16) {
    bwd_kernel(static_cast<const uint16_t*>(g.data_ptr()), code.data_ptr<uint8_t>(), static_cast<uint16_t*>(gy.data_ptr()), N, H, W, C, uint16_t(0x8000));
  } else {
    bwd_kernel(static_cast<const uint32_t*>(g.data_ptr()), code.data_ptr<uint8_t>(), static_cast<uint32_t*>(gy.data_ptr()), N, H, W, C, uint32_t(0x80000000u));
  }
  return gy;
}

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {  // torch.ops.<build name>.<op>: shortcutlab/native.py
  m.def("forward", &relu_pool_forward);
  m.def("backward", &relu_pool_backward);
}
