// AVX-512 attention row kernels (16 floats per register); the loops are
// dot_attention_x86.h's.
// GCC 12's avx512fintrin.h builds the cvtph and reduction intrinsics on a
// self-initialised "undefined" vector that -Wmaybe-uninitialized reports at
// every inlined use (-Wuninitialized where the use is certain); the value is
// never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "kernels/cpu/dot/dot_attention_x86.h"

namespace dhi::kernels::cpu {
namespace {

struct Avx512Vec {
  using Vec = __m512;
  static constexpr int64_t W = 16;
  // Register budget (32 vector registers): scores holds kMaxHeads x kScoreKeys
  // accumulators, the key vectors and a query vector (29); values kMaxHeads x
  // kValueCols accumulators, the value vectors and a weight (29).
  static constexpr int kMaxHeads = 6, kScoreKeys = 4, kValueCols = 4;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_half(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, Vec x) { _mm512_storeu_ps(p, x); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  // The two 8-float halves added: what attn_reduce4 takes.
  static __m256 fold(Vec x) {
    return _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
  }
  static float sum(Vec x) { return _mm512_reduce_add_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static float hmax(Vec x) { return _mm512_reduce_max_ps(x); }
  static Vec round(Vec x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^n for integral n: vscalefps, exact, and 0 (or subnormal) where exp underflows.
  static Vec scale2(Vec p, Vec n) { return _mm512_scalef_ps(p, n); }
};

}  // namespace

namespace detail {
const AttentionRowKernel* avx512_attention_kernel() { return &AttnX86<Avx512Vec>::kKernel; }
}  // namespace detail

}  // namespace dhi::kernels::cpu
