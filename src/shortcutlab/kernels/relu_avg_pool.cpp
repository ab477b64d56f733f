// ReLU followed by an adaptive average pool whose windows tile the map exactly (H % OH == 0, W % OW == 0), on a
// channels-last bf16 tensor with a multiple of 16 channels: the lazy model's relu -> AdaptiveAvgPool2d(2), forward
// and backward in one pass each, giving PyTorch's values and gradient bit for bit (shortcutlab/fused.py explains
// why and checks it when it loads; tests/test_fused.py checks it). Rules as PyTorch's channels-last bf16 kernels
// compute them: relu(v) = 0 > v ? +0 : v; each window summed in fp32 from +0, row by row, then divided by the
// window's size in fp32 and rounded to bf16 (to nearest, ties to even); the gradient of each input is
// bf16(0 + bf16(g / size)) when the incoming gradient is channels-last (PyTorch's vectorised channels-last kernel)
// and bf16(0 + bf16(bf16(g / kh) / kw)) when it is NCHW (PyTorch's NCHW kernel, bf16 arithmetic per operation),
// passed where the relu output is > 0 or NaN, +0 elsewhere.
#include <torch/library.h>  // custom operators (torch.ops), not a Python module: a third of the build time
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

static inline float as_float(uint16_t b) { uint32_t u = static_cast<uint32_t>(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }

// fp32 -> bf16, round to nearest even (c10::BFloat16's rule; NaN -> the canonical quiet NaN)
static inline uint16_t to_bf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

static void check(const at::Tensor& y, int64_t oh, int64_t ow) {
  TORCH_CHECK(y.dim() == 4 && y.scalar_type() == at::kBFloat16 && y.is_contiguous(at::MemoryFormat::ChannelsLast),
              "relu_avg_pool: a channels-last bf16 (N, C, H, W) tensor");
  TORCH_CHECK(y.size(1) % 16 == 0 && y.size(2) % oh == 0 && y.size(3) % ow == 0,
              "relu_avg_pool: channels a multiple of 16, windows that tile the map");
}

at::Tensor forward(at::Tensor y, int64_t OH, int64_t OW) {
  check(y, OH, OW);
  const int64_t N = y.size(0), C = y.size(1), H = y.size(2), W = y.size(3), KH = H / OH, KW = W / OW;
  auto out = at::empty({N, C, OH, OW}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  const uint16_t* yp = reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>());
  uint16_t* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const float size = static_cast<float>(KH * KW);
  at::parallel_for(0, N, 1, [=](int64_t begin, int64_t end) {
    std::vector<float> sum(C);
    for (int64_t n = begin; n < end; ++n)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          std::fill(sum.begin(), sum.end(), 0.f);
          for (int64_t ih = oh * KH; ih < (oh + 1) * KH; ++ih)
            for (int64_t iw = ow * KW; iw < (ow + 1) * KW; ++iw) {
              const uint16_t* row = yp + ((n * H + ih) * W + iw) * C;
              for (int64_t c = 0; c < C; ++c) {
                const float v = as_float(row[c]);
                sum[c] += 0.f > v ? 0.f : v;
              }
            }
          uint16_t* o = op + ((n * OH + oh) * OW + ow) * C;
          for (int64_t c = 0; c < C; ++c) o[c] = to_bf16(sum[c] / size);
        }
  });
  return out;
}

// g: the pooled output's gradient (N, C, OH, OW); y: the relu's input, saved by the forward; per_dim: divide by
// kh, then kw, rounding each (the rule of an NCHW gradient)
at::Tensor backward(at::Tensor g, at::Tensor y, bool per_dim) {
  const int64_t OH = g.size(2), OW = g.size(3);
  check(y, OH, OW);
  g = g.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = y.size(0), C = y.size(1), H = y.size(2), W = y.size(3), KH = H / OH, KW = W / OW;
  auto gy = at::empty_like(y, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  const uint16_t* yp = reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>());
  const uint16_t* gp = reinterpret_cast<const uint16_t*>(g.data_ptr<at::BFloat16>());
  uint16_t* out = reinterpret_cast<uint16_t*>(gy.data_ptr<at::BFloat16>());
  const float size = static_cast<float>(KH * KW);
  at::parallel_for(0, N, 1, [=](int64_t begin, int64_t end) {
    std::vector<uint16_t> share(C);
    for (int64_t n = begin; n < end; ++n)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const uint16_t* gw = gp + ((n * OH + oh) * OW + ow) * C;
          for (int64_t c = 0; c < C; ++c) {
            const float g0 = as_float(gw[c]);
            const uint16_t q = per_dim ? to_bf16(as_float(to_bf16(g0 / static_cast<float>(KH))) / static_cast<float>(KW))
                                       : to_bf16(g0 / size);
            share[c] = to_bf16(0.f + as_float(q));
          }
          for (int64_t ih = oh * KH; ih < (oh + 1) * KH; ++ih)
            for (int64_t iw = ow * KW; iw < (ow + 1) * KW; ++iw) {
              const int64_t at = ((n * H + ih) * W + iw) * C;
              for (int64_t c = 0; c < C; ++c) {  // v > 0 or NaN, on the bits (so that the loop vectorises)
                const uint16_t b = yp[at + c], a = b & 0x7FFF;
                const bool pass = (a > 0x7F80) | (((b & 0x8000) == 0) & (a != 0));
                out[at + c] = pass ? share[c] : 0;
              }
            }
        }
  });
  return gy;
}

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {  // torch.ops.<build name>.<op>: shortcutlab/native.py
  m.def("forward", &forward);
  m.def("backward", &backward);
}
