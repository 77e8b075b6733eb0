// Scalar reference dequantizers and quantizers for the legacy 32-element types
// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1). Dequantization follows the GGML
// definition operation for operation (same float expression order), so fast
// kernels can be compared against it bit for bit.
//
// The quantizers are dhi's own. They need not pick the same blocks as
// llama.cpp, but every block they write is valid and carries a provable error
// bound, which the tests check:
//   Q8_0/Q8_1            |x - y| <= d/2   (d rounded up to a half, q in -127..127)
//   Q4_0/Q5_0            |x - y| <= |d|/2 (symmetric_step below)
//   Q4_1/Q5_1            |x - y| <= d/2   (m rounded down, d rounded up)
// plus a few float ulps of arithmetic.
#include <algorithm>
#include <cmath>

#include "quant/blocks_legacy.h"
#include "quant/quant_internal.h"

namespace dhi::quant_impl {

// ---- Dequantization -------------------------------------------------------

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = fp16_to_f32(b.d);
    float* y = dst + i * QK_LEGACY;
    for (int j = 0; j < QK_LEGACY / 2; ++j) {
      const int x0 = (b.qs[j] & 0x0f) - 8;
      const int x1 = (b.qs[j] >> 4) - 8;
      y[j] = float(x0) * d;
      y[j + QK_LEGACY / 2] = float(x1) * d;
    }
  }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    float* y = dst + i * QK_LEGACY;
    for (int j = 0; j < QK_LEGACY / 2; ++j) {
      const int x0 = b.qs[j] & 0x0f;
      const int x1 = b.qs[j] >> 4;
      y[j] = float(x0) * d + m;
      y[j + QK_LEGACY / 2] = float(x1) * d + m;
    }
  }
}

// The 32 high bits as one little-endian word: bit i belongs to element i.
static uint32_t load_qh(const uint8_t qh[4]) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = fp16_to_f32(b.d);
    const uint32_t qh = load_qh(b.qh);
    float* y = dst + i * QK_LEGACY;
    for (int j = 0; j < QK_LEGACY / 2; ++j) {
      const int h0 = int((qh >> j) & 1) << 4;
      const int h1 = int((qh >> (j + 16)) & 1) << 4;
      const int x0 = ((b.qs[j] & 0x0f) | h0) - 16;
      const int x1 = ((b.qs[j] >> 4) | h1) - 16;
      y[j] = float(x0) * d;
      y[j + QK_LEGACY / 2] = float(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    const uint32_t qh = load_qh(b.qh);
    float* y = dst + i * QK_LEGACY;
    for (int j = 0; j < QK_LEGACY / 2; ++j) {
      const int h0 = int((qh >> j) & 1) << 4;
      const int h1 = int((qh >> (j + 16)) & 1) << 4;
      const int x0 = (b.qs[j] & 0x0f) | h0;
      const int x1 = (b.qs[j] >> 4) | h1;
      y[j] = float(x0) * d + m;
      y[j + QK_LEGACY / 2] = float(x1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < QK_LEGACY; ++j) dst[i * QK_LEGACY + j] = float(b.qs[j]) * d;
  }
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    const auto b = load_block<BlockQ8_1>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < QK_LEGACY; ++j) dst[i * QK_LEGACY + j] = float(b.qs[j]) * d;
  }
}

// ---- Quantization ---------------------------------------------------------

// For q in [-half, half-1] the representable values are s*q. With s > 0 the
// negative side reaches one step further than the positive side, so the best
// step is the smallest one that keeps the most negative element within
// (half + 1/2) steps and the most positive within (half - 1/2) steps: then
// rounding to nearest never clamps by more than half a step. A negative s
// mirrors this; whichever orientation gives the smaller |s| wins.
float symmetric_step(const float* x, int n, int half) {
  float pos = 0.0f, neg = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    pos = std::max(pos, x[i]);
    neg = std::max(neg, -x[i]);
  }
  const float wide = float(half) + 0.5f, narrow = float(half) - 0.5f;
  const float s_pos = std::max(neg / wide, pos / narrow);  // s > 0: negatives reach -half
  const float s_neg = std::max(pos / wide, neg / narrow);  // s < 0: positives reach -half
  return s_pos <= s_neg ? s_pos : -s_neg;
}

