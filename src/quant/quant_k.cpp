// Scalar reference dequantizers for the K-quants (Q2_K..Q6_K) and Q8_K. They
// walk each super-block in the order GGML's definition does (halves of 128
// elements, then groups of 32 sharing one byte range of the packed quants) and
// keep its float expression order: (d*sc)*q - (dmin*m). The layout facts they
// rely on are summarised in blocks_k.h.
#include "quant/blocks_k.h"
#include "quant/quant_internal.h"

namespace dhi::quant_impl {

void dequantize_row_q2_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    float* y = dst + i * QK_K;
    int is = 0;  // scale index: one per 16 elements, in element order
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        // 32 elements from bits [shift, shift+2) of q[0..31]; two scales.
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = b.scales[is++];
          const float dl = d * float(sc & 0x0f);
          const float ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_row_q3_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d = fp16_to_f32(b.d);
    int8_t scales[16];
    unpack_scales_q3_k(b.scales, scales);
    float* y = dst + i * QK_K;
    int is = 0;
    uint8_t hbit = 1;  // hmask bit for the current group of 32 elements
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d * float(scales[is++]);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            // A clear high bit means the 2-bit value is offset by -4.
            const int v = int((q[l] >> shift) & 3) - ((b.hmask[l] & hbit) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
        hbit = uint8_t(hbit << 1);
      }
    }
  }
}

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    float* y = dst + i * QK_K;
    for (int g = 0; g < 4; ++g) {  // 64 elements per 32 bytes: low nibbles, then high
      const uint8_t* q = b.qs + 32 * g;
      uint8_t sc, m;
      unpack_scale_min_k4(2 * g, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      unpack_scale_min_k4(2 * g + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    float* y = dst + i * QK_K;
    for (int g = 0; g < 4; ++g) {
      const uint8_t* q = b.qs + 32 * g;
      const uint8_t u1 = uint8_t(1 << (2 * g)), u2 = uint8_t(2 << (2 * g));  // qh bits of this group
      uint8_t sc, m;
      unpack_scale_min_k4(2 * g, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      unpack_scale_min_k4(2 * g + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((q[l] & 0x0f) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float((q[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = fp16_to_f32(b.d);
    float* y = dst + i * QK_K;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        // Four elements 32 apart share ql[l]/ql[l+32] nibbles and one qh byte.
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
      y += 128;
    }
  }
}

void dequantize_row_q8_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ8_K>(src, i);
    for (int j = 0; j < QK_K; ++j) dst[i * QK_K + j] = b.d * float(b.qs[j]);
  }
}

}  // namespace dhi::quant_impl
