// Reference quantizers for the K-quants and Q8_K. dhi's own, simple fits (not
// llama.cpp's iterative searches), written so each stored block has a provable
// error bound that the tests check:
//
//   Q2_K, Q4_K, Q5_K (x = d*sc*q - dmin*m): per sub-block the offset -min(0, lo)
//     is quantized *up* to dmin*m and the sub-block step *up* to d*sc, both with
//     the super-scales rounded up to a half, so no element clamps and every
//     element is within (d*sc)/2 of its reconstruction.
//   Q3_K, Q6_K (x = d*sc*q, q signed): each sub-block takes symmetric_step()'s
//     step, whose magnitude is then rounded up by the scale quantization, so
//     every element is within |d*sc|/2.
//   Q8_K: d = amax/127 as a float, |x - y| <= d/2.
//
// Packing goes element by element from the layout formulas in blocks_k.h; the
// dequantizers in quant_k.cpp walk the blocks in GGML's loop order instead, so
// the round-trip tests cross-check two independent statements of each layout.
#include <algorithm>
#include <cmath>

#include "quant/blocks_k.h"
#include "quant/quant_internal.h"

namespace dhi::quant_impl {
namespace {

// A fitted super-block of an affine K type, before bit packing.
struct AffineFit {
  uint16_t d = 0, dmin = 0;
  uint8_t sc[16] = {}, m[16] = {};  // first n_sub entries used
  uint8_t q[QK_K] = {};
};

// n_sub sub-blocks, quants in [0, qmax], scales and mins in [0, smax].
AffineFit fit_affine(const float* x, int n_sub, int qmax, int smax) {
  const int len = QK_K / n_sub;
  AffineFit f;
  float lo[16], hi[16];
  float max_off = 0.0f;
  for (int j = 0; j < n_sub; ++j) {
    // The format can only subtract an offset, so the low end includes 0.
    lo[j] = 0.0f;
    hi[j] = -INFINITY;
    for (int l = 0; l < len; ++l) {
      const float v = x[j * len + l];
      if (!std::isfinite(v)) continue;
      lo[j] = std::min(lo[j], v);
      hi[j] = std::max(hi[j], v);
    }
    hi[j] = std::max(hi[j], lo[j]);
    max_off = std::max(max_off, -lo[j]);
  }
  f.dmin = fp16_at_least(max_off / float(smax));
  const float dmin = fp16_to_f32(f.dmin);
  float off[16], step_goal[16];
  float max_step = 0.0f;
  for (int j = 0; j < n_sub; ++j) {
    f.m[j] = uint8_t(dmin > 0.0f ? ceil_clamp(-lo[j] / dmin, 0, smax) : 0);
    off[j] = dmin * float(f.m[j]);  // the offset the dequantizer will subtract
    step_goal[j] = (hi[j] + off[j]) / float(qmax);
    max_step = std::max(max_step, step_goal[j]);
  }
  f.d = fp16_at_least(max_step / float(smax));
  const float d = fp16_to_f32(f.d);
  for (int j = 0; j < n_sub; ++j) {
    f.sc[j] = uint8_t(d > 0.0f ? ceil_clamp(step_goal[j] / d, 0, smax) : 0);
    const float step = d * float(f.sc[j]);
    for (int l = 0; l < len; ++l) {
      const float v = x[j * len + l];
      f.q[j * len + l] = uint8_t(step > 0.0f ? round_clamp((v + off[j]) / step, 0, qmax) : 0);
    }
  }
  return f;
}

// A fitted super-block of a symmetric K type (16 sub-blocks of 16).
struct SymmetricFit {
  uint16_t d = 0;
  int sc[16] = {};   // signed sub-block scales in [-smax, smax]
  int q[QK_K] = {};  // signed quants in [-half, half-1]
};

SymmetricFit fit_symmetric(const float* x, int half, int smax) {
  SymmetricFit f;
  float s[16];
  float max_abs = 0.0f;
  for (int j = 0; j < 16; ++j) {
    s[j] = symmetric_step(x + 16 * j, 16, half);
    max_abs = std::max(max_abs, std::fabs(s[j]));
  }
  f.d = fp16_at_least(max_abs / float(smax));
  const float d = fp16_to_f32(f.d);
  for (int j = 0; j < 16; ++j) {
    const int mag = d > 0.0f ? ceil_clamp(std::fabs(s[j]) / d, 0, smax) : 0;
    f.sc[j] = s[j] < 0.0f ? -mag : mag;
    const float step = d * float(f.sc[j]);
    for (int l = 0; l < 16; ++l) {
      const float v = x[16 * j + l];
      f.q[16 * j + l] = step != 0.0f ? round_clamp(v / step, -half, half - 1) : 0;
    }
  }
  return f;
}

// Q4_K/Q5_K: eight 6-bit scales and mins into 12 bytes (see blocks_k.h).
void pack_scales_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t out[K_SCALE_SIZE]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

}  // namespace

void quantize_row_q2_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const AffineFit f = fit_affine(src + i * QK_K, 16, 3, 15);
    BlockQ2_K b{};
    b.d = f.d;
    b.dmin = f.dmin;
    for (int j = 0; j < 16; ++j) b.scales[j] = uint8_t(f.sc[j] | (f.m[j] << 4));
    for (int e = 0; e < QK_K; ++e) b.qs[(e / 128) * 32 + e % 32] |= uint8_t(f.q[e] << (2 * ((e % 128) / 32)));
    store_block(dst, i, b);
  }
}

