// AVX2 + FMA + F16C attention row kernels (8 floats per register); the loops
// are dot_attention_x86.h's.
#include "kernels/cpu/dot/dot_attention_x86.h"

namespace dhi::kernels::cpu {
namespace {

struct Avx2Vec {
  using Vec = __m256;
  static constexpr int64_t W = 8;
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
};

}  // namespace

namespace detail {
const AttentionRowKernel* avx2_attention_kernel() { return &AttnX86<Avx2Vec>::kKernel; }
}  // namespace detail

}  // namespace dhi::kernels::cpu
