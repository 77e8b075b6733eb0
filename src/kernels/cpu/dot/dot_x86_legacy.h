// Private to dot_avx2_legacy.cpp and dot_avx512_legacy.cpp: the x86 kernels for
// the float and legacy quant types, written once on 256-bit vectors (one 32-
// element block per register) and compiled twice. The AVX2 build multiplies
// int8 with vpmaddubsw + vpmaddwd; the AVX-512 build (DHI_X86_VNNI) uses
// AVX512-VNNI's vpdpbusd on the same 256-bit registers (VL) and has 32 vector
// registers instead of 16, so it gets larger register tiles.
//
// Inner loops keep one float accumulator vector per (row, token) pair and do no
// horizontal reductions; those happen once per output at the end. Per block:
//   symmetric types (Q4_0, Q5_0, Q8_0): w signed, a signed. The u8 x s8
//     instructions need one unsigned side, so we feed |w| and a * sign(w)
//     (vpsignb). |w| <= 128 (a Q8_0 weight may be -128: |-128| reads as 128
//     unsigned) and |a| <= 127 (our quantizer never writes -128, so negating it
//     cannot overflow); vpmaddubsw's pair sums stay below 2*128*127 < 2^15.
//   affine types (Q4_1, Q5_1): the codes are unsigned already (0..31), so they
//     multiply a directly; the block offset adds m_w * s_a, s_a = d_a * sum(a)
//     being the Q8_1 block's s field.
// Every int32 block sum is exact; d_w * d_a scales it into the float accumulator.
//
// Internal linkage throughout (see dot_internal.h for why).
#pragma once

#include <immintrin.h>

#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_internal.h"
#include "quant/blocks_legacy.h"

namespace dhi::kernels::cpu {
namespace {

constexpr int kQK = QK_LEGACY;

#if defined(DHI_X86_VNNI)
constexpr int kVecRegs = 32;
#else
constexpr int kVecRegs = 16;
#endif

inline float half_to_float(const uint8_t* p) { return _cvtsh_ss(load_unaligned<uint16_t>(p)); }

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// sum of u8 x s8 products in each group of four bytes -> 8 int32 lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(DHI_X86_VNNI)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- Weight unpacking: 32 unsigned codes of a block, element order -----------
// Symmetric types store q = u - o with unsigned u: o = 8 (Q4_0), 16 (Q5_0) and,
// after flipping the sign bit of a Q8_0 code, 128. The u8 x s8 instructions take
// u directly and the offset becomes o * sum(a), one more multiply-add per
// activation block shared by every weight row of the tile:
//   sum q*a = sum u*a - o * sum a.
// Without VNNI, vpmaddubsw's int16 pair sums would saturate for u up to 255, so
// the AVX2 build keeps Q8_0 signed and uses |w| with a * sign(w) instead
// (|w| <= 128: a -128 code reads as 128 unsigned; |a| <= 127 as our quantizer
// never writes -128, so negating it cannot overflow; pair sums < 2^15).

// Element j in the low nibble of qs[j], element j+16 in the high nibble: the
// low 128-bit lane gets the low nibbles, the high lane the high ones.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i x = load128(qs);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 0x10 in byte i where bit i of the little-endian 32-bit qh is set.
inline __m256i high_bits(const uint8_t* qh) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(load_unaligned<uint32_t>(qh))),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

#if defined(DHI_X86_VNNI)
constexpr bool kUnsignedQ8 = true;
#else
constexpr bool kUnsignedQ8 = false;
#endif

struct Q4_0 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 8;
  static __m256i codes(const uint8_t* p) { return nibbles(p + offsetof(BlockQ4_0, qs)); }
};
struct Q4_1 {
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 0;
  static __m256i codes(const uint8_t* p) { return nibbles(p + offsetof(BlockQ4_1, qs)); }
};
struct Q5_0 {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 16;
  static __m256i codes(const uint8_t* p) {
    return _mm256_or_si256(nibbles(p + offsetof(BlockQ5_0, qs)), high_bits(p + offsetof(BlockQ5_0, qh)));
  }
};
struct Q5_1 {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 0;
  static __m256i codes(const uint8_t* p) {
    return _mm256_or_si256(nibbles(p + offsetof(BlockQ5_1, qs)), high_bits(p + offsetof(BlockQ5_1, qh)));
  }
};
struct Q8_0 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = !kUnsignedQ8;  // codes() gives q itself
  static constexpr int kOffset = kUnsignedQ8 ? 128 : 0;
  static __m256i codes(const uint8_t* p) {
    const __m256i q = load256(p + offsetof(BlockQ8_0, qs));
    return kUnsignedQ8 ? _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80))) : q;
  }
};

