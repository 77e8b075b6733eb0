// AVX2 + FMA + F16C attention row kernels (8 floats per register); the loops
// are dot_attention_x86.h's.
#include "kernels/cpu/dot/dot_attention_x86.h"

namespace dhi::kernels::cpu {
namespace {

struct Avx2Vec {
  using Vec = __m256;
  static constexpr int64_t W = 8;
  // Register budget (16 vector registers): scores holds kMaxHeads x kScoreKeys
  // accumulators, the key vectors and a query vector (15); values kMaxHeads x
  // kValueCols accumulators, the value vectors and a weight (15).
  static constexpr int kMaxHeads = 6, kScoreKeys = 2, kValueCols = 2;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_half(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(float* p, Vec x) { _mm256_storeu_ps(p, x); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static __m256 fold(Vec x) { return x; }
  static float sum(Vec x) {
    const __m128 r = attn_reduce4(x, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    return _mm_cvtss_f32(r);
  }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static float hmax(Vec x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static Vec round(Vec x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^n for integral -252 <= n <= 0: the power as exponent bits in two
  // factors (each at least 2^-126, a normal float), so results underflow
  // gradually to 0 as exp does instead of wrapping the exponent field.
  static Vec scale2(Vec p, Vec n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1), rest = _mm256_sub_epi32(ni, half);
    const auto pow2 = [](__m256i e) {
      return _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
    };
    return _mm256_mul_ps(_mm256_mul_ps(p, pow2(half)), pow2(rest));
  }
};

}  // namespace

namespace detail {
const AttentionRowKernel* avx2_attention_kernel() { return &AttnX86<Avx2Vec>::kKernel; }
}  // namespace detail

}  // namespace dhi::kernels::cpu
