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
// -Wmaybe-uninitialized reports at every inlined use (and the unpack
// intrinsics of the transposes below as -Wuninitialized); the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/dot/dot_kquant_internal.h"
#include "kernels/cpu/dot/interleave.h"

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
  static constexpr TensorType kType = TensorType::Q4_K;
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
  static constexpr TensorType kType = TensorType::Q6_K;
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

// The outer-product prefill over whole 16-token tiles. unpack(r0, nr) returns
// rows r0..r0+nr-1 unpacked ([row][block], n/256 blocks a row; r0 a multiple
// of kRowsPerPass). Returns the tokens done (a multiple of 16).
template <typename W, typename Unpack>
int64_t outer_gemm(const KqGemmArgs& g, int64_t n_rows, int64_t n_tokens, Unpack&& unpack) {
  const int64_t n_tiles = n_tokens / kTileTokens;
  const int64_t n_blocks = g.n / QK_K;
  thread_local std::vector<KTileBlock> tiles;
  tiles.resize(size_t(n_tiles * n_blocks));
  for (int64_t i = 0; i < n_tiles; ++i) kq_build_ktile(g, kTileTokens * i, tiles.data() + i * n_blocks);
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRowsPerPass) {
    const int nr = int(std::min<int64_t>(kRowsPerPass, n_rows - r0));
    const KRowBlock* rows = unpack(r0, nr);
    for (int64_t i = 0; i < n_tiles; ++i) {
      const KTileBlock* tile = tiles.data() + i * n_blocks;
      const int64_t t0 = kTileTokens * i;
      switch (nr) {
        case 4: kq_outer_pass<W, 4>(g, rows, n_blocks, tile, r0, t0); break;
        case 3: kq_outer_pass<W, 3>(g, rows, n_blocks, tile, r0, t0); break;
        case 2: kq_outer_pass<W, 2>(g, rows, n_blocks, tile, r0, t0); break;
        default: kq_outer_pass<W, 1>(g, rows, n_blocks, tile, r0, t0); break;
      }
    }
  }
  return kTileTokens * n_tiles;
}

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

// ---- Decode on the row-interleaved layout (interleave.h).
//
// Lane r of every vector below is row r of the group. Per super-block column,
// each 64-byte load holds one quant unit (4 bytes) of all 16 rows, and
// vpdpbusd against the activation dword of those 4 elements, broadcast from
// memory, adds their 4 products to each row's lane: 64 such steps cover 16
// rows x 256 weights with no horizontal sums and no per-row shuffles. The
// group-scale products are vpmulld on whole lanes and the min/offset term a
// vpdpwssd per scale with a broadcast activation bsum, so each lane ends with
// the exact integers S and M of dot_kquant_internal.h and the float finish is
// the kq_block_value expression lane by lane: bit-identical to the generic
// kernel. T tokens (1..4) share every weight load and mask.

constexpr int kGroupTokens = 4;
// Software prefetch distance in super-block columns. A column's loads jump
// between its fields (Q6_K: ql, qh, scales), which the hardware prefetchers
// follow poorly: without this, Q6_K decode from DRAM ran at half the rate of
// the file layout. Two columns (4.5-6.6 KB) cover the memory latency at the
// rate one core consumes them.
constexpr size_t kAheadColumns = 2;

inline __m512i bcast32(const uint8_t* p) { return _mm512_set1_epi32(kq_load<int32_t>(p)); }

