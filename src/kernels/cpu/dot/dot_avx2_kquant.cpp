// AVX2 K-quant dot kernels (Q2_K..Q6_K weights x Q8_K activations), compiled
// with -mavx2 -mfma -mf16c. Per super-block and 32 weights: build the unsigned
// quant bytes V_m in a register (a load, a shift and a mask, plus the high bits
// for Q3_K/Q5_K/Q6_K), vpmaddubsw them against the activation bytes (u8 x s8 ->
// int16 pairs; at most 2*63*127 so never saturating) and vpmaddwd the pairs by
// the int16 group scales straight into int32 accumulators. Scales are unpacked
// once per super-block; mins and offsets are one vpmaddwd of the scales with
// the activation's bsums. Sums stay in vector registers through the block;
// each block ends in two exact integers per (row, token), reduced four pairs at
// a time (dot_kquant_internal.h). Decode runs 4 rows per pass (independent
// chains, one activation load for all four, next tile prefetched into L2);
// prefill 1 row x 4 tokens, so each unpacked V_m serves four tokens.
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_kquant_internal.h"

namespace dhi::kernels::cpu {
namespace {

template <typename W>
struct Kernel {
  template <int R, int T>
  struct Tile {
    static void run(const KqGemmArgs& g, int64_t r0, int64_t t0) {
      const uint8_t* wrow[R];
      const uint8_t* arow[T];
      for (int r = 0; r < R; ++r) wrow[r] = g.w + size_t(r0 + r) * g.w_stride;
      for (int t = 0; t < T; ++t) arow[t] = g.act + size_t(t0 + t) * g.act_stride;
      __m128 acc[(R * T + 3) / 4];
      for (auto& a : acc) a = _mm_setzero_ps();
      // vpshufb pattern: words 0,2,4,6,1,3,5,7 within each 128-bit lane.
      const __m256i even_odd = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4,
                                                5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
      for (int64_t b = 0; b < g.n / QK_K; ++b) {
        W w[R];
        KqVecScales sc[R];
        __m256i pairs[R];
        float d[R], dmin[R], da[T];
        for (int r = 0; r < R; ++r) {
          w[r] = W{wrow[r] + size_t(b) * W::kBytes};
          kq_prefetch<W::kBytes>(wrow[r], size_t(R) * g.w_stride + size_t(b) * W::kBytes);
          w[r].scales(sc[r]);
          d[r] = sc[r].d;
          dmin[r] = sc[r].c;
          // V_m's vpmaddubsw result has group 2m in its low 128 bits and 2m+1
          // in the high ones, so lay the scales out as [s0 s2 .. s14 | s1 s3
          // .. s15] once; then one in-lane vpshufb per m broadcasts the pair.
          pairs[r] = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(sc[r].s, even_odd), 0xd8);
        }
        const uint8_t* ab[T];
        for (int t = 0; t < T; ++t) {
          ab[t] = arow[t] + size_t(b) * sizeof(BlockQ8_K);
          da[t] = kq_load<float>(ab[t]);
        }
        __m256i isum[R * T];
        for (auto& v : isum) v = _mm256_setzero_si256();
        kq_unroll<8>([&]<int M>() {
          __m256i a[T];
          for (int t = 0; t < T; ++t) a[t] = kq_load256(ab[t] + offsetof(BlockQ8_K, qs) + 32 * M);
          for (int r = 0; r < R; ++r) {
            const __m256i v = w[r].template quants<M>();
            const __m256i s = _mm256_shuffle_epi8(pairs[r], _mm256_set1_epi16(short((2 * M + 1) << 8 | 2 * M)));
            for (int t = 0; t < T; ++t)
              isum[r * T + t] = _mm256_add_epi32(isum[r * T + t], _mm256_madd_epi16(_mm256_maddubs_epi16(v, a[t]), s));
          }
        });
        __m256i mins[R * T];
        for (int t = 0; t < T; ++t) {
          const __m256i bsums = kq_load256(ab[t] + offsetof(BlockQ8_K, bsums));
          for (int r = 0; r < R; ++r) mins[r * T + t] = _mm256_madd_epi16(bsums, sc[r].m);
        }
        kq_finish_block<!W::kOffset, R, T>(isum, mins, d, dmin, da, acc);
      }
      kq_store_tile<R, T>(g, r0, t0, acc);
    }
  };
};

template <typename W>
void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
          int64_t n_tokens, float* out, size_t out_stride) {
  kq_gemm<Kernel<W>::template Tile, 4, 4>(n, w, w_stride, n_rows, act, act_stride, n_tokens, out, out_stride);
}

void quantize_act(const float* x, void* out, int64_t n) { kq_quantize_q8_k_avx2(x, out, n); }

constexpr DotKernel kQ2K{TensorType::Q8_K, &quantize_act, &gemm<KqQ2K>};
constexpr DotKernel kQ3K{TensorType::Q8_K, &quantize_act, &gemm<KqQ3K>};
constexpr DotKernel kQ4K{TensorType::Q8_K, &quantize_act, &gemm<KqQ4K>};
constexpr DotKernel kQ5K{TensorType::Q8_K, &quantize_act, &gemm<KqQ5K>};
constexpr DotKernel kQ6K{TensorType::Q8_K, &quantize_act, &gemm<KqQ6K>};

}  // namespace

namespace detail {
const DotKernel* avx2_kquant_kernel(TensorType w) {
  switch (w) {
    case TensorType::Q2_K: return &kQ2K;
    case TensorType::Q3_K: return &kQ3K;
    case TensorType::Q4_K: return &kQ4K;
    case TensorType::Q5_K: return &kQ5K;
    case TensorType::Q6_K: return &kQ6K;
    default: return nullptr;
  }
}
}  // namespace detail

}  // namespace dhi::kernels::cpu