// Eight fp16 fields at a byte stride (the blocks' d or m) as floats.
inline __m256 halves8(const uint8_t* p, size_t stride) {
  const auto h = [&](int i) { return short(load_unaligned<uint16_t>(p + size_t(i) * stride)); };
  return _mm256_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7)));
}

template <typename W>
struct QuantTile {
  static constexpr size_t kActBytes = W::kAffine ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  static constexpr size_t kActQs = W::kAffine ? offsetof(BlockQ8_1, qs) : offsetof(BlockQ8_0, qs);
  static constexpr int kGroup = 8;  // blocks whose scales are converted together

  template <int R, int T>
  struct Micro {
    using Acc = __m256[R][T];
    const uint8_t* wr[R];
    const uint8_t* ar[T];
    size_t ahead;  // bytes from a row to the same row of the next tile

    // A tile reads R rows side by side, each only a few KB (a 1536-wide Q4_0
    // row is 14 cache lines), too short for the hardware prefetcher to train
    // on, and each step reads ~20 bytes per row, so the out-of-order window
    // covers few cache-line misses: decode from DRAM ran at a quarter of the
    // bandwidth. So each step prefetches the same bytes of the next tile's
    // rows, one tile ahead in time, into L2 (into L1 it evicted the rows in
    // use: two tiles of Q8_0 rows can exceed L1). Prefetches never fault, so
    // running past the last row is harmless (the address is an integer).
    inline void prefetch_ahead(const uint8_t* p, size_t bytes) const {
      const uintptr_t base = reinterpret_cast<uintptr_t>(p) + ahead;
      for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(base + off), _MM_HINT_T1);
    }

    // Block b of every row against every token; scale(r, t) is d_w * d_a.
    // The offset term o * sum(a) is computed once per token and subtracted in
    // the integer domain: VNNI seeds vpdpbusd's accumulator with it; AVX2
    // subtracts the int16 pair sums (|u*a| pairs <= 2*31*127, no saturation).
    template <typename Scale>
    __attribute__((always_inline)) inline void block_step(int64_t b, Scale&& scale, Acc& acc) const {
      __m256i u[R], q[R];
      for (int r = 0; r < R; ++r) {
        q[r] = W::codes(wr[r] + b * W::kBytes);
        u[r] = W::kSigned ? _mm256_sign_epi8(q[r], q[r]) : q[r];
      }
      const __m256i off = _mm256_set1_epi8(char(W::kOffset));
      for (int t = 0; t < T; ++t) {
        const __m256i av = load256(ar[t] + b * kActBytes + kActQs);
#if defined(DHI_X86_VNNI)
        __m256i seed = _mm256_setzero_si256();
        if constexpr (W::kOffset != 0) seed = _mm256_sub_epi32(seed, _mm256_dpbusd_epi32(seed, off, av));
#else
        const __m256i off16 = W::kOffset != 0 ? _mm256_maddubs_epi16(off, av) : _mm256_setzero_si256();
#endif
        for (int r = 0; r < R; ++r) {
          __m256i isum;
          if constexpr (W::kSigned) {
            isum = dot_u8s8(u[r], _mm256_sign_epi8(av, q[r]));
          } else {
#if defined(DHI_X86_VNNI)
            isum = _mm256_dpbusd_epi32(seed, u[r], av);
#else
            __m256i p16 = _mm256_maddubs_epi16(u[r], av);
            if constexpr (W::kOffset != 0) p16 = _mm256_sub_epi16(p16, off16);
            isum = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
#endif
          }
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale(r, t), acc[r][t]);
        }
      }
    }

    void run_blocks(const GemmArgs& a, int64_t r0, int64_t t0) const {
      Acc acc, macc;  // macc: m_w * s_a per block lane (affine types)
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = macc[r][t] = _mm256_setzero_ps();
      const int64_t nb = a.n / kQK;
      int64_t b = 0;
      // Full groups: the 8 scale products of a (row, token) pair are one
      // multiply of converted vectors, then broadcast loads (load-port work)
      // feed the per-block FMAs.
      for (; b + kGroup <= nb; b += kGroup) {
        alignas(32) float s[R][T][kGroup];
        __m256 da[T], sa[T];
        for (int t = 0; t < T; ++t) {
          da[t] = halves8(ar[t] + b * kActBytes, kActBytes);
          if constexpr (W::kAffine) sa[t] = halves8(ar[t] + b * kActBytes + 2, kActBytes);
        }
        for (int r = 0; r < R; ++r) {
          prefetch_ahead(wr[r] + b * W::kBytes, kGroup * W::kBytes);
          const __m256 dw = halves8(wr[r] + b * W::kBytes, W::kBytes);
          __m256 mw = _mm256_setzero_ps();
          if constexpr (W::kAffine) mw = halves8(wr[r] + b * W::kBytes + 2, W::kBytes);
          for (int t = 0; t < T; ++t) {
            _mm256_store_ps(s[r][t], _mm256_mul_ps(dw, da[t]));
            if constexpr (W::kAffine) macc[r][t] = _mm256_fmadd_ps(mw, sa[t], macc[r][t]);
          }
        }
        for (int k = 0; k < kGroup; ++k) {
          const auto scale = [&](int r, int t) { return _mm256_broadcast_ss(&s[r][t][k]); };
          block_step(b + k, scale, acc);
        }
      }
      // The remaining blocks convert their scales one by one.
      for (; b < nb; ++b) {
        float dw[R], da[T];
        for (int r = 0; r < R; ++r) dw[r] = half_to_float(wr[r] + b * W::kBytes);
        for (int t = 0; t < T; ++t) da[t] = half_to_float(ar[t] + b * kActBytes);
        if constexpr (W::kAffine) {
          for (int r = 0; r < R; ++r) {
            const __m256 mw = _mm256_setr_ps(half_to_float(wr[r] + b * W::kBytes + 2), 0, 0, 0, 0, 0, 0, 0);
            for (int t = 0; t < T; ++t)
              macc[r][t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(half_to_float(ar[t] + b * kActBytes + 2)), macc[r][t]);
          }
        }
        const auto scale = [&](int r, int t) { return _mm256_set1_ps(dw[r] * da[t]); };
        block_step(b, scale, acc);
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
          float v = hsum(acc[r][t]);
          if constexpr (W::kAffine) v += hsum(macc[r][t]);
          a.at(r0 + r, t0 + t) = v;
        }
    }

    static void run(const GemmArgs& a, int64_t r0, int64_t t0) {
      Micro m;
      m.ahead = size_t(R) * a.w_stride;
      for (int r = 0; r < R; ++r) m.wr[r] = a.w_row(r0 + r);
      for (int t = 0; t < T; ++t) m.ar[t] = a.act_row(t0 + t);
      m.run_blocks(a, r0, t0);
    }
  };
};

