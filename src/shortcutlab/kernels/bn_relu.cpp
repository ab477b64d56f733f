// BatchNorm in training mode (batch statistics, running statistics updated) followed by a ReLU, and optionally by a
// 2x2 stride-2 max-pool, on a channels-last bf16 activation with fp32 parameters: the ConvNet's conv -> BatchNorm2d
// -> ReLU (-> MaxPool2d) under bf16 autocast, forward and backward, giving PyTorch's values, running statistics and
// gradients bit for bit (shortcutlab/fused.py explains why and checks it when it loads; tests/test_bn_relu.py
// checks it). The arithmetic is PyTorch's CPU kernels' for this case (ATen's AVX-512 batch_norm_kernel.cpp, mixed
// bf16/fp32, channels-last; Normalization.cpp's statistics update), operation for operation. The file is compiled
// without contraction; where GCC contracts ATen's expressions into fused multiply-adds, fma() is written out:
// - statistics: the N*H*W rows split into T = at::get_num_threads() contiguous chunks of ceil(rows / T) (its
//   parallel_for); per chunk and channel an fp32 sum from +0, row by row; the chunks' sums added in order from +0;
//   mean = sum / rows; the same for the squared deviations, acc = fma(v - mean, v - mean, acc) -> var_sum;
// - invstd = float(1 / sqrt(double(var_sum / rows) + eps)); running_mean = float(m * mean + (1 - m) * running_mean)
//   and running_var = float(m * (var_sum / (rows - 1)) + (1 - m) * running_var);
// - y = bf16(fma(v, alpha, beta)) with alpha = invstd * weight, beta = fma(-mean, alpha, bias) (round to nearest
//   even); relu(y) = y < 0 ? +0 : y; the pool as in relu_pool.cpp (row by row, greater or NaN wins, ties to the
//   first);
// - backward: dy = the gradient reaching the BatchNorm output (the pool's winner gets 0 + g, relu's gradient passes
//   where its output is > 0 or NaN), per chunk as above the sums of dy and dotp = fma(v - mean, dy, dotp);
//   k = dotp * invstd * invstd / rows; dx = bf16((dy - sum / rows - (v - mean) * k) * invstd * weight) (not
//   contracted); dweight = dotp * invstd, dbias = sum.
// PyTorch's own sequence reads and writes the full-size activation in separate kernels (statistics, normalise,
// relu, pool, and back); here the normalised activation and its gradient are never written. The pooled window and
// the backward are written in AVX-512 intrinsics, 16 channels per vector (GCC does not vectorise the window's
// NaN-aware selects: the scalar loop was 3-5x slower than PyTorch); fused.py builds this file only on a CPU with
// AVX-512 (elsewhere PyTorch's modules run, with the same bits).
#include <torch/library.h>  // custom operators (torch.ops), not a Python module: a third of the build time
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

static inline float as_float(uint16_t b) { uint32_t u = static_cast<uint32_t>(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }

// fp32 -> bf16, round to nearest even (c10::BFloat16's rule; NaN -> the canonical quiet NaN)
static inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t r = u + 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>((f != f ? 0x7FC00000u : r) >> 16);  // a select, not a branch: the loops vectorise
}

static inline int64_t divup(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The rows' chunks as PyTorch's parallel_for(0, rows, 1) makes them, each reduced by f(t, begin, end) into its own
// slot; the chunks run in parallel, one per task, whatever this extension's own thread pool looks like.
template <typename F>
static void per_chunk(int64_t rows, int T, const F& f) {
  const int64_t chunk = divup(rows, T);
  at::parallel_for(0, T, 1, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      const int64_t b = t * chunk, e = std::min(rows, b + chunk);
      if (b < e) f(t, b, e);
    }
  });
}

