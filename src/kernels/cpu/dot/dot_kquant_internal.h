// Private to the K-quant dot kernels (dot_*_kquant.cpp): the arithmetic every
// ISA shares and the row x token tile driver.
//
// One identity covers all five K types. For a super-block of 256 weights and a
// Q8_K activation block (scale da, quants a_i, bsums B_k over 16-element groups):
//
//   dot = da * ( d * sum_k s_k * sum_{i in k} u_i * a_i  -  c * sum_k m_k * B_k )
//
// with u_i the *unsigned* quant (0..3, 0..7, 0..15, 0..31, 0..63) and k over the
// sixteen 16-element groups (Q4_K/Q5_K's 32-element sub-blocks are two groups
// with the same scale):
//   Q2_K: s = scales&15, m = scales>>4,        c = dmin
//   Q3_K: s = 6-bit scale - 32, m = 4*s,       c = d   (q = u - 4)
//   Q4_K/Q5_K: s/m = the 6-bit scale/min,      c = dmin
//   Q6_K: s = the int8 scale, m = 32*s,        c = d   (q = u - 32)
// Keeping u unsigned is what lets x86's u8 x s8 multiply-adds (vpmaddubsw,
// vpdpbusd) consume the weights directly; the offsets of Q3_K/Q6_K and the mins
// of the affine types become one short dot of m_k with the activation's bsums.
// Every integer sum above is exact in int32 (largest: Q6_K, |sum| < 4.0e8).
// Every kernel reduces a super-block to the two exact integers S = sum_k s_k
// (u.a)_k and M = sum_k m_k B_k before touching floats, and then adds
//   kq_block_value(...) = da * (d * S - c * M)     (affine: c = dmin)
//                       = da * (d * (S - M))       (offset types: one rounding)
// to an accumulator in block order. The SIMD kernels therefore return
// bit-for-bit what the generic kernel returns (the tests check this), and a
// block of zero weights (Q6_K quants all 32) gives exactly 0, not the
// difference of two rounded products. The price is a horizontal integer
// reduction per super-block, done for four (row, token) pairs at once with
// three vphaddd (kq_finish_block), so it costs a few instructions per pair
// against the ~50 that unpack and multiply the block.
//
// Everything here has internal linkage (anonymous namespace): the header is
// included by translation units compiled with different ISA flags, and an inline
// function with external linkage could be merged by the linker into the AVX-512
// copy and then run on a CPU without AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <limits>
#include <utility>

