// AVX-512 + VNNI K-quant dot kernels (Q2_K..Q6_K weights x Q8_K activations),
// compiled with the AVX-512 F/BW/DQ/VL/VNNI flags. The structure is the AVX2
// kernel's (dot_avx2_kquant.cpp) at twice the width: a super-block is four
// 64-byte vectors W_p of unsigned quants (elements 64p..64p+63, lined up with a
// plain 64-byte load of the Q8_K quants). vpdpbusd multiplies them with the
// activation bytes, vpdpwssd applies the per-group scales while accumulating
// in int32; mins and the Q3_K/Q6_K offsets fold in through the activation's
// bsums, and each super-block ends in exact integers (dot_kquant_internal.h).
// Decode runs 4 rows per pass; prefill 1 row x 16 tokens (kq_prefill_row16),
// with 1 x 8 and smaller tiles for fewer than 16 tokens.
#include "kernels/cpu/dot/dot.h"

// GCC 12's avx512fintrin.h builds several intrinsics (vinserti64x4, vcvtdq2ps,
// the reductions) on a self-initialised "undefined" vector, which
// -Wmaybe-uninitialized reports at every inlined use; the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <vector>

#include "kernels/cpu/dot/dot_kquant_internal.h"

namespace dhi::kernels::cpu {
namespace {

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// W_p from the shared 256-bit producers: [V_2p | V_2p+1].
template <typename W, int P>
inline __m512i quants512(const W& w) {
  if constexpr (requires { w.template quants512<P>(); }) {
    return w.template quants512<P>();
  } else {
    return _mm512_inserti64x4(_mm512_castsi256_si512(w.template quants<2 * P>()), w.template quants<2 * P + 1>(),
                              1);
  }
}

// Q4_K/Q6_K, the types of most decode bytes, get W_p straight from 512-bit
// loads: Q4_K's 32 packed bytes hold 64 consecutive quants (low nibbles, then
// high), so one broadcast load, a shift of the upper half and a mask give W_p.
struct Q4K512 : KqQ4K {
  template <int P>
  __m512i quants512() const {
    const __m512i q = _mm512_broadcast_i64x4(kq_load256(b + offsetof(BlockQ4_K, qs) + 32 * P));
    return _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xffff0000u, q, 4), _mm512_set1_epi8(15));
  }
};

// Q6_K: W_p's 64 low nibbles are one 64-byte load of ql (nibble p%2), its high
// 2-bit pairs two consecutive bit pairs of one broadcast 32-byte qh load.
struct Q6K512 : KqQ6K {
  template <int P>
  __m512i quants512() const {
    constexpr int h = P / 2;
    const __m512i l = load512(b + offsetof(BlockQ6_K, ql) + 64 * h);
    const __m512i low = _mm512_and_si512(P % 2 ? _mm512_srli_epi16(l, 4) : l, _mm512_set1_epi8(15));
    __m512i hi = _mm512_broadcast_i64x4(kq_load256(b + offsetof(BlockQ6_K, qh) + 32 * h));
    if constexpr (P % 2 == 0) {
      // bit pairs 0 (lower half) and 1 (upper half) move to bits 4-5
      hi = _mm512_slli_epi16(hi, 2);
      hi = _mm512_mask_slli_epi16(hi, 0x0000ffffu, hi, 2);
    } else {
      // bit pairs 2 (lower half, already at 4-5) and 3 (upper half)
      hi = _mm512_mask_srli_epi16(hi, 0xffff0000u, hi, 2);
    }
    return _mm512_or_si512(low, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
  }
};

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
          w[r].scales(sc[r]);
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

// ---- Prefill: one weight row x 16 tokens, finished in vector registers.
//
// The 1 x T tile above ends every super-block with horizontal reductions per
// (row, token) pair, which cost as much as the multiplies at prefill sizes.
// Here a row meets 16 tokens at once and the super-block ends lane-wise:
//   S: the 16 tokens' int32 sums are transposed and added (kq_sum16) into one
//      vector whose lane t is token t's S;
//   M: the activations' bsums are laid out once per call transposed, token-
//      minor (TokenTile16), so sum_k m_k B_k(t) for all 16 tokens is eight
//      vpdpwssd with a broadcast pair of m's;
//   then the float expression of kq_block_value, lane by lane (the same IEEE
//   operations in the same order, so the result is still bit-identical to the
//   generic kernel's), accumulates into one vector of 16 token results.

// Lane t of the result = the sum of the 16 int32 lanes of v[t].
inline __m512i kq_sum16(const __m512i* v) {
  __m512i a[8], b[4], c[2];
  // lane quad L of a[i]: [v2i partial, v2i+1 partial, v2i partial, v2i+1 partial]
  for (int i = 0; i < 8; ++i)
    a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  // lane quad L of b[i]: tokens 4i..4i+3, each summed over quad L
  for (int i = 0; i < 4; ++i)
    b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
  // quads across: c[i] = [b2i q0+q1, b2i q2+q3, b2i+1 q0+q1, b2i+1 q2+q3]
  for (int i = 0; i < 2; ++i)
    c[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0x88),
                            _mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0xdd));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88), _mm512_shuffle_i32x4(c[0], c[1], 0xdd));
}

