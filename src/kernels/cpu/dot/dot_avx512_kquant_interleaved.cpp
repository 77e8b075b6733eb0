// AVX-512 + VNNI kernels on the row-interleaved Q4_K/Q6_K layout
// (interleave.h): decode and small batches (the group kernels), prefill (the
// outer-product kernel of dot_avx512_kquant_internal.h on rows unpacked 16 at
// a time from the interleaved columns), and the vectorised interleaving the
// model loader runs. Compiled with the AVX-512 F/BW/DQ/VL/VNNI flags.
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_avx512_kquant_internal.h"
#include "kernels/cpu/dot/interleave.h"
#include "kernels/cpu/dot/transpose_avx512.h"

namespace dhi::kernels::cpu {
namespace {

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
// No software prefetch: a group is one sequential stream of columns, which
// the hardware prefetchers follow. Prefetching two or eight columns ahead
// (one prefetcht1 per line) made whole-model Q4_K_M decode slower, not
// faster: 34-36 tok/s against 41-45 without, alternating in one locked run
// (1.5B shape, 2 threads, ~60 GB/s read bandwidth).

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

// The 6-bit values of line triple (h, i), as bytes 0..63: u[m] holds element
// run m (low nibble from the ql lines, high bit pair from the qh line). Each
// u is one vpternlogd bit select (bits 0-3 from the ql side, 4-7 from the qh
// side) of operands that need no mask of their own: the qh line masked once
// to bit pairs 0 and 2 (0x33) or 1 and 3 (0xcc) and shifted in 16-bit lanes
// has bits 6-7 zero and junk only in bits 0-3, which the select drops, as it
// drops bits 4-7 of the ql side. 11 vector operations instead of 13 (with the
// masks on every term): the L2-resident Q6_K decode rate rose from 33-42 to
// 47-57 GB/s on one Zen 4 core (decode_l2/Q6_K).
inline void q6k_unpack(const uint8_t* col, int h, int i, __m512i u[4]) {
  const __m512i mhi = _mm512_set1_epi8(char(0xf0));
  // mhi ? bits : lo, bit by bit.
  const auto pick = [&](__m512i lo, __m512i bits) { return _mm512_ternarylogic_epi32(mhi, bits, lo, 0xca); };
  const __m512i hb = load512(q6k_line(col, h, i, 0));
  const __m512i la = load512(q6k_line(col, h, i, 1));
  const __m512i lb = load512(q6k_line(col, h, i, 2));
  const __m512i h02 = _mm512_and_si512(hb, _mm512_set1_epi8(0x33));
  const __m512i h13 = _mm512_and_si512(hb, _mm512_set1_epi8(char(0xcc)));
  u[0] = pick(la, _mm512_slli_epi16(h02, 4));
  u[1] = pick(lb, _mm512_slli_epi16(h13, 2));
  u[2] = pick(_mm512_srli_epi16(la, 4), h02);
  u[3] = pick(_mm512_srli_epi16(lb, 4), _mm512_srli_epi16(h13, 2));
}

template <int T>
void q6k_group(const uint8_t* grp, int64_t n_blocks, const uint8_t* const* arow, __m512* acc) {
  constexpr size_t kColumn = kInterleaveRows * sizeof(BlockQ6_K);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kColumn;
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
        __m512i u[4];
        q6k_unpack(col, h, i, u);
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
        __m512i u[4];
        q6k_unpack(col, h, i, u);
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

}  // namespace

namespace detail {
void avx512_q4k_gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                                 int64_t n_tokens, float* out, size_t out_stride) {
  gemm_interleaved<Q4K512>(n, w, n_groups, act, act_stride, n_tokens, out, out_stride);
}
void avx512_q6k_gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                                 int64_t n_tokens, float* out, size_t out_stride) {
  gemm_interleaved<Q6K512>(n, w, n_groups, act, act_stride, n_tokens, out, out_stride);
}
void avx512_q4k_interleave_group(int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst) {
  interleave_group_fast<Q4K512>(n, src, src_stride, dst);
}
void avx512_q6k_interleave_group(int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst) {
  interleave_group_fast<Q6K512>(n, src, src_stride, dst);
}
}  // namespace detail

}  // namespace dhi::kernels::cpu