#include "quant/blocks_k.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace dhi::kernels::cpu {
namespace {

// Rows of a mapped GGUF file start at any byte offset and K blocks are 84..210
// bytes, so every field is read with memcpy (or an unaligned vector load).
template <typename T>
inline T kq_load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K block as two 64-bit words (byte
// j = sub-block j), with the byte-wise packing of blocks_k.h done four bytes
// at a time on 32-bit words. Returned in registers, not through memory: a
// 64-bit load of two 32-bit stores would miss store-to-load forwarding.
struct KqK4Scales {
  uint64_t sc, m;
};
inline KqK4Scales kq_unpack_k4_scales(const uint8_t* packed) {
  const uint32_t w0 = kq_load<uint32_t>(packed);
  const uint32_t w1 = kq_load<uint32_t>(packed + 4);
  const uint32_t w2 = kq_load<uint32_t>(packed + 8);
  const uint32_t sc_lo = w0 & 0x3f3f3f3fu;
  const uint32_t m_lo = w1 & 0x3f3f3f3fu;
  const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
  return {uint64_t(sc_lo) | uint64_t(sc_hi) << 32, uint64_t(m_lo) | uint64_t(m_hi) << 32};
}

// The 16 Q3_K scales still biased by 32 (0..63) as four 32-bit words (byte k
// = group k), the same word-at-a-time unpacking; kept in registers for the
// same store-forwarding reason as above.
struct KqQ3Scales {
  uint32_t w[4];
  uint8_t byte(int k) const { return uint8_t(w[k / 4] >> (8 * (k % 4))); }
};
inline KqQ3Scales kq_unpack_q3_scales(const uint8_t* packed) {
  const uint32_t w0 = kq_load<uint32_t>(packed);
  const uint32_t w1 = kq_load<uint32_t>(packed + 4);
  const uint32_t w2 = kq_load<uint32_t>(packed + 8);
  return {{
      (w0 & 0x0f0f0f0fu) | ((w2 & 0x03030303u) << 4),
      (w1 & 0x0f0f0f0fu) | (((w2 >> 2) & 0x03030303u) << 4),
      ((w0 >> 4) & 0x0f0f0f0fu) | (((w2 >> 4) & 0x03030303u) << 4),
      ((w1 >> 4) & 0x0f0f0f0fu) | (((w2 >> 6) & 0x03030303u) << 4),
  }};
}

// The per-group integer scales of one super-block in the form of the identity
// above: s[k], m[k] for the 16 groups, and which float multiplies the m term.
struct KqScales {
  int16_t s[16];
  int16_t m[16];
  bool m_uses_dmin;  // c = dmin (affine types) or c = d (offset types)
};

inline void kq_scales_q2_k(const uint8_t* scales, KqScales& o) {
  for (int k = 0; k < 16; ++k) {
    o.s[k] = int16_t(scales[k] & 15);
    o.m[k] = int16_t(scales[k] >> 4);
  }
  o.m_uses_dmin = true;
}

inline void kq_scales_q3_k(const uint8_t* scales, KqScales& o) {
  const KqQ3Scales raw = kq_unpack_q3_scales(scales);
  for (int k = 0; k < 16; ++k) {
    o.s[k] = int16_t(raw.byte(k) - 32);
    o.m[k] = int16_t(4 * o.s[k]);
  }
  o.m_uses_dmin = false;
}

inline void kq_scales_k4(const uint8_t* scales, KqScales& o) {
  const KqK4Scales u = kq_unpack_k4_scales(scales);
  for (int k = 0; k < 16; ++k) {
    o.s[k] = int16_t((u.sc >> (8 * (k / 2))) & 0xff);
    o.m[k] = int16_t((u.m >> (8 * (k / 2))) & 0xff);
  }
  o.m_uses_dmin = true;
}

inline void kq_scales_q6_k(const int8_t* scales, KqScales& o) {
  for (int k = 0; k < 16; ++k) {
    o.s[k] = scales[k];
    o.m[k] = int16_t(32 * scales[k]);
  }
  o.m_uses_dmin = false;
}

// Forces x to be rounded to a float right here: GCC contracts a*b+c into an
// FMA in C++ whenever the target has FMA (the AVX2/AVX-512 files), which would
// round once where the generic build rounds twice. An empty asm that "changes"
// x hides the product from the contraction.
inline float kq_rounded(float x) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(x));
#endif
  return x;
}

// One super-block's float contribution; the same roundings on every ISA, so
// results agree exactly. Callers add it to their accumulator.
inline float kq_block_value(float da, float d, float dmin, bool affine, int32_t sum, int32_t msum) {
  if (!affine) return kq_rounded(da * kq_rounded(d * float(sum - msum)));
  return kq_rounded(da * (kq_rounded(d * float(sum)) - kq_rounded(dmin * float(msum))));
}

struct KqGemmArgs {
  int64_t n;           // elements per row
  const uint8_t* w;    // weight row 0
  size_t w_stride;     // bytes between weight rows
  const uint8_t* act;  // activation row 0 (Q8_K blocks)
  size_t act_stride;   // bytes between activation rows
  float* out;
  size_t out_stride;   // floats between output rows (one per token)
};

// Micro<R, T>::run(args, r0, t0) writes out[(t0+j) * out_stride + r0+i] for
// i < R, j < T. Decode (one token) takes DecodeR rows per pass: the rows'
// dependency chains interleave and one activation load serves them all.
// Prefill takes one row and up to MaxT tokens per pass, rows outer: the weight
// row (a few KB) stays in L1 while every tile of tokens passes it, so each
// super-block is unpacked once per MaxT tokens.
template <template <int, int> class Micro, int Max, bool ByRows>
void kq_remainder(int64_t k, const KqGemmArgs& a, int64_t r0, int64_t t0) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    [[maybe_unused]] auto one = [&]<int N>() {
      if (k != N) return;
      if constexpr (ByRows) Micro<N, 1>::run(a, r0, t0);
      else Micro<1, N>::run(a, r0, t0);
    };
    (one.template operator()<I + 1>(), ...);
  }(std::make_integer_sequence<int, Max - 1>{});
}