// Stores a signed step as a half whose magnitude is at least |s|.
static uint16_t signed_step_fp16(float s) {
  const uint16_t mag = fp16_at_least(std::fabs(s));
  return s < 0 ? uint16_t(mag | 0x8000) : mag;
}

static float abs_max(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::isfinite(x[i])) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

// Fills 4-bit nibbles: element j low, element j+16 high.
static void pack_nibbles(const int q[QK_LEGACY], uint8_t qs[QK_LEGACY / 2]) {
  for (int j = 0; j < QK_LEGACY / 2; ++j) qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + QK_LEGACY / 2] & 0x0f) << 4));
}

// Fills the 5-bit types' nibbles and their high-bit word.
static void pack_5bit(const int q[QK_LEGACY], uint8_t qs[QK_LEGACY / 2], uint8_t qh[4]) {
  pack_nibbles(q, qs);
  uint32_t bits = 0;
  for (int i = 0; i < QK_LEGACY; ++i) bits |= uint32_t((q[i] >> 4) & 1) << i;
  for (int k = 0; k < 4; ++k) qh[k] = uint8_t(bits >> (8 * k));
}

// Symmetric 4/5-bit block: returns the stored scale bits and the unsigned codes.
static uint16_t quantize_symmetric(const float* x, int half, int q[QK_LEGACY]) {
  const uint16_t dh = signed_step_fp16(symmetric_step(x, QK_LEGACY, half));
  const float d = fp16_to_f32(dh);
  for (int j = 0; j < QK_LEGACY; ++j) q[j] = (d != 0.0f ? round_clamp(x[j] / d, -half, half - 1) : 0) + half;
  return dh;
}

// Affine 4/5-bit block, x = d*q + m with q in [0, levels]: m is the block
// minimum rounded down and d the range rounded up, so nothing clamps.
static void quantize_affine(const float* x, int levels, uint16_t& dh, uint16_t& mh, int q[QK_LEGACY]) {
  float lo = INFINITY, hi = -INFINITY;
  for (int j = 0; j < QK_LEGACY; ++j) {
    if (!std::isfinite(x[j])) continue;
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  if (lo > hi) lo = hi = 0.0f;  // no finite element
  mh = fp16_at_most(lo);
  const float m = fp16_to_f32(mh);
  dh = fp16_at_least((hi - m) / float(levels));
  const float d = fp16_to_f32(dh);
  for (int j = 0; j < QK_LEGACY; ++j) q[j] = d != 0.0f ? round_clamp((x[j] - m) / d, 0, levels) : 0;
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ4_0 b{};
    int q[QK_LEGACY];
    b.d = quantize_symmetric(src + i * QK_LEGACY, 8, q);
    pack_nibbles(q, b.qs);
    store_block(dst, i, b);
  }
}

void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ5_0 b{};
    int q[QK_LEGACY];
    b.d = quantize_symmetric(src + i * QK_LEGACY, 16, q);
    pack_5bit(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ4_1 b{};
    int q[QK_LEGACY];
    quantize_affine(src + i * QK_LEGACY, 15, b.d, b.m, q);
    pack_nibbles(q, b.qs);
    store_block(dst, i, b);
  }
}

void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ5_1 b{};
    int q[QK_LEGACY];
    quantize_affine(src + i * QK_LEGACY, 31, b.d, b.m, q);
    pack_5bit(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

// The 8-bit types stay within -127..127: SIMD dot products take absolute
// values and signs of int8 lanes, which -128 would overflow.
static uint16_t quantize_8bit(const float* x, int8_t qs[QK_LEGACY], int& sum) {
  const uint16_t dh = fp16_at_least(abs_max(x, QK_LEGACY) / 127.0f);
  const float d = fp16_to_f32(dh);
  sum = 0;
  for (int j = 0; j < QK_LEGACY; ++j) {
    qs[j] = int8_t(d != 0.0f ? round_clamp(x[j] / d, -127, 127) : 0);
    sum += qs[j];
  }
  return dh;
}

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ8_0 b{};
    int sum;
    b.d = quantize_8bit(src + i * QK_LEGACY, b.qs, sum);
    store_block(dst, i, b);
  }
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    BlockQ8_1 b{};
    int sum;
    b.d = quantize_8bit(src + i * QK_LEGACY, b.qs, sum);
    b.s = f32_to_fp16(fp16_to_f32(b.d) * float(sum));
    store_block(dst, i, b);
  }
}

}  // namespace dhi::quant_impl
