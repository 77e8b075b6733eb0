// Private to the AVX-512 K-quant translation units (dot_avx512_kquant.cpp and
// dot_avx512_kquant_interleaved.cpp, both compiled with the AVX-512 flags):
// the 512-bit quant producers of Q4_K/Q6_K and the outer-product prefill
// kernel, which runs on rows of the file layout and on rows unpacked from the
// interleaved one. Internal linkage throughout (see dot_kquant_internal.h);
// the interleaved kernels are reached through the declarations at the end.
#pragma once

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
}  // namespace

namespace detail {
// The row-interleaved Q4_K/Q6_K kernels (dot_avx512_kquant_interleaved.cpp):
// DotKernel's gemm_interleaved and interleave_group.
void avx512_q4k_gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                                 int64_t n_tokens, float* out, size_t out_stride);
void avx512_q6k_gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                                 int64_t n_tokens, float* out, size_t out_stride);
void avx512_q4k_interleave_group(int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst);
void avx512_q6k_interleave_group(int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst);
}  // namespace detail

}  // namespace dhi::kernels::cpu