template <template <int, int> class Micro, int DecodeR, int MaxT>
void kq_gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
             int64_t n_tokens, float* out, size_t out_stride) {
  const KqGemmArgs a{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act),
                     act_stride, out, out_stride};
  if (n_tokens == 1) {
    int64_t r = 0;
    for (; r + DecodeR <= n_rows; r += DecodeR) Micro<DecodeR, 1>::run(a, r, 0);
    if (r < n_rows) kq_remainder<Micro, DecodeR, true>(n_rows - r, a, r, 0);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    int64_t t = 0;
    for (; t + MaxT <= n_tokens; t += MaxT) Micro<1, MaxT>::run(a, r, t);
    if (t < n_tokens) kq_remainder<Micro, MaxT, false>(n_tokens - t, a, r, t);
  }
}

#if defined(__AVX2__)
// ---- Shared by the AVX2 and AVX-512 translation units (256-bit building blocks).
//
// A super-block's quants are produced as eight vectors V_m (m = 0..7) of 32
// unsigned bytes, V_m holding elements 32m..32m+31 in order, so V_m lines up
// with a plain 32-byte load of the Q8_K quants and covers groups 2m and 2m+1.
// Scales come as sixteen int16 s_k (and m_k) in one 256-bit vector each.

// Moves each byte's bits by Shift (left if positive) with 16-bit shifts; the
// bits that cross into the neighbouring byte are the ones the caller masks off.
template <int Shift>
inline __m256i kq_shift_bytes(__m256i x) {
  if constexpr (Shift > 0) return _mm256_slli_epi16(x, Shift);
  else if constexpr (Shift < 0) return _mm256_srli_epi16(x, -Shift);
  else return x;
}

inline __m256i kq_load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i kq_load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline float kq_fp16(const uint8_t* p) { return _cvtsh_ss(kq_load<uint16_t>(p)); }

// Per-block view: pointers into the (unaligned) block, the super-scales, the 16
// group scales s and the min multipliers m as int16 vectors.
struct KqVecScales {
  __m256i s;  // s_0..s_15
  __m256i m;  // m_0..m_15
  float d, c;  // c multiplies the m term (dmin or d)
};

// Q4_K/Q5_K: the block's first 16 bytes (d, dmin, the 12 packed scale bytes)
// -> d, dmin and the 6-bit scales/mins as s and m, each sub-block's value
// doubled up for its two 16-element groups. All in one xmm register: three
// byte shuffles line up the low and high parts of every 6-bit field (the
// packing of blocks_k.h; scale byte j is x byte 4+j), masks and shifts cut
// them out; ~14 instructions instead of ~25 for the scalar unpacking.
inline void kq_vec_scales_k4(const uint8_t* block, KqVecScales& o) {
  const __m128i x = kq_load128(block);
  // low bits: [sc0-3: s0-3 | sc4-7: s8-11 & 15 | m0-3: s4-7 | m4-7: s8-11 >> 4]
  const __m128i a = _mm_shuffle_epi8(x, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, -1, -1, -1, -1));
  const __m128i c = _mm_shuffle_epi8(x, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 12, 13, 14, 15));
  // high 2 bits of sc4-7 / m4-7: the top bits of s0-3 / s4-7
  const __m128i h = _mm_shuffle_epi8(x, _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
  const __m128i mask_a = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
  const __m128i low = _mm_or_si128(_mm_and_si128(a, mask_a),
                                   _mm_and_si128(_mm_srli_epi16(c, 4), _mm_set1_epi8(15)));
  const __m128i r = _mm_or_si128(low, _mm_and_si128(_mm_srli_epi16(h, 2), _mm_set1_epi8(0x30)));
  o.s = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r, r));
  o.m = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(r, r));
  const __m128 dd = _mm_cvtph_ps(x);  // lanes 0, 1: d, dmin
  o.d = _mm_cvtss_f32(dd);
  o.c = _mm_cvtss_f32(_mm_movehdup_ps(dd));
}

