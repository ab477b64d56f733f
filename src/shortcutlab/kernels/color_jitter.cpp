// The color-consistency objective's per-sample color jitter (shortcutlab/augment.py) in two passes over the
// batch instead of ~60 PyTorch operators, giving the same fp32 values bit for bit (shortcutlab/jitter.py explains
// why; tests/test_jitter.py checks it). Each PyTorch operator rounds its result to fp32, so every line here does
// one operation, in the order augment.py writes it; the file is compiled with -ffp-contract=off so that no
// multiply and add are fused into one rounding. Rules copied from PyTorch's CPU kernels: clamp(v, lo, hi) =
// min(hi, max(lo, v)) with the vector units' rule (max(a, b) = a > b ? a : b; min(a, b) = a < b ? a : b);
// remainder(a, m) = fmod(a, m), plus m where that is nonzero and of the other sign; a sum over the three
// channels adds them in channel order. The mean over each image's luminance stays PyTorch's (its summation
// order is its own): pass one returns the luminance, Python takes its mean, pass two does the rest.
#include <torch/library.h>  // custom operators (torch.ops), not a Python module: a third of the build time
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

static inline float vmax(float a, float b) { return a > b ? a : b; }
static inline float vmin(float a, float b) { return a < b ? a : b; }
static inline float clamp01(float v) { return vmin(1.f, vmax(0.f, v)); }
// torch.where(c, v, 0): v, or +0 (a bit mask, which keeps the loop vectorised where a select would not)
static inline float where0(bool c, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u &= -static_cast<uint32_t>(c);
  std::memcpy(&v, &u, 4);
  return v;
}

// fmod(a, m) for m > 0 and |a| < 2^20 m, exact (as fmod always is): q*m is an exact integer multiple, a - q*m
// is exact by Sterbenz's lemma, and one correction step fixes a quotient that a/m's rounding moved by one.
static inline float fmod_small(float a, float m) {
  const float q = std::trunc(a / m);
  float r = a - q * m;
  // (written with & and | so that the compiler keeps the loop vectorised)
  r = ((a >= 0.f) & (r < 0.f)) | ((a < 0.f) & (r <= -m)) ? r + m : r;  // the quotient came out one too large
  r = ((a >= 0.f) & (r >= m)) | ((a < 0.f) & (r > 0.f)) ? r - m : r;   // ... or one too small
  return std::copysign(r, a);  // fmod's result has a's sign, a zero too (-13 mod 1 is -0)
}

// torch.remainder for m > 0 (the sign of a zero result is fmod's)
static inline float rem(float a, float m) {
  const float r = fmod_small(a, m);
  return (r != 0.f) & (r < 0.f) ? r + m : r;
}

// PyTorch's luminance: (x * w).sum(1) with w = (0.299, 0.587, 0.114) as fp32
static inline float luma(float r, float g, float b, const float* w) {
  const float pr = r * w[0], pg = g * w[1], pb = b * w[2];
  return (pr + pg) + pb;
}

static void check_per_image(const at::Tensor& t, int64_t n) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.numel() == n,
              "color_jitter: per-image factors must be contiguous float32, one per image");
}

// One image, pass one: x1 = clamp(x * bright, 0, 1) and its luminance (planes r, g, b of P pixels each).
static void brightness_image(const float* __restrict r, const float* __restrict g, const float* __restrict b,
                             float* __restrict ro, float* __restrict go, float* __restrict bo, float* __restrict l,
                             const int64_t P, const float bn, const float w0, const float w1, const float w2) {
  const float w[3] = {w0, w1, w2};
  for (int64_t p = 0; p < P; ++p) {
    const float rr = clamp01(r[p] * bn), gg = clamp01(g[p] * bn), bb = clamp01(b[p] * bn);
    ro[p] = rr; go[p] = gg; bo[p] = bb;
    l[p] = luma(rr, gg, bb, w);
  }
}

// Pass one: x1 = clamp(x * bright, 0, 1) and its luminance. x: (N, 3, H, W) fp32 in NCHW order.
std::vector<at::Tensor> brightness(at::Tensor x, at::Tensor bright, at::Tensor w) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "color_jitter: x must be a contiguous (N, 3, H, W) float32 tensor");
  const int64_t N = x.size(0), P = x.size(2) * x.size(3);
  check_per_image(bright, N);
  auto x1 = at::empty_like(x);
  auto lum = at::empty({N, 1, x.size(2), x.size(3)}, x.options());
  const float *xp = x.data_ptr<float>(), *bp = bright.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *op = x1.data_ptr<float>(), *lp = lum.data_ptr<float>();
  const float w0 = wp[0], w1 = wp[1], w2 = wp[2];
  at::parallel_for(0, N, 1, [=](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* r = xp + n * 3 * P;
      float* o = op + n * 3 * P;
      brightness_image(r, r + P, r + 2 * P, o, o + P, o + 2 * P, lp + n * P, P, bp[n], w0, w1, w2);
    }
  });
  return {x1, lum};
}

