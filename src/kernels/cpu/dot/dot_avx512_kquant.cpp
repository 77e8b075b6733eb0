// AVX-512 + VNNI K-quant dot kernels (Q2_K..Q6_K weights x Q8_K activations),
// compiled with the AVX-512 F/BW/DQ/VL/VNNI flags. The structure is the AVX2
// kernel's (dot_avx2_kquant.cpp) at twice the width: a super-block is four
// 64-byte vectors W_p of unsigned quants (elements 64p..64p+63, lined up with a
// plain 64-byte load of the Q8_K quants). vpdpbusd multiplies them with the
// activation bytes, vpdpwssd applies the per-group scales while accumulating
// in int32; mins and the Q3_K/Q6_K offsets fold in through the activation's
// bsums, and each super-block ends in exact integers (dot_kquant_internal.h).
// Decode runs 4 rows per pass, and prefill under 16 tokens 1 row x 8 tokens;
// 16 tokens and more take the outer-product kernel (gemm below).
#include "kernels/cpu/dot/dot.h"

// GCC 12's avx512fintrin.h builds several intrinsics (vinserti64x4, vcvtdq2ps,
// the reductions) on a self-initialised "undefined" vector, which
// -Wmaybe-uninitialized reports at every inlined use; the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
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

  // kq_vec_scales_k4 for four blocks at once, one per 128-bit lane: the same
  // byte shuffles, masks and shifts (so the same values), a quarter of the
  // instructions per block. Decode unpacks scales for every row of every
  // super-block, so they are a fifth of its instructions.
  static void scales4(const Q4K512* w, KqVecScales* o) {
    __m512i x = _mm512_castsi128_si512(kq_load128(w[0].b));
    x = _mm512_inserti32x4(x, kq_load128(w[1].b), 1);
    x = _mm512_inserti32x4(x, kq_load128(w[2].b), 2);
    x = _mm512_inserti32x4(x, kq_load128(w[3].b), 3);
    const auto each = [](__m128i v) { return _mm512_broadcast_i32x4(v); };
    const __m512i a =
        _mm512_shuffle_epi8(x, each(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, -1, -1, -1, -1)));
    const __m512i c =
        _mm512_shuffle_epi8(x, each(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 12, 13, 14, 15)));
    const __m512i h =
        _mm512_shuffle_epi8(x, each(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11)));
    const __m512i mask_a = each(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m512i low = _mm512_or_si512(_mm512_and_si512(a, mask_a),
                                        _mm512_and_si512(_mm512_srli_epi16(c, 4), _mm512_set1_epi8(15)));
    const __m512i r = _mm512_or_si512(low, _mm512_and_si512(_mm512_srli_epi16(h, 2), _mm512_set1_epi8(0x30)));
    const __m512i s = _mm512_unpacklo_epi8(r, r);
    const __m512i m = _mm512_unpackhi_epi8(r, r);
    // d, dmin of block i are halves 8i and 8i+1 of x.
    const __m256i dd16 = _mm512_castsi512_si256(
        _mm512_permutexvar_epi16(_mm512_zextsi256_si512(_mm256_setr_epi16(0, 1, 8, 9, 16, 17, 24, 25, 0, 0, 0, 0,
                                                                           0, 0, 0, 0)),
                                 x));
    alignas(32) float dd[8];
    _mm256_store_ps(dd, _mm256_cvtph_ps(_mm256_castsi256_si128(dd16)));
    kq_unroll<4>([&]<int I>() {
      o[I].s = _mm256_cvtepu8_epi16(_mm512_extracti32x4_epi32(s, I));
      o[I].m = _mm256_cvtepu8_epi16(_mm512_extracti32x4_epi32(m, I));
      o[I].d = dd[2 * I];
      o[I].c = dd[2 * I + 1];
    });
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

// kq_rounded for a vector: GCC writes the float intrinsics as vector
// arithmetic, which it contracts into FMAs like scalar code.
inline __m512 kq_rounded16(__m512 x) {
  __asm__("" : "+v"(x));
  return x;
}

// ---- Prefill: outer products over 16 tokens.
//
// For 16 or more tokens the activations of each 16-token tile are laid out
// once per call token-minor (KTileBlock): vector k of a super-block holds, in
// lane t, token t's quant bytes 4k..4k+3 made unsigned (+128). A weight dword
// (four unsigned quants u, <= 63 so also valid signed bytes) broadcast from
// memory against that vector advances 16 (row, token) sums by four products in
// one vpdpbusd, with no unpacking per token and no horizontal reduction. Per
// super-block and row:
//   group sums  g_k(t)  = sum_{i in k} u_i (a_i(t) + 128)      (vpdpbusd chains)
//   S(t) = sum_k s_k g_k(t) - 128 sum_k s_k sum_{i in k} u_i  (vpmulld, and one
//          per-row constant computed when the row is unpacked)
//   M(t) = sum_k m_k B_k(t)                                    (vpdpwssd with the
//          activation bsums, also laid out token-minor)
// S and M are the exact integers of dot_kquant_internal.h's identity, and the
// float expression of kq_block_value is applied lane by lane in the same
// order, so the result is bit-identical to the generic kernel's. Weight rows are
// unpacked to bytes (KRows) once per call and pass of kRowsPerPass rows, and
// reused by every token tile.

constexpr int kTileTokens = 16;
constexpr int kRowsPerPass = 4;  // independent vpdpbusd chains in flight

struct KTileBlock {
  alignas(64) uint8_t ua[QK_K / 4][kTileTokens][4];  // a + 128, token-minor
  alignas(64) float d[kTileTokens];
  alignas(64) int16_t bsums[8][kTileTokens][2];  // (B_2j(t), B_2j+1(t))
};

inline void kq_build_ktile(const KqGemmArgs& g, int64_t t0, KTileBlock* out) {
  for (int t = 0; t < kTileTokens; ++t) {
    const uint8_t* row = g.act + size_t(t0 + t) * g.act_stride;
    for (int64_t b = 0; b < g.n / QK_K; ++b) {
      const uint8_t* ab = row + size_t(b) * sizeof(BlockQ8_K);
      KTileBlock& o = out[b];
      o.d[t] = kq_load<float>(ab);
      const uint8_t* qs = ab + offsetof(BlockQ8_K, qs);
      for (int k = 0; k < QK_K / 4; ++k) {
        const uint32_t w = kq_load<uint32_t>(qs + 4 * k) ^ 0x80808080u;
        std::memcpy(o.ua[k][t], &w, 4);
      }
      int16_t bs[16];
      std::memcpy(bs, ab + offsetof(BlockQ8_K, bsums), sizeof(bs));
      for (int j = 0; j < 8; ++j) {
        o.bsums[j][t][0] = bs[2 * j];
        o.bsums[j][t][1] = bs[2 * j + 1];
      }
    }
  }
}

// Q4_K/Q5_K scale 32-element sub-blocks (groups 2j and 2j+1 share s and m):
// one vpmulld per sub-block instead of per group.
template <typename W>
constexpr int kGroupElems = std::is_base_of_v<KqQ4K, W> || std::is_same_v<W, KqQ5K> ? 32 : 16;

struct KRowBlock {
  alignas(64) uint8_t u[QK_K];  // unsigned quants in element order
  int32_t s[16];                // s_k per group (or per sub-block, kGroupElems 32)
  int32_t mpair[8];             // (m_2j, m_2j+1) as one int32 each
  int32_t corr;                 // 128 * sum_k s_k sum_{i in k} u_i
  float d, c;
};

template <typename W>
void kq_unpack_row(const uint8_t* wrow, int64_t n_blocks, KRowBlock* out) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const W w{{wrow + size_t(b) * W::kBytes}};
    KRowBlock& o = out[b];
    KqVecScales sc;
    w.scales(sc);
    o.d = sc.d;
    o.c = sc.c;
    alignas(32) int16_t s16[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(s16), sc.s);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.mpair), sc.m);
    alignas(32) uint64_t sad[8][4];  // byte sums of 8-element quarters of V_m
    kq_unroll<8>([&]<int M>() {
      const __m256i v = w.template quants<M>();
      _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 32 * M), v);
      _mm256_store_si256(reinterpret_cast<__m256i*>(sad[M]), _mm256_sad_epu8(v, _mm256_setzero_si256()));
    });
    int32_t corr = 0;
    for (int k = 0; k < 16; ++k) {
      const int32_t gsum = int32_t(sad[k / 2][2 * (k % 2)] + sad[k / 2][2 * (k % 2) + 1]);
      corr += int32_t(s16[k]) * gsum;
    }
    o.corr = 128 * corr;
    constexpr int kStep = kGroupElems<W> / 16;
    for (int k = 0; k < 16 / kStep; ++k) o.s[k] = s16[k * kStep];
  }
}