// The Q8_K bsums of one block as group-pair sums B_2j + B_2j+1 (Q4_K's
// 32-element sub-blocks), j = 0..7.
inline void k4_pair_bsums(const uint8_t* ab, int32_t* out) {
  const __m256i s = _mm256_madd_epi16(kq_load256(ab + offsetof(BlockQ8_K, bsums)), _mm256_set1_epi16(1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s);
}

// Q4_K column (16 x 144 bytes): d[16], dmin[16] at 0 and 32 (fp16), scale byte
// k of row r at 64 + 16k + r, qs unit u (bytes 4u..4u+3) at 256 + 64u.
// qs unit 8c + i holds elements 64c + 4i.. (low nibbles, sub-block 2c) and
// 64c + 32 + 4i.. (high nibbles, sub-block 2c + 1). The high nibbles are used
// in place, as 16 u (masking without a shift): their sums are 16x, so the
// odd sub-blocks' products are added to the even ones' times 16, and the float
// scale d / 16 (exact) undoes it: d/16 * float(16 S) == d * float(S) bit for bit.
template <int T>
void q4k_group(const uint8_t* grp, int64_t n_blocks, const uint8_t* const* arow, __m512* acc) {
  constexpr size_t kColumn = kInterleaveRows * sizeof(BlockQ4_K);
  const __m512i m0f = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8(char(0xf0));
  const __m512i m3f = _mm512_set1_epi8(0x3f), m30 = _mm512_set1_epi8(0x30);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kColumn;
    kq_prefetch<kColumn>(col, kAheadColumns * kColumn);
    // The 6-bit scales and mins of blocks_k.h, 64 bytes (4 sub-blocks x 16
    // rows) at a time: z0 = bytes 0-3, z1 = 4-7, z2 = 8-11 of every row.
    const __m512i z0 = load512(col + 64), z1 = load512(col + 128), z2 = load512(col + 192);
    alignas(64) uint8_t sm[4][64];  // s_0-3, s_4-7, m_0-3, m_4-7
    _mm512_store_si512(sm[0], _mm512_and_si512(z0, m3f));
    _mm512_store_si512(sm[1], _mm512_or_si512(_mm512_and_si512(z2, m0f),
                                              _mm512_and_si512(_mm512_srli_epi16(z0, 2), m30)));
    _mm512_store_si512(sm[2], _mm512_and_si512(z1, m3f));
    _mm512_store_si512(sm[3], _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(z2, 4), m0f),
                                              _mm512_and_si512(_mm512_srli_epi16(z1, 2), m30)));
    const auto lanes = [&](int row, int j) {
      return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sm[row + j / 4] + 16 * (j % 4))));
    };
    const uint8_t* qs[T];
    int32_t bsum[T][8];
    for (int t = 0; t < T; ++t) {
      const uint8_t* ab = arow[t] + size_t(b) * sizeof(BlockQ8_K);
      qs[t] = ab + offsetof(BlockQ8_K, qs);
      k4_pair_bsums(ab, bsum[t]);
    }
    __m512i tlo[T], thi[T];
    for (int t = 0; t < T; ++t) tlo[t] = thi[t] = _mm512_setzero_si512();
    kq_unroll<4>([&]<int C>() {
      __m512i lo[T], hi[T];
      for (int t = 0; t < T; ++t) lo[t] = hi[t] = _mm512_setzero_si512();
      for (int i = 0; i < 8; ++i) {
        const __m512i w = load512(col + 256 + 64 * (8 * C + i));
        const __m512i wl = _mm512_and_si512(w, m0f), wh = _mm512_and_si512(w, mf0);
        for (int t = 0; t < T; ++t) {
          lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast32(qs[t] + 64 * C + 4 * i));
          hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast32(qs[t] + 64 * C + 32 + 4 * i));
        }
      }
      const __m512i slo = lanes(0, 2 * C), shi = lanes(0, 2 * C + 1);
      for (int t = 0; t < T; ++t) {
        tlo[t] = _mm512_add_epi32(tlo[t], _mm512_mullo_epi32(lo[t], slo));
        thi[t] = _mm512_add_epi32(thi[t], _mm512_mullo_epi32(hi[t], shi));
      }
    });
    const __m512 d16 = _mm512_mul_ps(_mm512_cvtph_ps(kq_load256(col)), _mm512_set1_ps(1.0f / 16.0f));
    const __m512 dmin = _mm512_cvtph_ps(kq_load256(col + 32));
    __m512i mins[T];
    for (int t = 0; t < T; ++t) mins[t] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      // (m_j, 0) int16 pairs against the broadcast pair sum: m_j * B (|B| < 2^15).
      const __m512i m = lanes(2, j);
      for (int t = 0; t < T; ++t) mins[t] = _mm512_dpwssd_epi32(mins[t], m, _mm512_set1_epi32(bsum[t][j]));
    }
    for (int t = 0; t < T; ++t) {
      const __m512i s16 = _mm512_add_epi32(_mm512_slli_epi32(tlo[t], 4), thi[t]);
      const __m512 ds = kq_rounded16(_mm512_mul_ps(d16, _mm512_cvtepi32_ps(s16)));
      const __m512 dm = kq_rounded16(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mins[t])));
      const __m512 da = _mm512_set1_ps(kq_load<float>(arow[t] + size_t(b) * sizeof(BlockQ8_K)));
      acc[t] = _mm512_add_ps(acc[t], kq_rounded16(_mm512_mul_ps(da, _mm512_sub_ps(ds, dm))));
    }
  }
}