// One image, pass two: contrast around the luminance mean, saturation, the hue shift in HSV, back to RGB.
static void rest_image(const float* __restrict r, const float* __restrict g, const float* __restrict b,
                       float* __restrict ro, float* __restrict go, float* __restrict bo, const int64_t P,
                       const float m, const float c, const float s, const float hs,
                       const float w0, const float w1, const float w2) {
  const float w[3] = {w0, w1, w2};
  const float tiny = static_cast<float>(1e-12), c5 = 5.f, c3 = 3.f, c1 = 1.f;
  for (int64_t p = 0; p < P; ++p) {
    // contrast: ((x - mean) * c + mean).clamp(0, 1)
    float rr = clamp01((r[p] - m) * c + m), gg = clamp01((g[p] - m) * c + m), bb = clamp01((b[p] - m) * c + m);
    // saturation: (lum + (x - lum) * s).clamp(0, 1)
    const float l = luma(rr, gg, bb, w);
    rr = clamp01(l + (rr - l) * s); gg = clamp01(l + (gg - l) * s); bb = clamp01(l + (bb - l) * s);
    // rgb_to_hsv
    const float maxc = vmax(vmax(rr, gg), bb), minc = vmin(vmin(rr, gg), bb);
    const float delta = maxc - minc;
    const float sv = where0(maxc > 0.f, delta / vmax(maxc, tiny));
    const float d = vmax(delta, tiny);
    const float hr = rem((gg - bb) / d, 6.f), hg = (bb - rr) / d + 2.f, hb = (rr - gg) / d + 4.f;
    float h = maxc == rr ? hr : (maxc == gg ? hg : hb);
    h = rem(where0(delta > 0.f, h / 6.f), 1.f);
    // the hue shift, then hsv_to_rgb: v - v*s*clamp(min(k, 4 - k), 0, 1), k = (c_n + 6h) mod 6
    h = rem(h + hs, 1.f);
    const float vs = maxc * sv, h6 = 6.f * h;
    const float k5 = rem(c5 + h6, 6.f), k3 = rem(c3 + h6, 6.f), k1 = rem(c1 + h6, 6.f);
    ro[p] = clamp01(maxc - vs * clamp01(vmin(k5, 4.f - k5)));
    go[p] = clamp01(maxc - vs * clamp01(vmin(k3, 4.f - k3)));
    bo[p] = clamp01(maxc - vs * clamp01(vmin(k1, 4.f - k1)));
  }
}

// Pass two over the batch: x1 from pass one, mean = its luminance's per-image mean (N values).
at::Tensor rest(at::Tensor x1, at::Tensor mean, at::Tensor contrast, at::Tensor sat,
                   at::Tensor hue, at::Tensor w) {
  TORCH_CHECK(x1.dim() == 4 && x1.size(1) == 3 && x1.scalar_type() == at::kFloat && x1.is_contiguous(),
              "color_jitter: x1 must be a contiguous (N, 3, H, W) float32 tensor");
  const int64_t N = x1.size(0), P = x1.size(2) * x1.size(3);
  for (const auto& t : {mean, contrast, sat, hue}) check_per_image(t, N);
  auto out = at::empty_like(x1);
  const float *xp = x1.data_ptr<float>(), *mp = mean.data_ptr<float>(), *cp = contrast.data_ptr<float>();
  const float *sp = sat.data_ptr<float>(), *hp = hue.data_ptr<float>(), *wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float w0 = wp[0], w1 = wp[1], w2 = wp[2];
  at::parallel_for(0, N, 1, [=](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* r = xp + n * 3 * P;
      float* o = op + n * 3 * P;
      rest_image(r, r + P, r + 2 * P, o, o + P, o + 2 * P, P, mp[n], cp[n], sp[n], hp[n], w0, w1, w2);
    }
  });
  return out;
}

// torch.remainder(a, m) for m > 0 as the kernel computes it (its test sweeps every float in a range against PyTorch's)
at::Tensor remainder_of(at::Tensor a, double m) {
  TORCH_CHECK(a.scalar_type() == at::kFloat && a.is_contiguous() && m > 0, "remainder: contiguous float32, m > 0");
  auto out = at::empty_like(a);
  const float* ap = a.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float mf = static_cast<float>(m);
  for (int64_t i = 0; i < a.numel(); ++i) op[i] = rem(ap[i], mf);
  return out;
}

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {  // torch.ops.<build name>.<op>: shortcutlab/native.py
  m.def("brightness", &brightness);
  m.def("rest", &rest);
  m.def("remainder", &remainder_of);
}