// ---- Float weights (f32 activations) ------------------------------------------

struct F32W {
  static constexpr size_t kElem = 4;
  static __m256 load8(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float load1(const uint8_t* p) { return load_unaligned<float>(p); }
};
struct F16W {
  static constexpr size_t kElem = 2;
  static __m256 load8(const uint8_t* p) { return _mm256_cvtph_ps(load128(p)); }
  static float load1(const uint8_t* p) { return half_to_float(p); }
};
struct BF16W {
  static constexpr size_t kElem = 2;
  // bf16 is the top half of an f32: widen to 32 bits and shift into place.
  static __m256 load8(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
  }
  static float load1(const uint8_t* p) {
    const uint32_t u = uint32_t(load_unaligned<uint16_t>(p)) << 16;
    return load_unaligned<float>(&u);
  }
};

template <typename W>
struct FloatTile {
  template <int R, int T>
  struct Micro {
    static void run(const GemmArgs& a, int64_t r0, int64_t t0) {
      __m256 acc[R][T];
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
      const uint8_t* wr[R];
      const uint8_t* ar[T];
      for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
      for (int t = 0; t < T; ++t) ar[t] = a.act_row(t0 + t);
      const auto step = [&](int64_t i) {
        __m256 x[T];
        for (int t = 0; t < T; ++t) x[t] = _mm256_loadu_ps(reinterpret_cast<const float*>(ar[t] + 4 * i));
        for (int r = 0; r < R; ++r) {
          const __m256 w = W::load8(wr[r] + W::kElem * i);
          for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(w, x[t], acc[r][t]);
        }
      };
      // Prefetch the next tile's rows into L2, as the quant kernels do (the
      // half-precision rows stream 16 bytes per row and step).
      const size_t ahead = size_t(R) * a.w_stride;
      const int64_t n32 = a.n & ~int64_t(31), n8 = a.n & ~int64_t(7);
      int64_t i = 0;
      for (; i < n32; i += 32) {
        for (int r = 0; r < R; ++r) {
          const uintptr_t p = reinterpret_cast<uintptr_t>(wr[r] + W::kElem * i) + ahead;
          for (size_t off = 0; off < 32 * W::kElem; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
        }
        for (int k = 0; k < 4; ++k) step(i + 8 * k);
      }
      for (; i < n8; i += 8) step(i);
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
          float s = hsum(acc[r][t]);
          for (int64_t i = n8; i < a.n; ++i)
            s += W::load1(wr[r] + W::kElem * i) * load_unaligned<float>(ar[t] + 4 * i);
          a.at(r0 + r, t0 + t) = s;
        }
    }
  };
};

// ---- Activation quantizers (bit-identical to the generic ones) ----------------

template <bool kWithSum>
void quantize_8bit(const float* x, void* out, int64_t n) {
  constexpr size_t kBlockBytes = kWithSum ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  constexpr size_t kQsOff = kWithSum ? offsetof(BlockQ8_1, qs) : offsetof(BlockQ8_0, qs);
  auto* o = static_cast<uint8_t*>(out);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      // maxps returns its second operand when either is NaN: a NaN is skipped.
      amax = _mm256_max_ps(_mm256_and_ps(v[k], abs_mask), amax);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float step = _mm_cvtss_f32(m) / 127.0f;
    step = step < 65504.0f ? step : 65504.0f;
    const uint16_t dh = uint16_t(_cvtss_sh(step, _MM_FROUND_TO_POS_INF));
    const float d = _cvtsh_ss(dh);
    const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 s = _mm256_max_ps(_mm256_mul_ps(v[k], id), _mm256_set1_ps(-127.0f));  // NaN -> -127
      s = _mm256_min_ps(s, _mm256_set1_ps(127.0f));
      q[k] = _mm256_cvtps_epi32(s);  // round half to even (MXCSR default)
    }
    // packs interleave 128-bit lanes; the permute restores element order.
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i qs = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    uint8_t* ob = o + size_t(b) * kBlockBytes;
    std::memcpy(ob, &dh, 2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ob + kQsOff), qs);
    if constexpr (kWithSum) {
      __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
      const float sum = float(_mm_cvtsi128_si32(s));
      const uint16_t sh = uint16_t(_cvtss_sh(d * sum, _MM_FROUND_TO_NEAREST_INT));
      std::memcpy(ob + 2, &sh, 2);
    }
  }
}

