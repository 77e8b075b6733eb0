// Portable C++ dot kernels for the float weight types (F32, F16, BF16; f32
// activations) and the legacy 32-element quant types (Q4_0, Q5_0, Q8_0 against
// Q8_0 activations; Q4_1, Q5_1 against Q8_1), plus the Q8_0/Q8_1 activation
// quantizers. This is the readable version of what the SIMD files do, and the
// definition of the activation quantizer they must reproduce bit for bit:
//
//   per block of 32: amax = max |x| (NaN ignored)
//                    d    = smallest half >= min(amax / 127, 65504)
//                    q    = round_half_even(clamp(x * (1/d), -127, 127)), 0 if d == 0
//                           (NaN clamps to -127: the order of max/min the SIMD code uses)
//                    s    = half(d * sum(q))           (Q8_1 only)
//
// The multiply by 1/d (not a divide by d) is what the SIMD code can afford per
// element; both are exact IEEE operations, so every ISA gets the same bits.
#include <cmath>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_internal.h"
#include "quant/blocks_legacy.h"

namespace dhi::kernels::cpu {
namespace {

constexpr int kQK = QK_LEGACY;

// ---- Activation quantizers --------------------------------------------------

// The smallest half >= v for v in [0, 65504]: the F16C conversion rounding up.
uint16_t fp16_round_up(float v) {
  uint16_t h = f32_to_fp16(v);
  if (fp16_to_f32(h) < v) ++h;
  return h;
}

// Quantizes one block; returns the scale bits and the sum of the codes.
uint16_t quantize_block_8bit(const float* x, int8_t* qs, int& sum) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    const float v = std::fabs(x[j]);
    amax = v > amax ? v : amax;  // a NaN compares false and is skipped
  }
  float step = amax / 127.0f;
  step = step < 65504.0f ? step : 65504.0f;
  const uint16_t dh = fp16_round_up(step);
  const float d = fp16_to_f32(dh);
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  sum = 0;
  for (int j = 0; j < kQK; ++j) {
    float v = x[j] * id;
    v = v > -127.0f ? v : -127.0f;  // NaN -> -127
    v = v < 127.0f ? v : 127.0f;
    qs[j] = int8_t(std::nearbyint(v));
    sum += qs[j];
  }
  return dh;
}

void quantize_q8_0(const float* x, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ8_0 blk;
    int sum;
    blk.d = quantize_block_8bit(x + b * kQK, blk.qs, sum);
    std::memcpy(o + b * sizeof(BlockQ8_0), &blk, sizeof blk);
  }
}

void quantize_q8_1(const float* x, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ8_1 blk;
    int sum;
    blk.d = quantize_block_8bit(x + b * kQK, blk.qs, sum);
    blk.s = f32_to_fp16(fp16_to_f32(blk.d) * float(sum));
    std::memcpy(o + b * sizeof(BlockQ8_1), &blk, sizeof blk);
  }
}

// ---- Weight block decoders ------------------------------------------------
// Each gives the 32 integer codes of a block in element order, its scale d and
// (affine types) its offset m: element j = d * q[j] (+ m).

uint32_t load_qh(const uint8_t* p) { return load_unaligned<uint32_t>(p); }

struct Q4_0 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr bool kAffine = false;
  static void decode(const uint8_t* p, int8_t* q, float& d, float& m) {
    d = fp16_to_f32(load_unaligned<uint16_t>(p));
    m = 0.0f;
    const uint8_t* qs = p + offsetof(BlockQ4_0, qs);
    for (int j = 0; j < kQK / 2; ++j) {
      q[j] = int8_t((qs[j] & 0x0f) - 8);
      q[j + kQK / 2] = int8_t((qs[j] >> 4) - 8);
    }
  }
};