// 16 tokens' activation side, per super-block: d of each token, and the bsums
// as 8 vectors of 16 (B_2j(t), B_2j+1(t)) int16 pairs.
struct TokenTile16 {
  struct Block {
    alignas(64) float d[16];
    alignas(64) int16_t bsums[8][16][2];
  };
  const Block* blocks;  // one per super-block of the row
};

inline void kq_build_tile16(const KqGemmArgs& g, int64_t t0, TokenTile16::Block* out) {
  for (int64_t b = 0; b < g.n / QK_K; ++b) {
    TokenTile16::Block& o = out[b];
    for (int t = 0; t < 16; ++t) {
      const uint8_t* ab = g.act + size_t(t0 + t) * g.act_stride + size_t(b) * sizeof(BlockQ8_K);
      o.d[t] = kq_load<float>(ab);
      int16_t bs[16];
      std::memcpy(bs, ab + offsetof(BlockQ8_K, bsums), sizeof(bs));
      for (int j = 0; j < 8; ++j) {
        o.bsums[j][t][0] = bs[2 * j];
        o.bsums[j][t][1] = bs[2 * j + 1];
      }
    }
  }
}

// kq_rounded for a vector: GCC writes the float intrinsics as vector
// arithmetic, which it contracts into FMAs like scalar code.
inline __m512 kq_rounded16(__m512 x) {
  __asm__("" : "+v"(x));
  return x;
}

// Adds super-blocks [b0, b1) of row r x tokens t0..t0+15 to acc (16 floats).
template <typename W>
void kq_prefill_row16(const KqGemmArgs& g, int64_t r, int64_t t0, const TokenTile16& tile, int64_t b0, int64_t b1,
                      float* acc_out) {
  const uint8_t* wrow = g.w + size_t(r) * g.w_stride;
  const uint8_t* arow[16];
  for (int t = 0; t < 16; ++t) arow[t] = g.act + size_t(t0 + t) * g.act_stride + offsetof(BlockQ8_K, qs);
  const __m512i lane_idx = _mm512_set_epi16(12 + 3, 8 + 3, 4 + 3, 3, 12 + 3, 8 + 3, 4 + 3, 3,  //
                                            12 + 2, 8 + 2, 4 + 2, 2, 12 + 2, 8 + 2, 4 + 2, 2,  //
                                            12 + 1, 8 + 1, 4 + 1, 1, 12 + 1, 8 + 1, 4 + 1, 1,  //
                                            12, 8, 4, 0, 12, 8, 4, 0);
  __m512 acc = _mm512_loadu_ps(acc_out);
  for (int64_t b = b0; b < b1; ++b) {
    const W w{{wrow + size_t(b) * W::kBytes}};
    KqVecScales sc;
    w.scales(sc);
    const __m512i lanes = _mm512_permutexvar_epi16(lane_idx, _mm512_zextsi256_si512(sc.s));
    const size_t ab = size_t(b) * sizeof(BlockQ8_K);
    __m512i isum[16];
    for (auto& v : isum) v = _mm512_setzero_si512();
    // As in Kernel::Tile: two W_p per step, vpdpbusd, vpackssdw, vpdpwssd.
    kq_unroll<2>([&]<int Q>() {
      const __m512i v0 = quants512<W, 2 * Q>(w);
      const __m512i v1 = quants512<W, 2 * Q + 1>(w);
      const __m512i pick = _mm512_broadcast_i32x4(_mm_setr_epi8(4 * Q, 4 * Q + 1, 4 * Q, 4 * Q + 1, 4 * Q, 4 * Q + 1,
                                                                4 * Q, 4 * Q + 1, 4 * Q + 2, 4 * Q + 3, 4 * Q + 2,
                                                                4 * Q + 3, 4 * Q + 2, 4 * Q + 3, 4 * Q + 2, 4 * Q + 3));
      const __m512i s = _mm512_shuffle_epi8(lanes, pick);
      for (int t = 0; t < 16; ++t) {
        const uint8_t* a = arow[t] + ab + 128 * Q;
        const __m512i x0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v0, load512(a));
        const __m512i x1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v1, load512(a + 64));
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_packs_epi32(x0, x1), s);
      }
    });
    const __m512i S = kq_sum16(isum);
    const TokenTile16::Block& tb = tile.blocks[b];
    alignas(32) int32_t mpair[8];  // (m_2j, m_2j+1) as one int32 each
    _mm256_store_si256(reinterpret_cast<__m256i*>(mpair), sc.m);
    __m512i M = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j)
      M = _mm512_dpwssd_epi32(M, _mm512_set1_epi32(mpair[j]), _mm512_load_si512(tb.bsums[j]));
    const __m512 da = _mm512_load_ps(tb.d);
    // kq_block_value, lane by lane.
    __m512 v;
    if constexpr (W::kOffset) {
      v = _mm512_mul_ps(da, kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(sc.d), _mm512_cvtepi32_ps(_mm512_sub_epi32(S, M)))));
    } else {
      const __m512 ds = kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(sc.d), _mm512_cvtepi32_ps(S)));
      const __m512 dm = kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(sc.c), _mm512_cvtepi32_ps(M)));
      v = _mm512_mul_ps(da, _mm512_sub_ps(ds, dm));
    }
    v = kq_rounded16(v);
    acc = _mm512_add_ps(acc, v);
  }
  _mm512_storeu_ps(acc_out, acc);
}