template <int C>
static void collect_stats(const uint16_t* x, int64_t rows, int T, float* mean, float* var_sum) {
  std::vector<float> buf(static_cast<size_t>(T) * C, 0.f);
  per_chunk(rows, T, [&](int64_t t, int64_t b, int64_t e) {
    float acc[C];
    for (int c = 0; c < C; ++c) acc[c] = 0.f;
    for (int64_t i = b; i < e; ++i) {
      const uint16_t* r = x + i * C;
      #pragma omp simd
      for (int c = 0; c < C; ++c) acc[c] = acc[c] + as_float(r[c]);
    }
    std::memcpy(&buf[t * C], acc, sizeof(acc));
  });
  #pragma omp simd
  for (int c = 0; c < C; ++c) {
    float s = 0.f;
    for (int t = 0; t < T; ++t) s = s + buf[t * C + c];
    mean[c] = s / static_cast<float>(rows);
  }
  std::fill(buf.begin(), buf.end(), 0.f);
  per_chunk(rows, T, [&](int64_t t, int64_t b, int64_t e) {
    float acc[C], m[C];
    for (int c = 0; c < C; ++c) acc[c] = 0.f, m[c] = mean[c];
    for (int64_t i = b; i < e; ++i) {
      const uint16_t* r = x + i * C;
      #pragma omp simd
      for (int c = 0; c < C; ++c) {
        const float d = as_float(r[c]) - m[c];
        acc[c] = std::fma(d, d, acc[c]);
      }
    }
    std::memcpy(&buf[t * C], acc, sizeof(acc));
  });
  #pragma omp simd
  for (int c = 0; c < C; ++c) {
    float s = 0.f;
    for (int t = 0; t < T; ++t) s = s + buf[t * C + c];
    var_sum[c] = s;
  }
}

// bf16 bits of the BatchNorm output of one value
static inline uint16_t normalise(uint16_t v, float alpha, float beta) { return to_bf16(std::fma(as_float(v), alpha, beta)); }

#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "bn_relu.cpp needs AVX-512 (fused.py builds it only where the CPU has it)"
#endif
#include <immintrin.h>

static inline __m512 bf16x16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}

// fp32 -> the fp32 value of its bf16 rounding (to nearest even; NaN -> 0x7FC0), as to_bf16
static inline __m512 bf16_round(__m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                               _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC00000));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

static inline __m512 norm_relu16(const uint16_t* p, __m512 al, __m512 be) {
  const __m512 y = bf16_round(_mm512_fmadd_ps(bf16x16(p), al, be));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
}

static inline __mmask16 wins(__m512 f, __m512 m) {
  return _mm512_cmp_ps_mask(f, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
}

template <int C>
static inline void window16(const uint16_t* a, const uint16_t* b, const uint16_t* c2, const uint16_t* d,
                            const float* alpha, const float* beta, uint16_t* pw, uint8_t* cw) {
  for (int c = 0; c < C; c += 16) {
    const __m512 al = _mm512_loadu_ps(alpha + c), be = _mm512_loadu_ps(beta + c);
    __m512 m = norm_relu16(a + c, al, be);
    __m512i k = _mm512_setzero_si512();
    const __m512 f1 = norm_relu16(b + c, al, be);
    __mmask16 t = wins(f1, m);
    m = _mm512_mask_mov_ps(m, t, f1), k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(1));
    const __m512 f2 = norm_relu16(c2 + c, al, be);
    t = wins(f2, m);
    m = _mm512_mask_mov_ps(m, t, f2), k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(2));
    const __m512 f3 = norm_relu16(d + c, al, be);
    t = wins(f3, m);
    m = _mm512_mask_mov_ps(m, t, f3), k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(3));
    k = _mm512_mask_mov_epi32(_mm512_set1_epi32(4), wins(m, _mm512_setzero_ps()), k);
    _mm256_storeu_si256((__m256i*)(pw + c), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(m), 16)));
    _mm_storeu_si128((__m128i*)(cw + c), _mm512_cvtepi32_epi8(k));
  }
}

template <int C>
static void relu_pool_out(const uint16_t* x, const float* alpha, const float* beta, uint16_t* p, uint8_t* code,
                          int64_t N, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  at::parallel_for(0, N * OH, 1, [=](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / OH, oh = row % OH;
      const uint16_t* r0 = x + ((n * H + 2 * oh) * W) * C;
      const uint16_t* r1 = r0 + W * C;
      for (int64_t ow = 0; ow < OW; ++ow)
        window16<C>(r0 + 2 * ow * C, r0 + (2 * ow + 1) * C, r1 + 2 * ow * C, r1 + (2 * ow + 1) * C, alpha, beta,
                  p + (row * OW + ow) * C, code + (row * OW + ow) * C);
    }
  });
}

template <int C>
static void relu_out(const uint16_t* x, const float* alpha, const float* beta, uint16_t* out, int64_t rows) {
  at::parallel_for(0, rows, 1024, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      #pragma omp simd
      for (int c = 0; c < C; ++c) {
        const uint16_t y = normalise(x[i * C + c], alpha[c], beta[c]);
        out[i * C + c] = as_float(y) < 0.f ? uint16_t(0) : y;
      }
  });
}