void quantize_row_q3_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const SymmetricFit f = fit_symmetric(src + i * QK_K, 4, 31);
    BlockQ3_K b{};
    b.d = f.d;
    for (int k = 0; k < 16; ++k) {
      const int u = f.sc[k] + 32;  // 6-bit biased scale
      if (k < 8)
        b.scales[k] |= uint8_t(u & 15);
      else
        b.scales[k - 8] |= uint8_t((u & 15) << 4);
      b.scales[8 + k % 4] |= uint8_t((u >> 4) << (2 * (k / 4)));
    }
    for (int e = 0; e < QK_K; ++e) {
      const int u = f.q[e] + 4;  // 0..7: low 2 bits, and bit 2 set means "no -4"
      b.qs[(e / 128) * 32 + e % 32] |= uint8_t((u & 3) << (2 * ((e % 128) / 32)));
      b.hmask[e % 32] |= uint8_t((u >> 2) << (e / 32));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const AffineFit f = fit_affine(src + i * QK_K, 8, 15, 63);
    BlockQ4_K b{};
    b.d = f.d;
    b.dmin = f.dmin;
    pack_scales_k4(f.sc, f.m, b.scales);
    for (int e = 0; e < QK_K; ++e) b.qs[(e / 64) * 32 + e % 32] |= uint8_t(f.q[e] << (4 * ((e % 64) / 32)));
    store_block(dst, i, b);
  }
}

void quantize_row_q5_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const AffineFit f = fit_affine(src + i * QK_K, 8, 31, 63);
    BlockQ5_K b{};
    b.d = f.d;
    b.dmin = f.dmin;
    pack_scales_k4(f.sc, f.m, b.scales);
    for (int e = 0; e < QK_K; ++e) {
      b.qs[(e / 64) * 32 + e % 32] |= uint8_t((f.q[e] & 15) << (4 * ((e % 64) / 32)));
      b.qh[e % 32] |= uint8_t((f.q[e] >> 4) << (e / 32));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const SymmetricFit f = fit_symmetric(src + i * QK_K, 32, 127);
    BlockQ6_K b{};
    b.d = f.d;
    for (int k = 0; k < 16; ++k) b.scales[k] = int8_t(f.sc[k]);
    for (int e = 0; e < QK_K; ++e) {
      const int u = f.q[e] + 32;  // 0..63
      const int quarter = (e % 128) / 32;
      b.ql[(e / 128) * 64 + (quarter & 1) * 32 + e % 32] |= uint8_t((u & 15) << (4 * (quarter >> 1)));
      b.qh[(e / 128) * 32 + e % 32] |= uint8_t((u >> 4) << (2 * quarter));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    float amax = 0.0f;
    for (int e = 0; e < QK_K; ++e)
      if (std::isfinite(x[e])) amax = std::max(amax, std::fabs(x[e]));
    BlockQ8_K b{};
    b.d = amax / 127.0f;
    for (int e = 0; e < QK_K; ++e) {
      // Within -127..127 for the same reason as Q8_0 (see quant_legacy.cpp).
      b.qs[e] = int8_t(b.d > 0.0f ? round_clamp(x[e] / b.d, -127, 127) : 0);
      b.bsums[e / 16] = int16_t(b.bsums[e / 16] + b.qs[e]);
    }
    store_block(dst, i, b);
  }
}

}  // namespace dhi::quant_impl