// Q6_K column (16 x 210 bytes), in reading order: d[16] (fp16) at 0, scale
// pair p (s_2p, s_2p+1) of row r at 32 + 32p + 2r, then for j = 8h + i (half
// h, i = 0..7) three lines at 288 + 192j: qh bytes 32h + 4i.., ql bytes
// 64h + 4i.., ql bytes 64h + 32 + 4i... The first ql line holds elements
// 128h + 4i.. (low nibbles) and 128h + 64 + 4i.. (high), the second 128h + 32
// + 4i.. and 128h + 96 + 4i..; the qh line the high bit pairs of those four
// element runs (bits 0-1, 2-3, 4-5, 6-7). Elements 4i.. of a 128-run fall in
// group i / 4 of it, so a pass over i = 4q..4q+3 fills groups 8h + q + {0, 2,
// 4, 6}.
constexpr size_t kQ6Scales = 32, kQ6Quants = 288;
template <typename Byte>  // const uint8_t or uint8_t
inline Byte* q6k_line(Byte* col, int h, int i, int slot) {
  return col + kQ6Quants + 192 * (8 * h + i) + 64 * slot;
}

template <int T>
void q6k_group(const uint8_t* grp, int64_t n_blocks, const uint8_t* const* arow, __m512* acc) {
  constexpr size_t kColumn = kInterleaveRows * sizeof(BlockQ6_K);
  const __m512i m0f = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  // (a & 0x0f) | b for b without low bits: vpternlogd with c = 0x0f.
  const auto merge = [&](__m512i a, __m512i bits) { return _mm512_ternarylogic_epi32(a, bits, m0f, 0xec); };
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kColumn;
    kq_prefetch<kColumn>(col, kAheadColumns * kColumn);
    const uint8_t* qs[T];
    for (int t = 0; t < T; ++t) qs[t] = arow[t] + size_t(b) * sizeof(BlockQ8_K) + offsetof(BlockQ8_K, qs);
    __m512i sp[8];  // (s_2p, s_2p+1) int16 pairs per lane
    for (int p = 0; p < 8; ++p) sp[p] = _mm512_cvtepi8_epi16(kq_load256(col + kQ6Scales + 32 * p));
    __m512i sum[T], mins[T];
    for (int t = 0; t < T; ++t) sum[t] = mins[t] = _mm512_setzero_si512();
    kq_unroll<4>([&]<int HQ>() {
      constexpr int h = HQ / 2, q = HQ % 2;
      __m512i g[4][T];
      for (auto& row : g)
        for (auto& v : row) v = _mm512_setzero_si512();
      for (int i = 4 * q; i < 4 * q + 4; ++i) {
        const __m512i hb = load512(q6k_line(col, h, i, 0));
        const __m512i la = load512(q6k_line(col, h, i, 1));
        const __m512i lb = load512(q6k_line(col, h, i, 2));
        const __m512i u[4] = {
            merge(la, _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30)),
            merge(lb, _mm512_and_si512(_mm512_slli_epi16(hb, 2), m30)),
            merge(_mm512_srli_epi16(la, 4), _mm512_and_si512(hb, m30)),
            merge(_mm512_srli_epi16(lb, 4), _mm512_and_si512(_mm512_srli_epi16(hb, 2), m30)),
        };
        for (int m = 0; m < 4; ++m)
          for (int t = 0; t < T; ++t)
            g[m][t] = _mm512_dpbusd_epi32(g[m][t], u[m], bcast32(qs[t] + 128 * h + 32 * m + 4 * i));
      }
      for (int m = 0; m < 4; ++m) {
        // group 8h + q + 2m: pair 4h + m, its low (q = 0) or high (q = 1) scale.
        const __m512i pair = sp[4 * h + m];
        const __m512i s = q ? _mm512_srai_epi32(pair, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
        for (int t = 0; t < T; ++t) sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(g[m][t], s));
      }
    });
    for (int t = 0; t < T; ++t) {
      const uint8_t* bs = arow[t] + size_t(b) * sizeof(BlockQ8_K) + offsetof(BlockQ8_K, bsums);
      for (int p = 0; p < 8; ++p) mins[t] = _mm512_dpwssd_epi32(mins[t], sp[p], bcast32(bs + 4 * p));
    }
    const __m512 d = _mm512_cvtph_ps(kq_load256(col));
    for (int t = 0; t < T; ++t) {
      // m_k = 32 s_k: the -32 offset of every quant.
      const __m512i s = _mm512_sub_epi32(sum[t], _mm512_slli_epi32(mins[t], 5));
      const __m512 da = _mm512_set1_ps(kq_load<float>(arow[t] + size_t(b) * sizeof(BlockQ8_K)));
      acc[t] = _mm512_add_ps(acc[t], kq_rounded16(_mm512_mul_ps(da, kq_rounded16(_mm512_mul_ps(d, _mm512_cvtepi32_ps(s))))));
    }
  }
}