struct KqQ2K {
  static constexpr bool kOffset = false;  // c == d: the m term joins the integer sum
  static constexpr size_t kBytes = sizeof(BlockQ2_K);
  const uint8_t* b;
  void scales(KqVecScales& o) const {
    const __m128i x = kq_load128(b + offsetof(BlockQ2_K, scales));
    const __m128i lo = _mm_set1_epi8(0x0f);
    o.s = _mm256_cvtepu8_epi16(_mm_and_si128(x, lo));
    o.m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x, 4), lo));
    o.d = kq_fp16(b + offsetof(BlockQ2_K, d));
    o.c = kq_fp16(b + offsetof(BlockQ2_K, dmin));
  }
  template <int M>
  __m256i quants() const {
    const __m256i q = kq_load256(b + offsetof(BlockQ2_K, qs) + 32 * (M / 4));
    return _mm256_and_si256(kq_shift_bytes<-2 * (M % 4)>(q), _mm256_set1_epi8(3));
  }
};

struct KqQ3K {
  static constexpr bool kOffset = true;  // c == d: the m term joins the integer sum
  static constexpr size_t kBytes = sizeof(BlockQ3_K);
  const uint8_t* b;
  void scales(KqVecScales& o) const {
    const KqQ3Scales raw = kq_unpack_q3_scales(b + offsetof(BlockQ3_K, scales));
    const __m128i x = _mm_setr_epi32(int(raw.w[0]), int(raw.w[1]), int(raw.w[2]), int(raw.w[3]));
    const __m256i s = _mm256_sub_epi16(_mm256_cvtepu8_epi16(x), _mm256_set1_epi16(32));
    o.s = s;
    o.m = _mm256_slli_epi16(s, 2);  // 4*s: the -4 offset of every quant
    o.d = kq_fp16(b + offsetof(BlockQ3_K, d));
    o.c = o.d;
  }
  template <int M>
  __m256i quants() const {
    const __m256i q = kq_load256(b + offsetof(BlockQ3_K, qs) + 32 * (M / 4));
    const __m256i low = _mm256_and_si256(kq_shift_bytes<-2 * (M % 4)>(q), _mm256_set1_epi8(3));
    const __m256i h = kq_load256(b + offsetof(BlockQ3_K, hmask));
    return _mm256_or_si256(low, _mm256_and_si256(kq_shift_bytes<2 - M>(h), _mm256_set1_epi8(4)));
  }
};

struct KqQ4K {
  static constexpr bool kOffset = false;  // c == d: the m term joins the integer sum
  static constexpr size_t kBytes = sizeof(BlockQ4_K);
  const uint8_t* b;
  void scales(KqVecScales& o) const {
    static_assert(offsetof(BlockQ4_K, d) == 0 && offsetof(BlockQ4_K, dmin) == 2 && offsetof(BlockQ4_K, scales) == 4);
    kq_vec_scales_k4(b, o);
  }
  template <int M>
  __m256i quants() const {
    const __m256i q = kq_load256(b + offsetof(BlockQ4_K, qs) + 32 * (M / 2));
    return _mm256_and_si256(kq_shift_bytes<-4 * (M % 2)>(q), _mm256_set1_epi8(15));
  }
};

struct KqQ5K {
  static constexpr bool kOffset = false;  // c == d: the m term joins the integer sum
  static constexpr size_t kBytes = sizeof(BlockQ5_K);
  const uint8_t* b;
  void scales(KqVecScales& o) const {
    static_assert(offsetof(BlockQ5_K, d) == 0 && offsetof(BlockQ5_K, dmin) == 2 && offsetof(BlockQ5_K, scales) == 4);
    kq_vec_scales_k4(b, o);
  }
  template <int M>
  __m256i quants() const {
    const __m256i q = kq_load256(b + offsetof(BlockQ5_K, qs) + 32 * (M / 2));
    const __m256i low = _mm256_and_si256(kq_shift_bytes<-4 * (M % 2)>(q), _mm256_set1_epi8(15));
    const __m256i h = kq_load256(b + offsetof(BlockQ5_K, qh));
    return _mm256_or_si256(low, _mm256_and_si256(kq_shift_bytes<4 - M>(h), _mm256_set1_epi8(16)));
  }
};