// Where row i of the activation (N*H*W order) lies, advanced one row at a time (no division per row).
struct Cursor {
  int64_t i, n, h, w, H, W;
  Cursor(int64_t i0, int64_t H_, int64_t W_) : i(i0), n(i0 / (H_ * W_)), h((i0 / W_) % H_), w(i0 % W_), H(H_), W(W_) {}
  inline void next() {
    ++i;
    if (++w == W) { w = 0; if (++h == H) { h = 0; ++n; } }
  }
};

// The gradient reaching the BatchNorm output at the cursor's row, bf16 bits, for the pooled and the plain case.
struct PoolGrad {
  const uint16_t* g; const uint8_t* code; int64_t OH, OW;
  // the same, 16 channels from c, as fp32: the pooled winner's 0 + g (-0 -> +0), zero elsewhere
  struct At { int64_t p; __m512i want; bool none; };
  template <int C> inline At at(const Cursor& r) const {
    if (r.h >= 2 * OH || r.w >= 2 * OW) return {0, _mm512_setzero_si512(), true};
    return {((r.n * OH + r.h / 2) * OW + r.w / 2) * C, _mm512_set1_epi32(static_cast<int>((r.h % 2) * 2 + r.w % 2)),
            false};
  }
  template <int C> inline __m512 vec(const At& a, const Cursor&, int c, const uint16_t*, __m512, __m512) const {
    if (a.none) return _mm512_setzero_ps();
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(g + a.p + c)));
    const __m512i k = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(code + a.p + c)));
    const __mmask16 keep = _mm512_cmpeq_epi32_mask(k, a.want) & _mm512_cmpneq_epi32_mask(v, _mm512_set1_epi32(0x8000));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_maskz_mov_epi32(keep, v), 16));
  }
};

struct ReluGrad {
  const uint16_t* g;
  struct At {};
  template <int C> inline At at(const Cursor&) const { return {}; }
  template <int C> inline __m512 vec(const At&, const Cursor& r, int c, const uint16_t* xr, __m512 al, __m512 be) const {
    const __m512 y = bf16_round(_mm512_fmadd_ps(bf16x16(xr + c), al, be));
    const __m512 v = bf16x16(g + r.i * C + c);
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps());
  }
};

// The backward, 16 channels at a time: per thread chunk the sums of dy and of (v - mean) * dy, then dx.
template <int C, typename G>
static void backward_vec(const G& grad, const uint16_t* x, const float* mean, const float* invstd, const float* w,
                         const float* alpha, const float* beta, int64_t H, int64_t W, int64_t rows, int T, uint16_t* dx,
                         float* dw, float* db) {
  constexpr int V = C / 16;
  std::vector<float> sums(static_cast<size_t>(2) * T * C, 0.f);
  per_chunk(rows, T, [&](int64_t t, int64_t b, int64_t e) {
    __m512 s[V], dp[V], al[V], be[V], mu[V];
    for (int v = 0; v < V; ++v) {
      s[v] = dp[v] = _mm512_setzero_ps();
      al[v] = _mm512_loadu_ps(alpha + 16 * v), be[v] = _mm512_loadu_ps(beta + 16 * v), mu[v] = _mm512_loadu_ps(mean + 16 * v);
    }
    for (Cursor r(b, H, W); r.i < e; r.next()) {
      const uint16_t* xr = x + r.i * C;
      const auto a = grad.template at<C>(r);
      for (int v = 0; v < V; ++v) {
        const __m512 d = grad.template vec<C>(a, r, 16 * v, xr, al[v], be[v]);
        s[v] = _mm512_add_ps(d, s[v]);
        dp[v] = _mm512_fmadd_ps(_mm512_sub_ps(bf16x16(xr + 16 * v), mu[v]), d, dp[v]);
      }
    }
    for (int v = 0; v < V; ++v) {
      _mm512_storeu_ps(&sums[t * C + 16 * v], s[v]);
      _mm512_storeu_ps(&sums[(T + t) * C + 16 * v], dp[v]);
    }
  });
  float sum[C], dotp[C], k[C], gm[C];
  const float n = static_cast<float>(rows);
  for (int c = 0; c < C; ++c) {
    float a = 0.f, d = 0.f;
    for (int t = 0; t < T; ++t) a = a + sums[t * C + c];
    for (int t = 0; t < T; ++t) d = d + sums[(T + t) * C + c];
    sum[c] = a, dotp[c] = d;
    k[c] = dotp[c] * invstd[c] * invstd[c] / n;
    gm[c] = sum[c] / n;
    dw[c] = dotp[c] * invstd[c];
    db[c] = sum[c];
  }
  at::parallel_for(0, rows, 1024, [&](int64_t begin, int64_t end) {
    __m512 al[V], be[V], mu[V], gmv[V], kv[V], is[V], wv[V];
    for (int v = 0; v < V; ++v) {
      al[v] = _mm512_loadu_ps(alpha + 16 * v), be[v] = _mm512_loadu_ps(beta + 16 * v), mu[v] = _mm512_loadu_ps(mean + 16 * v);
      gmv[v] = _mm512_loadu_ps(gm + 16 * v), kv[v] = _mm512_loadu_ps(k + 16 * v);
      is[v] = _mm512_loadu_ps(invstd + 16 * v), wv[v] = _mm512_loadu_ps(w + 16 * v);
    }
    for (Cursor r(begin, H, W); r.i < end; r.next()) {
      const uint16_t* xr = x + r.i * C;
      const auto a = grad.template at<C>(r);
      for (int v = 0; v < V; ++v) {
        const __m512 d = grad.template vec<C>(a, r, 16 * v, xr, al[v], be[v]);
        const __m512 xm = _mm512_sub_ps(bf16x16(xr + 16 * v), mu[v]);
        __m512 o = _mm512_sub_ps(_mm512_sub_ps(d, gmv[v]), _mm512_mul_ps(xm, kv[v]));
        o = _mm512_mul_ps(_mm512_mul_ps(o, is[v]), wv[v]);
        const __m512i bits = _mm512_srli_epi32(_mm512_castps_si512(bf16_round(o)), 16);
        _mm256_storeu_si256((__m256i*)(dx + r.i * C + 16 * v), _mm512_cvtepi32_epi16(bits));
      }
    }
  });
}