template <typename W>
struct GroupKernel;
template <>
struct GroupKernel<Q4K512> {
  template <int T>
  static void run(const uint8_t* g, int64_t nb, const uint8_t* const* a, __m512* acc) { q4k_group<T>(g, nb, a, acc); }
};
template <>
struct GroupKernel<Q6K512> {
  template <int T>
  static void run(const uint8_t* g, int64_t nb, const uint8_t* const* a, __m512* acc) { q6k_group<T>(g, nb, a, acc); }
};

template <typename W, int T>
void group_tokens(const uint8_t* grp, int64_t n_blocks, const uint8_t* act, size_t act_stride, int64_t t0,
                  float* out, size_t out_stride) {
  const uint8_t* arow[T];
  __m512 acc[T];
  for (int t = 0; t < T; ++t) {
    arow[t] = act + size_t(t0 + t) * act_stride;
    acc[t] = _mm512_setzero_ps();
  }
  GroupKernel<W>::template run<T>(grp, n_blocks, arow, acc);
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + size_t(t0 + t) * out_stride, acc[t]);
}

// Transposes 16 x 16 dwords in place: v[i] lane j <-> v[j] lane i.
inline void transpose16x16_epi32(__m512i* v) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // v[4a + b] now holds, in 128-bit lane L, column 4L + b of rows 4a..4a+3;
  // column c = 4L + b gathers lane L of v[b], v[4 + b], v[8 + b], v[12 + b].
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    v[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    v[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// interleave.h's interleave_group for the two layouts: the 4-byte units (most
// of the bytes) by the transpose (16 rows' 64-byte runs -> 16 lines), the few
// small ones by plain copies.
template <typename Line>
inline void tangle_units16(const uint8_t* src, size_t stride, Line&& line) {
  __m512i v[16];
  for (int r = 0; r < 16; ++r) v[r] = load512(src + size_t(r) * stride);
  transpose16x16_epi32(v);
  for (int u = 0; u < 16; ++u) _mm512_storeu_si512(line(u), v[u]);
}

template <typename W>
void interleave_group_fast(int64_t n, const uint8_t* src, size_t stride, uint8_t* dst) {
  constexpr size_t kColumn = kInterleaveRows * W::kBytes;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const uint8_t* blk = src + size_t(b) * W::kBytes;
    uint8_t* col = dst + size_t(b) * kColumn;
    if constexpr (W::kType == TensorType::Q4_K) {
      for (int half = 0; half < 2; ++half)
        tangle_units16(blk + offsetof(BlockQ4_K, qs) + 64 * half, stride,
                       [&](int u) { return col + 256 + 64 * (16 * half + u); });
      for (int r = 0; r < kInterleaveRows; ++r) {
        const uint8_t* row = blk + size_t(r) * stride;
        std::memcpy(col + 2 * r, row, 2);
        std::memcpy(col + 32 + 2 * r, row + 2, 2);
        for (int k = 0; k < K_SCALE_SIZE; ++k) col[64 + 16 * k + r] = row[4 + k];
      }
    } else {
      for (int h = 0; h < 2; ++h)
        tangle_units16(blk + offsetof(BlockQ6_K, ql) + 64 * h, stride,
                       [&](int u) { return q6k_line(col, h, u % 8, 1 + u / 8); });
      tangle_units16(blk + offsetof(BlockQ6_K, qh), stride,
                     [&](int u) { return q6k_line(col, u / 8, u % 8, 0); });
      for (int r = 0; r < kInterleaveRows; ++r) {
        const uint8_t* row = blk + size_t(r) * stride;
        std::memcpy(col + 2 * r, row + offsetof(BlockQ6_K, d), 2);
        for (int p = 0; p < 8; ++p) std::memcpy(col + kQ6Scales + 32 * p + 2 * r, row + offsetof(BlockQ6_K, scales) + 2 * p, 2);
      }
    }
  }
}

// Prefill on interleaved weights: kq_unpack_row's result for the 16 rows of a
// group straight from each super-block column, with the decode kernels'
// unpacking (16 rows per instruction). The unsigned quants are made per line
// (16 rows x 4 elements) and transposed into each row's element order; the
// group sums for corr are vpdpbusd against ones on the same lines, lane = row.
// The same integers as kq_unpack_row, so prefill results do not depend on the
// layout. out: 16 rows x n_blocks ([row][block]).
inline __m512i lane_sums(__m512i acc, __m512i u) { return _mm512_dpbusd_epi32(acc, u, _mm512_set1_epi8(1)); }

inline void store_rows_u(__m512i* v, KRowBlock* out, int64_t n_blocks, int chunk) {
  transpose16x16_epi32(v);
  for (int r = 0; r < kInterleaveRows; ++r) _mm512_store_si512(out[size_t(r) * size_t(n_blocks)].u + 64 * chunk, v[r]);
}

void unpack_group(const Q4K512*, const uint8_t* grp, int64_t n_blocks, KRowBlock* out) {
  constexpr size_t kColumn = kInterleaveRows * sizeof(BlockQ4_K);
  const __m512i m0f = _mm512_set1_epi8(0x0f), m3f = _mm512_set1_epi8(0x3f), m30 = _mm512_set1_epi8(0x30);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kColumn;
    KRowBlock* o = out + b;
    const __m512i z0 = load512(col + 64), z1 = load512(col + 128), z2 = load512(col + 192);
    alignas(64) uint8_t sm[4][64];  // s_0-3, s_4-7, m_0-3, m_4-7: byte 16 * (j % 4) + r
    _mm512_store_si512(sm[0], _mm512_and_si512(z0, m3f));
    _mm512_store_si512(sm[1], _mm512_or_si512(_mm512_and_si512(z2, m0f),
                                              _mm512_and_si512(_mm512_srli_epi16(z0, 2), m30)));
    _mm512_store_si512(sm[2], _mm512_and_si512(z1, m3f));
    _mm512_store_si512(sm[3], _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(z2, 4), m0f),
                                              _mm512_and_si512(_mm512_srli_epi16(z1, 2), m30)));
    __m512i corr = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      __m512i v[16], lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
      for (int i = 0; i < 8; ++i) {
        const __m512i w = load512(col + 256 + 64 * (8 * c + i));
        v[i] = _mm512_and_si512(w, m0f);
        v[8 + i] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m0f);
        lo = lane_sums(lo, v[i]);
        hi = lane_sums(hi, v[8 + i]);
      }
      const auto s = [&](int j) {
        return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sm[j / 4] + 16 * (j % 4))));
      };
      corr = _mm512_add_epi32(corr, _mm512_add_epi32(_mm512_mullo_epi32(lo, s(2 * c)), _mm512_mullo_epi32(hi, s(2 * c + 1))));
      store_rows_u(v, o, n_blocks, c);
    }
    alignas(64) int32_t corr_r[16];
    _mm512_store_si512(corr_r, _mm512_slli_epi32(corr, 7));
    alignas(64) float d[16], dmin[16];
    _mm512_store_ps(d, _mm512_cvtph_ps(kq_load256(col)));
    _mm512_store_ps(dmin, _mm512_cvtph_ps(kq_load256(col + 32)));
    for (int r = 0; r < kInterleaveRows; ++r) {
      KRowBlock& k = o[size_t(r) * size_t(n_blocks)];
      for (int j = 0; j < 8; ++j) {
        k.s[j] = sm[j / 4][16 * (j % 4) + r];
        const int32_t m = sm[2 + j / 4][16 * (j % 4) + r];
        k.mpair[j] = m | m << 16;
      }
      k.corr = corr_r[r];
      k.d = d[r];
      k.c = dmin[r];
    }
  }
}