struct Q4_1 {
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr bool kAffine = true;
  static void decode(const uint8_t* p, int8_t* q, float& d, float& m) {
    d = fp16_to_f32(load_unaligned<uint16_t>(p));
    m = fp16_to_f32(load_unaligned<uint16_t>(p + 2));
    const uint8_t* qs = p + offsetof(BlockQ4_1, qs);
    for (int j = 0; j < kQK / 2; ++j) {
      q[j] = int8_t(qs[j] & 0x0f);
      q[j + kQK / 2] = int8_t(qs[j] >> 4);
    }
  }
};

struct Q5_0 {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr bool kAffine = false;
  static void decode(const uint8_t* p, int8_t* q, float& d, float& m) {
    d = fp16_to_f32(load_unaligned<uint16_t>(p));
    m = 0.0f;
    const uint32_t qh = load_qh(p + offsetof(BlockQ5_0, qh));
    const uint8_t* qs = p + offsetof(BlockQ5_0, qs);
    for (int j = 0; j < kQK / 2; ++j) {
      q[j] = int8_t(((qs[j] & 0x0f) | ((qh >> j) & 1) << 4) - 16);
      q[j + kQK / 2] = int8_t(((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
    }
  }
};

struct Q5_1 {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static constexpr bool kAffine = true;
  static void decode(const uint8_t* p, int8_t* q, float& d, float& m) {
    d = fp16_to_f32(load_unaligned<uint16_t>(p));
    m = fp16_to_f32(load_unaligned<uint16_t>(p + 2));
    const uint32_t qh = load_qh(p + offsetof(BlockQ5_1, qh));
    const uint8_t* qs = p + offsetof(BlockQ5_1, qs);
    for (int j = 0; j < kQK / 2; ++j) {
      q[j] = int8_t((qs[j] & 0x0f) | ((qh >> j) & 1) << 4);
      q[j + kQK / 2] = int8_t((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
  }
};

struct Q8_0 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr bool kAffine = false;
  static void decode(const uint8_t* p, int8_t* q, float& d, float& m) {
    d = fp16_to_f32(load_unaligned<uint16_t>(p));
    m = 0.0f;
    std::memcpy(q, p + offsetof(BlockQ8_0, qs), kQK);
  }
};

// Block dot products: integer sums within a block are exact; the float
// accumulation is d_w * d_a * isum (+ m_w * s_a for the affine types, where
// s_a = d_a * sum(q_a) is the Q8_1 block's s field).
template <typename W>
struct QuantTile {
  static constexpr size_t kActBytes = W::kAffine ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  static constexpr size_t kActQs = W::kAffine ? offsetof(BlockQ8_1, qs) : offsetof(BlockQ8_0, qs);

  template <int R, int T>
  struct Micro {
    static void run(const GemmArgs& a, int64_t r0, int64_t t0) {
      float acc[R][T] = {};
      int8_t q[R][kQK];
      float dw[R], mw[R];
      for (int64_t b = 0; b < a.n / kQK; ++b) {
        for (int r = 0; r < R; ++r) W::decode(a.w_row(r0 + r) + b * W::kBytes, q[r], dw[r], mw[r]);
        for (int t = 0; t < T; ++t) {
          const uint8_t* ab = a.act_row(t0 + t) + b * kActBytes;
          const float da = fp16_to_f32(load_unaligned<uint16_t>(ab));
          const float sa = W::kAffine ? fp16_to_f32(load_unaligned<uint16_t>(ab + 2)) : 0.0f;
          const auto* qa = reinterpret_cast<const int8_t*>(ab + kActQs);
          for (int r = 0; r < R; ++r) {
            int32_t isum = 0;
            for (int j = 0; j < kQK; ++j) isum += int32_t(q[r][j]) * int32_t(qa[j]);
            acc[r][t] += dw[r] * da * float(isum);
            if constexpr (W::kAffine) acc[r][t] += mw[r] * sa;
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) a.at(r0 + r, t0 + t) = acc[r][t];
    }
  };
};

// ---- Float weights ----------------------------------------------------------

// Each converts len elements of a row from element i0 on.
struct F32W {
  static void convert(const uint8_t* row, int64_t i0, int len, float* dst) {
    std::memcpy(dst, row + 4 * i0, size_t(len) * sizeof(float));
  }
};
// All 65536 halves as floats (256 KB, built on first use): a load per element
// instead of fp16_to_f32's branches, which made this kernel 2x slower than
// the old dequantizing matmul.
const float* f16_table() {
  static const float* table = [] {
    static float t[65536];
    for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_f32(uint16_t(h));
    return t;
  }();
  return table;
}
struct F16W {
  static void convert(const uint8_t* row, int64_t i0, int len, float* dst) {
    const float* table = f16_table();
    for (int j = 0; j < len; ++j) dst[j] = table[load_unaligned<uint16_t>(row + 2 * (i0 + j))];
  }
};
struct BF16W {
  static void convert(const uint8_t* row, int64_t i0, int len, float* dst) {
    for (int j = 0; j < len; ++j) dst[j] = bf16_to_f32(load_unaligned<uint16_t>(row + 2 * (i0 + j)));
  }
};

// Weights are converted a chunk at a time (once per tile, reused for T tokens);
// eight partial sums per pair let the compiler vectorize without reassociating.
template <typename W>
struct FloatTile {
  static constexpr int kChunk = 64;
  template <int R, int T>
  struct Micro {
    static void run(const GemmArgs& a, int64_t r0, int64_t t0) {
      float acc[R][T][8] = {};
      float tail[R][T] = {};
      float wf[R][kChunk];
      for (int64_t i0 = 0; i0 < a.n; i0 += kChunk) {
        const int len = int(a.n - i0 < kChunk ? a.n - i0 : kChunk);
        for (int r = 0; r < R; ++r) W::convert(a.w_row(r0 + r), i0, len, wf[r]);
        const int len8 = len & ~7;
        for (int t = 0; t < T; ++t) {
          const uint8_t* xrow = a.act_row(t0 + t) + 4 * size_t(i0);
          for (int r = 0; r < R; ++r) {
            for (int j = 0; j < len8; j += 8)
              for (int k = 0; k < 8; ++k) acc[r][t][k] += wf[r][j + k] * load_unaligned<float>(xrow + 4 * (j + k));
            for (int j = len8; j < len; ++j) tail[r][t] += wf[r][j] * load_unaligned<float>(xrow + 4 * j);
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
          const float* s = acc[r][t];
          a.at(r0 + r, t0 + t) = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail[r][t];
        }
    }
  };
};

template <typename W>
constexpr DotKernel quant_kernel() {
  return DotKernel{W::kAffine ? TensorType::Q8_1 : TensorType::Q8_0, W::kAffine ? quantize_q8_1 : quantize_q8_0,
                   gemm_tiled<QuantTile<W>::template Micro, 4, 4, 4>};
}
template <typename W>
constexpr DotKernel float_kernel() {
  return DotKernel{TensorType::F32, nullptr, gemm_tiled<FloatTile<W>::template Micro, 4, 4, 4>};
}

constexpr DotKernel kF32 = float_kernel<F32W>();
constexpr DotKernel kF16 = float_kernel<F16W>();
constexpr DotKernel kBF16 = float_kernel<BF16W>();
constexpr DotKernel kQ4_0 = quant_kernel<Q4_0>();
constexpr DotKernel kQ4_1 = quant_kernel<Q4_1>();
constexpr DotKernel kQ5_0 = quant_kernel<Q5_0>();
constexpr DotKernel kQ5_1 = quant_kernel<Q5_1>();
constexpr DotKernel kQ8_0 = quant_kernel<Q8_0>();

}  // namespace

namespace detail {
const DotKernel* generic_legacy_kernel(TensorType w) {
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
}  // namespace detail

}  // namespace dhi::kernels::cpu
