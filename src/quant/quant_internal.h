// Private to quant/: the per-type row functions the trait table points at, and
// the small helpers the reference quantizers share (block load/store that works
// on unaligned buffers, overflow-safe rounding, directed fp16 rounding).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/fp16.h"

namespace dhi::quant_impl {

// Blocks are copied in and out with memcpy: rows inside a mapped GGUF file are
// only as aligned as the block size allows, and the reference must not rely on
// anything more (UBSan checks member alignment).
template <typename Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * int64_t(sizeof(Block)), sizeof(Block));
  return b;
}

template <typename Block>
void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * int64_t(sizeof(Block)), &b, sizeof(Block));
}

// Rounds to nearest (ties away from zero) and clamps to [lo, hi] in float before
// converting, so NaN, infinities and huge inputs cannot reach an out-of-range
// float->int conversion (undefined behaviour). NaN becomes 0 clamped.
inline int round_clamp(float v, int lo, int hi) {
  if (!(v == v)) v = 0.0f;
  v = std::round(v);
  if (v < float(lo)) return lo;
  if (v > float(hi)) return hi;
  return int(v);
}

// Same for rounding up; used where a scale must not shrink below its target.
inline int ceil_clamp(float v, int lo, int hi) {
  if (!(v == v)) v = 0.0f;
  v = std::ceil(v);
  if (v < float(lo)) return lo;
  if (v > float(hi)) return hi;
  return int(v);
}

// fp16 bits of the smallest half >= v (v >= 0). Scales are rounded up so that
// the stored scale still covers the block's range: rounding to nearest could
// shrink it and clamp the largest element. Saturates at the largest finite half
// (65504) so absurdly large inputs clamp instead of turning a block into inf/NaN.
inline uint16_t fp16_at_least(float v) {
  constexpr uint16_t kMaxFinite = 0x7bff;
  if (!(v <= 65504.0f)) return kMaxFinite;  // also NaN
  uint16_t h = f32_to_fp16(v);
  if (fp16_to_f32(h) < v) ++h;  // next half up (v > 0 here, h < kMaxFinite)
  return h;
}

// fp16 bits of the largest half <= v. Used for the Q4_1/Q5_1 block minimum,
// which must not exceed the smallest element. Saturates at -65504 like above.
inline uint16_t fp16_at_most(float v) {
  if (!(v >= -65504.0f)) return 0xfbff;
  if (v >= 65504.0f) return 0x7bff;
  const uint16_t h = f32_to_fp16(v);
  if (fp16_to_f32(h) <= v) return h;
  if ((h & 0x7fff) == 0) return 0x8001;  // below +-0: the smallest negative subnormal
  return (h & 0x8000) ? uint16_t(h + 1) : uint16_t(h - 1);
}

// Legacy types (quant_legacy.cpp).
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q8_1(const void* src, float* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_1(const float* src, void* dst, int64_t n);
void quantize_row_q5_0(const float* src, void* dst, int64_t n);
void quantize_row_q5_1(const float* src, void* dst, int64_t n);
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);

// K-quants: dequantizers in quant_k.cpp, quantizers in quant_k_quantize.cpp.
void dequantize_row_q2_k(const void* src, float* dst, int64_t n);
void dequantize_row_q3_k(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k(const void* src, float* dst, int64_t n);
void dequantize_row_q5_k(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k(const void* src, float* dst, int64_t n);
void dequantize_row_q8_k(const void* src, float* dst, int64_t n);
void quantize_row_q2_k(const float* src, void* dst, int64_t n);
void quantize_row_q3_k(const float* src, void* dst, int64_t n);
void quantize_row_q4_k(const float* src, void* dst, int64_t n);
void quantize_row_q5_k(const float* src, void* dst, int64_t n);
void quantize_row_q6_k(const float* src, void* dst, int64_t n);
void quantize_row_q8_k(const float* src, void* dst, int64_t n);

// Symmetric fit shared by Q4_0, Q5_0, Q3_K and Q6_K: the signed step s for
// x ~ s*q, q in [-half, half-1], chosen so every element is within |s|/2 of a
// representable value (see quant_legacy.cpp). Zero for an all-zero group.
float symmetric_step(const float* x, int n, int half);

}  // namespace dhi::quant_impl