static void check(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kBFloat16 && x.is_contiguous(at::MemoryFormat::ChannelsLast),
              "bn_relu: a channels-last bf16 (N, C, H, W) tensor");
  TORCH_CHECK(w.scalar_type() == at::kFloat && w.is_contiguous() && w.numel() == x.size(1), "bn_relu: fp32 params");
}

static const uint16_t* bits(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }
static uint16_t* bits_out(at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

// alpha, beta of the normalisation from the saved statistics (PyTorch's collect_linear_and_constant_terms)
static void linear_terms(const float* mean, const float* invstd, const float* w, const float* b, float* alpha,
                         float* beta, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    alpha[c] = invstd[c] * w[c];
    beta[c] = std::fma(-mean[c], alpha[c], b[c]);
  }
}

template <int C>
static std::vector<at::Tensor> forward_c(at::Tensor x, at::Tensor w, at::Tensor b, at::Tensor rm,
                                            at::Tensor rv, double momentum, double eps, bool pool) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), rows = N * H * W;
  const int T = at::get_num_threads();
  auto f32 = x.options().dtype(at::kFloat);
  auto mean = at::empty({C}, f32), invstd = at::empty({C}, f32);
  std::vector<float> var_sum(C), alpha(C), beta(C);
  float* mp = mean.data_ptr<float>();
  float* ip = invstd.data_ptr<float>();
  collect_stats<C>(bits(x), rows, T, mp, var_sum.data());
  float* rmp = rm.data_ptr<float>();
  float* rvp = rv.data_ptr<float>();
  const float m = static_cast<float>(momentum);
  #pragma omp simd
  for (int c = 0; c < C; ++c) {
    const float var = var_sum[c] / static_cast<float>(rows);
    ip[c] = (var != 0.f || eps != 0.0) ? static_cast<float>(1.0f / std::sqrt(var + eps)) : 0.f;
    rmp[c] = m * mp[c] + (1 - m) * rmp[c];
    const float unbiased = var_sum[c] / static_cast<float>(rows - 1);
    rvp[c] = m * unbiased + (1 - m) * rvp[c];
  }
  linear_terms(mp, ip, w.data_ptr<float>(), b.data_ptr<float>(), alpha.data(), beta.data(), C);
  auto cl = at::MemoryFormat::ChannelsLast;
  if (pool) {
    auto p = at::empty({N, C, H / 2, W / 2}, x.options().memory_format(cl));
    auto code = at::empty({N, C, H / 2, W / 2}, x.options().dtype(at::kByte).memory_format(cl));
    relu_pool_out<C>(bits(x), alpha.data(), beta.data(), bits_out(p), code.data_ptr<uint8_t>(), N, H, W);
    return {p, code, mean, invstd};
  }
  auto out = at::empty_like(x, x.options().memory_format(cl));
  relu_out<C>(bits(x), alpha.data(), beta.data(), bits_out(out), rows);
  return {out, at::Tensor(), mean, invstd};
}