template <typename W, int R>
void kq_outer_pass(const KqGemmArgs& g, const KRowBlock* rows, int64_t n_blocks, const KTileBlock* tile, int64_t r0,
                   int64_t t0) {
  constexpr int kDwords = kGroupElems<W> / 4;  // vpdpbusd per group
  __m512 acc[R];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const KTileBlock& tb = tile[b];
    const KRowBlock* rb[R];
    for (int r = 0; r < R; ++r) rb[r] = rows + size_t(r) * size_t(n_blocks) + size_t(b);
    __m512i isum[R];
    for (auto& v : isum) v = _mm512_setzero_si512();
    for (int k = 0; k < QK_K / kGroupElems<W>; ++k) {
      __m512i gs[R];
      for (auto& v : gs) v = _mm512_setzero_si512();
      for (int j = 0; j < kDwords; ++j) {
        const __m512i ua = _mm512_load_si512(tb.ua[k * kDwords + j]);
        for (int r = 0; r < R; ++r)
          gs[r] = _mm512_dpbusd_epi32(gs[r], ua, _mm512_set1_epi32(kq_load<int32_t>(rb[r]->u + 4 * (k * kDwords + j))));
      }
      for (int r = 0; r < R; ++r) isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(gs[r], _mm512_set1_epi32(rb[r]->s[k])));
    }
    const __m512 da = _mm512_load_ps(tb.d);
    for (int r = 0; r < R; ++r) {
      const __m512i S = _mm512_sub_epi32(isum[r], _mm512_set1_epi32(rb[r]->corr));
      __m512i M = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j)
        M = _mm512_dpwssd_epi32(M, _mm512_set1_epi32(rb[r]->mpair[j]), _mm512_load_si512(tb.bsums[j]));
      // kq_block_value, lane by lane.
      __m512 v;
      if constexpr (W::kOffset) {
        v = _mm512_mul_ps(da, kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(rb[r]->d),
                                                         _mm512_cvtepi32_ps(_mm512_sub_epi32(S, M)))));
      } else {
        const __m512 ds = kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(rb[r]->d), _mm512_cvtepi32_ps(S)));
        const __m512 dm = kq_rounded16(_mm512_mul_ps(_mm512_set1_ps(rb[r]->c), _mm512_cvtepi32_ps(M)));
        v = _mm512_mul_ps(da, _mm512_sub_ps(ds, dm));
      }
      acc[r] = _mm512_add_ps(acc[r], kq_rounded16(v));
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(64) float res[kTileTokens];
    _mm512_store_ps(res, acc[r]);
    for (int t = 0; t < kTileTokens; ++t) g.out[size_t(t0 + t) * g.out_stride + size_t(r0 + r)] = res[t];
  }
}

