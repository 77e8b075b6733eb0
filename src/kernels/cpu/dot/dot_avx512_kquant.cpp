// AVX-512 + VNNI K-quant dot kernels (Q2_K..Q6_K weights x Q8_K activations),
// compiled with the AVX-512 F/BW/DQ/VL/VNNI flags. The structure is the AVX2
// kernel's (dot_avx2_kquant.cpp) at twice the width: a super-block is four
// 64-byte vectors W_p of unsigned quants (elements 64p..64p+63, lined up with a
// plain 64-byte load of the Q8_K quants). vpdpbusd multiplies them with the
// activation bytes, vpdpwssd applies the per-group scales while accumulating
// in int32; mins and the Q3_K/Q6_K offsets fold in through the activation's
// bsums, and each super-block ends in exact integers (dot_kquant_internal.h).
// Decode runs 4 rows per pass, and prefill under 16 tokens 1 row x 8 tokens;
// 16 tokens and more take the outer-product kernel
// (dot_avx512_kquant_internal.h).
// The row-interleaved decode kernels are in dot_avx512_kquant_interleaved.cpp.
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_avx512_kquant_internal.h"

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
      // vpmaddubsw on W_p gives 128-bit lane L the 16 elements of group 4p+L;
      // arranging the scales so lane L holds [s_L s_L+4 s_L+8 s_L+12] lets one
      // in-lane vpshufb per p broadcast every lane's scale at once.
      const __m512i lane_idx = _mm512_set_epi16(12 + 3, 8 + 3, 4 + 3, 3, 12 + 3, 8 + 3, 4 + 3, 3,  //
                                                12 + 2, 8 + 2, 4 + 2, 2, 12 + 2, 8 + 2, 4 + 2, 2,  //
                                                12 + 1, 8 + 1, 4 + 1, 1, 12 + 1, 8 + 1, 4 + 1, 1,  //
                                                12, 8, 4, 0, 12, 8, 4, 0);
      for (int64_t b = 0; b < g.n / QK_K; ++b) {
        W w[R];
        KqVecScales sc[R];
        __m512i lanes[R];
        float d[R], dmin[R], da[T];
        for (int r = 0; r < R; ++r) {
          w[r] = W{{wrow[r] + size_t(b) * W::kBytes}};
          kq_prefetch<W::kBytes>(wrow[r], size_t(R) * g.w_stride + size_t(b) * W::kBytes);
        }
        if constexpr (R == 4 && requires { W::scales4(w, sc); }) {
          W::scales4(w, sc);
        } else {
          for (int r = 0; r < R; ++r) w[r].scales(sc[r]);
        }
        for (int r = 0; r < R; ++r) {
          d[r] = sc[r].d;
          dmin[r] = sc[r].c;
          lanes[r] = _mm512_permutexvar_epi16(lane_idx, _mm512_zextsi256_si512(sc[r].s));
        }
        const uint8_t* ab[T];
        for (int t = 0; t < T; ++t) {
          ab[t] = arow[t] + size_t(b) * sizeof(BlockQ8_K);
          da[t] = kq_load<float>(ab[t]);
        }
        __m512i isum[R * T];
        for (auto& v : isum) v = _mm512_setzero_si512();
        // Two W_p at a time: vpdpbusd (u8 x s8, four products per int32 lane)
        // gives per-lane sums that fit int16 (|4 * 63 * 127| < 32768), vpackssdw
        // packs the pair's sums into one vector and vpdpwssd scales and
        // accumulates them: 3 multiplies per 128 weights where vpmaddubsw +
        // vpdpwssd take 4. Lane L of the packed vector holds group 4p+L's four
        // sums then group 4(p+1)+L's, hence the [s_p x4, s_p+1 x4] scale words.
        kq_unroll<2>([&]<int Q>() {
          __m512i a0[T], a1[T];
          for (int t = 0; t < T; ++t) {
            a0[t] = load512(ab[t] + offsetof(BlockQ8_K, qs) + 128 * Q);
            a1[t] = load512(ab[t] + offsetof(BlockQ8_K, qs) + 128 * Q + 64);
          }
          const __m512i pick = _mm512_broadcast_i32x4(_mm_setr_epi8(4 * Q, 4 * Q + 1, 4 * Q, 4 * Q + 1, 4 * Q, 4 * Q + 1,
                                                                    4 * Q, 4 * Q + 1, 4 * Q + 2, 4 * Q + 3, 4 * Q + 2,
                                                                    4 * Q + 3, 4 * Q + 2, 4 * Q + 3, 4 * Q + 2, 4 * Q + 3));
          for (int r = 0; r < R; ++r) {
            const __m512i v0 = quants512<W, 2 * Q>(w[r]);
            const __m512i v1 = quants512<W, 2 * Q + 1>(w[r]);
            const __m512i s = _mm512_shuffle_epi8(lanes[r], pick);
            for (int t = 0; t < T; ++t) {
              const __m512i x0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v0, a0[t]);
              const __m512i x1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v1, a1[t]);
              isum[r * T + t] = _mm512_dpwssd_epi32(isum[r * T + t], _mm512_packs_epi32(x0, x1), s);
            }
          }
        });
        __m256i half[R * T], mins[R * T];
        for (int i = 0; i < R * T; ++i)
          half[i] = _mm256_add_epi32(_mm512_castsi512_si256(isum[i]), _mm512_extracti64x4_epi64(isum[i], 1));
        for (int t = 0; t < T; ++t) {
          const __m256i bsums = kq_load256(ab[t] + offsetof(BlockQ8_K, bsums));
          for (int r = 0; r < R; ++r) mins[r * T + t] = _mm256_madd_epi16(bsums, sc[r].m);
        }
        kq_finish_block<!W::kOffset, R, T>(half, mins, d, dmin, da, acc);
      }
      kq_store_tile<R, T>(g, r0, t0, acc);
    }
  };
};