struct KqQ6K {
  static constexpr bool kOffset = true;  // c == d: the m term joins the integer sum
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  const uint8_t* b;
  void scales(KqVecScales& o) const {
    const __m256i s = _mm256_cvtepi8_epi16(kq_load128(b + offsetof(BlockQ6_K, scales)));
    o.s = s;
    o.m = _mm256_slli_epi16(s, 5);  // 32*s: the -32 offset of every quant
    o.d = kq_fp16(b + offsetof(BlockQ6_K, d));
    o.c = o.d;
  }
  template <int M>
  __m256i quants() const {
    constexpr int h = M / 4, qq = M % 4;
    const __m256i l = kq_load256(b + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (qq & 1));
    const __m256i low = _mm256_and_si256(kq_shift_bytes<-4 * (qq >> 1)>(l), _mm256_set1_epi8(15));
    const __m256i hi = kq_load256(b + offsetof(BlockQ6_K, qh) + 32 * h);
    return _mm256_or_si256(low, _mm256_and_si256(kq_shift_bytes<4 - 2 * qq>(hi), _mm256_set1_epi8(0x30)));
  }
};

// Software prefetch, into L2, of the block that the next tile of rows reads
// at this position (R rows further on). Decode streams every weight byte
// once; the hardware prefetchers alone keep too few lines in flight at this
// load rate (R interleaved row streams), while one tile ahead is far enough
// to cover memory latency and close enough to stay in L2. Prefetches never
// fault, so running past the matrix's end is harmless; the address is formed
// as an integer so no out-of-range pointer arithmetic happens either.
template <size_t Bytes>
inline void kq_prefetch(const uint8_t* base, size_t ahead) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(base) + ahead;
  for (size_t off = 0; off < Bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// Calls f.template operator()<M>() for M = 0..N-1 with M a constant, so the
// shifts and offsets inside fold into immediates.
template <int N, typename F>
inline void kq_unroll(F&& f) {
  [&]<int... M>(std::integer_sequence<int, M...>) { (f.template operator()<M>(), ...); }(
      std::make_integer_sequence<int, N>{});
}

// Four vectors' lane sums at once: [sum(x0) sum(x1) sum(x2) sum(x3)].
inline __m128i kq_reduce4(__m256i x0, __m256i x1, __m256i x2, __m256i x3) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(x0, x1), _mm256_hadd_epi32(x2, x3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

inline __m128 kq_rounded4(__m128 x) {
  __asm__("" : "+x"(x));
  return x;
}

// kq_block_value on four (row, token) pairs, lane by lane the same IEEE
// operations as the scalar version, so the results are identical.
template <bool Affine>
inline __m128 kq_block_value4(__m128 da, __m128 d, __m128 dmin, __m128i sum, __m128i msum) {
  if constexpr (!Affine) {
    return kq_rounded4(_mm_mul_ps(da, kq_rounded4(_mm_mul_ps(d, _mm_cvtepi32_ps(_mm_sub_epi32(sum, msum))))));
  } else {
    const __m128 a = kq_rounded4(_mm_mul_ps(d, _mm_cvtepi32_ps(sum)));
    const __m128 b = kq_rounded4(_mm_mul_ps(dmin, _mm_cvtepi32_ps(msum)));
    return kq_rounded4(_mm_mul_ps(da, _mm_sub_ps(a, b)));
  }
}

// The end of one super-block for a tile of R rows x T tokens (pair p = r*T+t):
// isum[p] (S, spread over lanes) and mins[p] (M, spread over lanes) become
// float contributions added to acc[p/4] lane p%4.
template <bool Affine, int R, int T>
inline void kq_finish_block(const __m256i* isum, const __m256i* mins, const float* d, const float* dmin,
                            const float* da, __m128* acc) {
  constexpr int kPairs = R * T;
  for (int g = 0; g < (kPairs + 3) / 4; ++g) {
    auto pick = [&](const __m256i* v, int i) { return 4 * g + i < kPairs ? v[4 * g + i] : _mm256_setzero_si256(); };
    const __m128i s = kq_reduce4(pick(isum, 0), pick(isum, 1), pick(isum, 2), pick(isum, 3));
    const __m128i m = kq_reduce4(pick(mins, 0), pick(mins, 1), pick(mins, 2), pick(mins, 3));
    // Built in registers (vinsertps), not stored and reloaded: four scalar
    // stores read back by one vector load would miss store forwarding.
    auto lanes = [&](const float* v, bool by_row) {
      auto at = [&](int i) { return 4 * g + i < kPairs ? v[by_row ? (4 * g + i) / T : (4 * g + i) % T] : 0.0f; };
      return _mm_setr_ps(at(0), at(1), at(2), at(3));
    };
    acc[g] = _mm_add_ps(acc[g], kq_block_value4<Affine>(lanes(da, false), lanes(d, true), lanes(dmin, true), s, m));
  }
}

template <int R, int T>
inline void kq_store_tile(const KqGemmArgs& g, int64_t r0, int64_t t0, const __m128* acc) {
  alignas(16) float v[4 * ((R * T + 3) / 4)];
  for (int i = 0; i < (R * T + 3) / 4; ++i) _mm_store_ps(v + 4 * i, acc[i]);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) g.out[size_t(t0 + t) * g.out_stride + size_t(r0 + r)] = v[r * T + t];
}

inline float kq_hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// Q8_K quantization bit-identical to quant's reference (quantize_row_q8_k):
// d = amax/127 over the finite |x| (max is order-free, so a vector max gives
// the same amax), q = x/d (a true division, as the reference does) rounded
// half away from zero, NaN -> 0, clamped to -127..127; bsums from the bytes.
inline void kq_quantize_q8_k_avx2(const float* x, void* out, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* xb = x + i * QK_K;
    uint8_t* ob = static_cast<uint8_t*>(out) + size_t(i) * sizeof(BlockQ8_K);
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j));
      // a < inf is false for inf and NaN: both are left out of the scale.
      amax = _mm256_max_ps(amax, _mm256_and_ps(a, _mm256_cmp_ps(a, inf, _CMP_LT_OQ)));
    }
    const float d = kq_hmax(amax) / 127.0f;
    std::memcpy(ob, &d, 4);
    int8_t* qs = reinterpret_cast<int8_t*>(ob + offsetof(BlockQ8_K, qs));
    if (d > 0.0f) {
      const __m256 vd = _mm256_set1_ps(d);
      const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
      const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
      for (int j = 0; j < QK_K; j += 32) {
        __m256i q32[4];
        for (int k = 0; k < 4; ++k) {
          __m256 v = _mm256_div_ps(_mm256_loadu_ps(xb + j + 8 * k), vd);
          v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> 0
          // round(v) = trunc(v) + sign(v) where |v - trunc(v)| >= 0.5 (the
          // difference is exact); inf - inf = NaN fails the compare, leaving inf.
          const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
          const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
          const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), one);
          v = _mm256_add_ps(t, _mm256_and_ps(step, _mm256_cmp_ps(frac, half, _CMP_GE_OQ)));
          v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
          q32[k] = _mm256_cvtps_epi32(v);
        }
        // int32 -> int8 with packs (values fit, no saturation), then undo the
        // lane interleaving of the two packs.
        const __m256i w01 = _mm256_packs_epi32(q32[0], q32[1]);
        const __m256i w23 = _mm256_packs_epi32(q32[2], q32[3]);
        const __m256i b = _mm256_packs_epi16(w01, w23);
        const __m256i ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + j), ordered);
      }
    } else {
      std::memset(qs, 0, QK_K);
    }
    // bsums: psadbw sums 8 unsigned bytes per 64-bit lane, so flip the sign
    // bit (q + 128) and take 2 * 8 * 128 back off each 16-byte group.
    int16_t bsums[16];
    for (int c = 0; c < 8; ++c) {
      const __m256i u = _mm256_xor_si256(kq_load256(qs + 32 * c), _mm256_set1_epi8(char(0x80)));
      const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
      alignas(32) int64_t lanes[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sad);
      bsums[2 * c] = int16_t(lanes[0] + lanes[1] - 2048);
      bsums[2 * c + 1] = int16_t(lanes[2] + lanes[3] - 2048);
    }
    std::memcpy(ob + offsetof(BlockQ8_K, bsums), bsums, sizeof(bsums));
  }
}
#endif  // __AVX2__

}  // namespace
}  // namespace dhi::kernels::cpu