template <int C>
static std::vector<at::Tensor> backward_c(at::Tensor g, at::Tensor x, at::Tensor code, at::Tensor w,
                                             at::Tensor b, at::Tensor mean, at::Tensor invstd) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), rows = N * H * W;
  const int T = at::get_num_threads();
  std::vector<float> alpha(C), beta(C);
  const float *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>(), *wp = w.data_ptr<float>();
  linear_terms(mp, ip, wp, b.data_ptr<float>(), alpha.data(), beta.data(), C);
  auto dx = at::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  auto dw = at::empty({C}, w.options()), db = at::empty({C}, w.options());
  if (code.defined()) {
    PoolGrad grad{bits(g), code.data_ptr<uint8_t>(), H / 2, W / 2};
    backward_vec<C>(grad, bits(x), mp, ip, wp, alpha.data(), beta.data(), H, W, rows, T, bits_out(dx),
                     dw.data_ptr<float>(), db.data_ptr<float>());
  } else {
    ReluGrad grad{bits(g)};
    backward_vec<C>(grad, bits(x), mp, ip, wp, alpha.data(), beta.data(), H, W, rows, T, bits_out(dx),
                     dw.data_ptr<float>(), db.data_ptr<float>());
  }
  return {dx, dw, db};
}

// relu(BatchNorm(x)) from saved statistics, the forward's arithmetic (no statistics updated): what PyTorch's relu
// backward compares with 0 when the gradient arrives in another layout (fused.py then runs PyTorch's backward ops).
template <int C>
static at::Tensor relu_of_c(at::Tensor x, at::Tensor w, at::Tensor b, at::Tensor mean, at::Tensor invstd) {
  std::vector<float> alpha(C), beta(C);
  linear_terms(mean.data_ptr<float>(), invstd.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
               alpha.data(), beta.data(), C);
  auto out = at::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  relu_out<C>(bits(x), alpha.data(), beta.data(), bits_out(out), x.size(0) * x.size(2) * x.size(3));
  return out;
}

at::Tensor relu_of(at::Tensor x, at::Tensor w, at::Tensor b, at::Tensor mean, at::Tensor invstd) {
  check(x, w);
  switch (x.size(1)) {
    case 16: return relu_of_c<16>(x, w, b, mean, invstd);
    case 32: return relu_of_c<32>(x, w, b, mean, invstd);
    case 64: return relu_of_c<64>(x, w, b, mean, invstd);
    default: TORCH_CHECK(false, "bn_relu: 16, 32 or 64 channels");
  }
}

std::vector<at::Tensor> forward(at::Tensor x, at::Tensor w, at::Tensor b, at::Tensor rm,
                                   at::Tensor rv, double momentum, double eps, bool pool) {
  check(x, w);
  TORCH_CHECK(b.scalar_type() == at::kFloat && rm.scalar_type() == at::kFloat && rv.scalar_type() == at::kFloat
              && b.is_contiguous() && rm.is_contiguous() && rv.is_contiguous(), "bn_relu: fp32 params and statistics");
  TORCH_CHECK(x.size(0) * x.size(2) * x.size(3) > at::get_num_threads(), "bn_relu: more rows than threads");
  switch (x.size(1)) {
    case 16: return forward_c<16>(x, w, b, rm, rv, momentum, eps, pool);
    case 32: return forward_c<32>(x, w, b, rm, rv, momentum, eps, pool);
    case 64: return forward_c<64>(x, w, b, rm, rv, momentum, eps, pool);
    default: TORCH_CHECK(false, "bn_relu: 16, 32 or 64 channels");
  }
}

std::vector<at::Tensor> backward(at::Tensor g, at::Tensor x, std::optional<at::Tensor> code, at::Tensor w,
                                    at::Tensor b, at::Tensor mean, at::Tensor invstd) {
  check(x, w);
  at::Tensor cd = code.has_value() ? *code : at::Tensor();
  TORCH_CHECK(g.scalar_type() == at::kBFloat16 && g.is_contiguous(at::MemoryFormat::ChannelsLast),
              "bn_relu: a channels-last bf16 gradient");
  switch (x.size(1)) {
    case 16: return backward_c<16>(g, x, cd, w, b, mean, invstd);
    case 32: return backward_c<32>(g, x, cd, w, b, mean, invstd);
    case 64: return backward_c<64>(g, x, cd, w, b, mean, invstd);
    default: TORCH_CHECK(false, "bn_relu: 16, 32 or 64 channels");
  }
}

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {  // torch.ops.<build name>.<op>: shortcutlab/native.py
  m.def("forward", &forward);
  m.def("backward", &backward);
  m.def("relu_of", &relu_of);
}