// Register tiles. 16 registers (AVX2): 2 rows x 4 tokens of quant accumulators
// plus the rows' unpacked codes; 32 (AVX-512VL): 4 x 4. Decode keeps 4 (quant)
// or 8 (float) rows in flight so several independent loads stream at once.
constexpr int kQuantR = kVecRegs == 32 ? 4 : 2;
constexpr int kQuantT = 4;
constexpr int kFloatR = kVecRegs == 32 ? 4 : 3;
constexpr int kFloatT = 4;

template <typename W>
constexpr DotKernel quant_kernel() {
  return DotKernel{W::kAffine ? TensorType::Q8_1 : TensorType::Q8_0,
                   W::kAffine ? quantize_8bit<true> : quantize_8bit<false>,
                   gemm_tiled<QuantTile<W>::template Micro, 4, kQuantR, kQuantT>};
}
template <typename W>
constexpr DotKernel float_kernel() {
  return DotKernel{TensorType::F32, nullptr, gemm_tiled<FloatTile<W>::template Micro, 8, kFloatR, kFloatT>};
}

constexpr DotKernel kF32 = float_kernel<F32W>();
constexpr DotKernel kF16 = float_kernel<F16W>();
constexpr DotKernel kBF16 = float_kernel<BF16W>();
constexpr DotKernel kQ4_0 = quant_kernel<Q4_0>();
constexpr DotKernel kQ4_1 = quant_kernel<Q4_1>();
constexpr DotKernel kQ5_0 = quant_kernel<Q5_0>();
constexpr DotKernel kQ5_1 = quant_kernel<Q5_1>();
constexpr DotKernel kQ8_0 = quant_kernel<Q8_0>();

const DotKernel* x86_legacy_kernel(TensorType w) {
  switch (w) {
    case TensorType::F32: return &kF32;
    case TensorType::F16: return &kF16;
    case TensorType::BF16: return &kBF16;
    case TensorType::Q4_0: return &kQ4_0;
    case TensorType::Q4_1: return &kQ4_1;
    case TensorType::Q5_0: return &kQ5_0;
    case TensorType::Q5_1: return &kQ5_1;
    case TensorType::Q8_0: return &kQ8_0;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