template <typename W>
void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
          int64_t n_tokens, float* out, size_t out_stride) {
  int64_t done = 0;
  if (n_tokens >= kTileTokens) {
    const KqGemmArgs g{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act), act_stride,
                       out, out_stride};
    const int64_t n_blocks = n / QK_K;
    thread_local std::vector<KRowBlock> rows;
    rows.resize(size_t(kRowsPerPass * n_blocks));
    done = outer_gemm<W>(g, n_rows, n_tokens, [&](int64_t r0, int nr) {
      for (int r = 0; r < nr; ++r) kq_unpack_row<W>(g.w + size_t(r0 + r) * w_stride, n_blocks, rows.data() + r * n_blocks);
      return rows.data();
    });
  }
  if (done < n_tokens) {
    kq_gemm<Kernel<W>::template Tile, 4, 8>(n, w, w_stride, n_rows, static_cast<const uint8_t*>(act) + size_t(done) * act_stride,
                                             act_stride, n_tokens - done, out + size_t(done) * out_stride, out_stride);
  }
}

void quantize_act(const float* x, void* out, int64_t n) { kq_quantize_q8_k_avx2(x, out, n); }

constexpr DotKernel kQ2K{TensorType::Q8_K, &quantize_act, &gemm<KqQ2K>};
constexpr DotKernel kQ3K{TensorType::Q8_K, &quantize_act, &gemm<KqQ3K>};
constexpr DotKernel kQ4K{TensorType::Q8_K, &quantize_act, &gemm<Q4K512>, &detail::avx512_q4k_gemm_interleaved,
                         &detail::avx512_q4k_interleave_group};
constexpr DotKernel kQ5K{TensorType::Q8_K, &quantize_act, &gemm<KqQ5K>};
constexpr DotKernel kQ6K{TensorType::Q8_K, &quantize_act, &gemm<Q6K512>, &detail::avx512_q6k_gemm_interleaved,
                         &detail::avx512_q6k_interleave_group};

}  // namespace

namespace detail {
const DotKernel* avx512_kquant_kernel(TensorType w) {
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