template <typename W>
void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
          int64_t n_tokens, float* out, size_t out_stride) {
  if (n_tokens < 16) {
    kq_gemm<Kernel<W>::template Tile, 4, 8>(n, w, w_stride, n_rows, act, act_stride, n_tokens, out, out_stride);
    return;
  }
  const KqGemmArgs g{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act), act_stride,
                     out, out_stride};
  const int64_t n_tiles = n_tokens / 16;
  const int64_t n_blocks = n / QK_K;
  thread_local std::vector<TokenTile16::Block> tiles;
  thread_local std::vector<float> acc;
  tiles.resize(size_t(n_blocks));
  acc.resize(size_t(16 * n_rows));
  // A tile's 16 activation rows stay in L1 while the rows pass, a run of
  // kL1Blocks super-blocks at a time (16 x 4 Q8_K blocks are 18.7 KB); the
  // accumulators carry each (row, token) sum across the runs in block order.
  constexpr int64_t kL1Blocks = 4;
  for (int64_t i = 0; i < n_tiles; ++i) {
    kq_build_tile16(g, 16 * i, tiles.data());
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kL1Blocks) {
      const int64_t b1 = std::min(n_blocks, b0 + kL1Blocks);
      for (int64_t r = 0; r < n_rows; ++r)
        kq_prefill_row16<W>(g, r, 16 * i, TokenTile16{tiles.data()}, b0, b1, acc.data() + 16 * r);
    }
    for (int64_t r = 0; r < n_rows; ++r)
      for (int t = 0; t < 16; ++t) out[size_t(16 * i + t) * out_stride + size_t(r)] = acc[size_t(16 * r + t)];
  }
  if (const int64_t rest = n_tokens - 16 * n_tiles; rest > 0) {
    kq_gemm<Kernel<W>::template Tile, 4, 8>(n, w, w_stride, n_rows, g.act + size_t(16 * n_tiles) * act_stride,
                                             act_stride, rest, out + size_t(16 * n_tiles) * out_stride, out_stride);
  }
}

void quantize_act(const float* x, void* out, int64_t n) { kq_quantize_q8_k_avx2(x, out, n); }

constexpr DotKernel kQ2K{TensorType::Q8_K, &quantize_act, &gemm<KqQ2K>};
constexpr DotKernel kQ3K{TensorType::Q8_K, &quantize_act, &gemm<KqQ3K>};
constexpr DotKernel kQ4K{TensorType::Q8_K, &quantize_act, &gemm<Q4K512>};
constexpr DotKernel kQ5K{TensorType::Q8_K, &quantize_act, &gemm<KqQ5K>};
constexpr DotKernel kQ6K{TensorType::Q8_K, &quantize_act, &gemm<Q6K512>};

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