template <typename W>
void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
          int64_t n_tokens, float* out, size_t out_stride) {
  if (n_tokens < kTileTokens) {
    kq_gemm<Kernel<W>::template Tile, 4, 8>(n, w, w_stride, n_rows, act, act_stride, n_tokens, out, out_stride);
    return;
  }
  const KqGemmArgs g{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act), act_stride,
                     out, out_stride};
  const int64_t n_tiles = n_tokens / kTileTokens;
  const int64_t n_blocks = n / QK_K;
  thread_local std::vector<KTileBlock> tiles;
  thread_local std::vector<KRowBlock> rows;
  tiles.resize(size_t(n_tiles * n_blocks));
  rows.resize(size_t(kRowsPerPass * n_blocks));
  for (int64_t i = 0; i < n_tiles; ++i) kq_build_ktile(g, kTileTokens * i, tiles.data() + i * n_blocks);
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRowsPerPass) {
    const int nr = int(std::min<int64_t>(kRowsPerPass, n_rows - r0));
    for (int r = 0; r < nr; ++r) kq_unpack_row<W>(g.w + size_t(r0 + r) * w_stride, n_blocks, rows.data() + r * n_blocks);
    for (int64_t i = 0; i < n_tiles; ++i) {
      const KTileBlock* tile = tiles.data() + i * n_blocks;
      const int64_t t0 = kTileTokens * i;
      switch (nr) {
        case 4: kq_outer_pass<W, 4>(g, rows.data(), n_blocks, tile, r0, t0); break;
        case 3: kq_outer_pass<W, 3>(g, rows.data(), n_blocks, tile, r0, t0); break;
        case 2: kq_outer_pass<W, 2>(g, rows.data(), n_blocks, tile, r0, t0); break;
        default: kq_outer_pass<W, 1>(g, rows.data(), n_blocks, tile, r0, t0); break;
      }
    }
  }
  if (const int64_t rest = n_tokens - kTileTokens * n_tiles; rest > 0) {
    kq_gemm<Kernel<W>::template Tile, 4, 8>(n, w, w_stride, n_rows, g.act + size_t(kTileTokens * n_tiles) * act_stride,
                                             act_stride, rest, out + size_t(kTileTokens * n_tiles) * out_stride, out_stride);
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