void unpack_group(const Q6K512*, const uint8_t* grp, int64_t n_blocks, KRowBlock* out) {
  constexpr size_t kColumn = kInterleaveRows * sizeof(BlockQ6_K);
  const __m512i m0f = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const auto merge = [&](__m512i a, __m512i bits) { return _mm512_ternarylogic_epi32(a, bits, m0f, 0xec); };
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kColumn;
    KRowBlock* o = out + b;
    __m512i gsum[16];  // per group k = 8h + 2m + i / 4, lane = row
    for (auto& g : gsum) g = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      // Row dwords 32h + 8m + i hold u_m of line triple i: chunk 2h gets
      // u_0, u_1 (i = 0..7 each), chunk 2h + 1 gets u_2, u_3.
      __m512i v[2][16];
      for (int i = 0; i < 8; ++i) {
        const __m512i hb = load512(q6k_line(col, h, i, 0));
        const __m512i la = load512(q6k_line(col, h, i, 1));
        const __m512i lb = load512(q6k_line(col, h, i, 2));
        const __m512i u[4] = {
            merge(la, _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30)),
            merge(lb, _mm512_and_si512(_mm512_slli_epi16(hb, 2), m30)),
            merge(_mm512_srli_epi16(la, 4), _mm512_and_si512(hb, m30)),
            merge(_mm512_srli_epi16(lb, 4), _mm512_and_si512(_mm512_srli_epi16(hb, 2), m30)),
        };
        for (int m = 0; m < 4; ++m) {
          v[m / 2][8 * (m % 2) + i] = u[m];
          gsum[8 * h + 2 * m + i / 4] = lane_sums(gsum[8 * h + 2 * m + i / 4], u[m]);
        }
      }
      store_rows_u(v[0], o, n_blocks, 2 * h);
      store_rows_u(v[1], o, n_blocks, 2 * h + 1);
    }
    __m512i corr = _mm512_setzero_si512();
    alignas(64) int16_t pairs[8][32];  // (s_2p, s_2p+1) of row r at [p][2r]
    for (int p = 0; p < 8; ++p) {
      const __m512i sp = _mm512_cvtepi8_epi16(kq_load256(col + kQ6Scales + 32 * p));
      _mm512_store_si512(pairs[p], sp);
      corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(gsum[2 * p], _mm512_srai_epi32(_mm512_slli_epi32(sp, 16), 16)));
      corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(gsum[2 * p + 1], _mm512_srai_epi32(sp, 16)));
    }
    alignas(64) int32_t corr_r[16];
    _mm512_store_si512(corr_r, _mm512_slli_epi32(corr, 7));
    alignas(64) float d[16];
    _mm512_store_ps(d, _mm512_cvtph_ps(kq_load256(col)));
    for (int r = 0; r < kInterleaveRows; ++r) {
      KRowBlock& k = o[size_t(r) * size_t(n_blocks)];
      for (int p = 0; p < 8; ++p) {
        const int32_t s0 = pairs[p][2 * r], s1 = pairs[p][2 * r + 1];
        k.s[2 * p] = s0;
        k.s[2 * p + 1] = s1;
        k.mpair[p] = int32_t(uint32_t(uint16_t(int16_t(32 * s0))) | uint32_t(uint16_t(int16_t(32 * s1))) << 16);
      }
      k.corr = corr_r[r];
      k.d = d[r];
      k.c = d[r];
    }
  }
}

template <typename W>
void gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                      int64_t n_tokens, float* out, size_t out_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(act);
  const int64_t n_blocks = n / QK_K;
  const size_t group_bytes = size_t(kInterleaveRows) * size_t(n_blocks) * W::kBytes;
  int64_t done = 0;
  if (n_tokens >= kTileTokens) {
    // Prefill: the outer-product kernel, its rows unpacked 16 at a time
    // straight from their group.
    thread_local std::vector<KRowBlock> rows;
    rows.resize(size_t(kInterleaveRows * n_blocks));
    const KqGemmArgs g{n, wb, 0, ab, act_stride, out, out_stride};
    done = outer_gemm<W>(g, kInterleaveRows * n_groups, n_tokens, [&](int64_t r0, int) {
      if (r0 % kInterleaveRows == 0) unpack_group(static_cast<const W*>(nullptr), wb + size_t(r0 / kInterleaveRows) * group_bytes, n_blocks, rows.data());
      return rows.data() + size_t(r0 % kInterleaveRows) * size_t(n_blocks);
    });
  }
  for (int64_t grp = 0; grp < n_groups; ++grp) {
    const uint8_t* gw = wb + size_t(grp) * group_bytes;
    float* go = out + size_t(grp) * kInterleaveRows;
    int64_t t = done;
    for (; t + kGroupTokens <= n_tokens; t += kGroupTokens)
      group_tokens<W, kGroupTokens>(gw, n_blocks, ab, act_stride, t, go, out_stride);
    switch (n_tokens - t) {
      case 3: group_tokens<W, 3>(gw, n_blocks, ab, act_stride, t, go, out_stride); break;
      case 2: group_tokens<W, 2>(gw, n_blocks, ab, act_stride, t, go, out_stride); break;
      case 1: group_tokens<W, 1>(gw, n_blocks, ab, act_stride, t, go, out_stride); break;
      default: break;
    }
  }
}

void quantize_act(const float* x, void* out, int64_t n) { kq_quantize_q8_k_avx2(x, out, n); }

constexpr DotKernel kQ2K{TensorType::Q8_K, &quantize_act, &gemm<KqQ2K>};
constexpr DotKernel kQ3K{TensorType::Q8_K, &quantize_act, &gemm<KqQ3K>};
constexpr DotKernel kQ4K{TensorType::Q8_K, &quantize_act, &gemm<Q4K512>, &gemm_interleaved<Q4K512>,
                         &interleave_group_fast<Q4K512>};
constexpr DotKernel kQ5K{TensorType::Q8_K, &quantize_act, &gemm<KqQ5K>};
constexpr DotKernel kQ6K{TensorType::Q8_K, &quantize_act, &gemm<Q6K512>, &gemm_interleaved<Q6K512>,
                         &interleave_group_fast<Q6K512>};

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
