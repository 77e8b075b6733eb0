// Portable K-quant dot kernels (Q2_K..Q6_K weights x Q8_K activations): the
// readable statement of the integer identity in dot_kquant_internal.h, and the
// fallback on CPUs without AVX2. Each super-block is unpacked once into its
// unsigned quants and per-group scales, then dotted with a tile of up to four
// tokens in integers; the mins and the Q3_K/Q6_K offsets come from the
// activation's bsums, so the float work is two products per super-block.
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/dot_kquant_internal.h"
#include "core/fp16.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {
namespace {

// The unsigned quants u[0..255] of one super-block in element order, from the
// layout formulas in blocks_k.h, and its scales and super-scales.
struct Unpacked {
  uint8_t u[QK_K];
  KqScales sc;
  float d, dmin;
};

void unpack(const BlockQ2_K& b, Unpacked& o) {
  for (int i = 0; i < QK_K; ++i) o.u[i] = (b.qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
  kq_scales_q2_k(b.scales, o.sc);
  o.d = fp16_to_f32(b.d);
  o.dmin = fp16_to_f32(b.dmin);
}

void unpack(const BlockQ3_K& b, Unpacked& o) {
  for (int i = 0; i < QK_K; ++i) {
    const int low = (b.qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
    const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
    o.u[i] = uint8_t(low | high << 2);  // the quant is u - 4
  }
  kq_scales_q3_k(b.scales, o.sc);
  o.d = fp16_to_f32(b.d);
  o.dmin = 0.0f;
}

void unpack(const BlockQ4_K& b, Unpacked& o) {
  for (int i = 0; i < QK_K; ++i) o.u[i] = (b.qs[(i / 64) * 32 + i % 32] >> (4 * ((i % 64) / 32))) & 15;
  kq_scales_k4(b.scales, o.sc);
  o.d = fp16_to_f32(b.d);
  o.dmin = fp16_to_f32(b.dmin);
}

void unpack(const BlockQ5_K& b, Unpacked& o) {
  for (int i = 0; i < QK_K; ++i) {
    const int low = (b.qs[(i / 64) * 32 + i % 32] >> (4 * ((i % 64) / 32))) & 15;
    const int high = (b.qh[i % 32] >> (i / 32)) & 1;
    o.u[i] = uint8_t(low | high << 4);
  }
  kq_scales_k4(b.scales, o.sc);
  o.d = fp16_to_f32(b.d);
  o.dmin = fp16_to_f32(b.dmin);
}

void unpack(const BlockQ6_K& b, Unpacked& o) {
  for (int i = 0; i < QK_K; ++i) {
    const int quarter = (i % 128) / 32;
    const int low = (b.ql[(i / 128) * 64 + (quarter & 1) * 32 + i % 32] >> (4 * (quarter >> 1))) & 15;
    const int high = (b.qh[(i / 128) * 32 + i % 32] >> (2 * quarter)) & 3;
    o.u[i] = uint8_t(low | high << 4);  // the quant is u - 32
  }
  kq_scales_q6_k(b.scales, o.sc);
  o.d = fp16_to_f32(b.d);
  o.dmin = 0.0f;
}

// One super-block's contribution: da * (d * sum_k s_k (u.a)_k - c * sum_k m_k B_k).
float block_dot(const Unpacked& w, const BlockQ8_K& a) {
  int32_t sumi = 0;
  for (int k = 0; k < 16; ++k) {
    int32_t group = 0;
    for (int i = 16 * k; i < 16 * k + 16; ++i) group += int32_t(w.u[i]) * a.qs[i];
    sumi += int32_t(w.sc.s[k]) * group;
  }
  int32_t summ = 0;
  for (int k = 0; k < 16; ++k) summ += int32_t(w.sc.m[k]) * a.bsums[k];
  return kq_block_value(a.d, w.d, w.dmin, w.sc.m_uses_dmin, sumi, summ);
}

template <typename Block>
struct Micro {
  template <int R, int T>
  struct Tile {
    static void run(const KqGemmArgs& g, int64_t r0, int64_t t0) {
      for (int r = 0; r < R; ++r) {
        const uint8_t* wrow = g.w + size_t(r0 + r) * g.w_stride;
        float acc[T] = {};
        Unpacked w;
        for (int64_t b = 0; b < g.n / QK_K; ++b) {
          unpack(kq_load<Block>(wrow + size_t(b) * sizeof(Block)), w);
          for (int t = 0; t < T; ++t) {
            const uint8_t* arow = g.act + size_t(t0 + t) * g.act_stride;
            acc[t] += block_dot(w, kq_load<BlockQ8_K>(arow + size_t(b) * sizeof(BlockQ8_K)));
          }
        }
        for (int t = 0; t < T; ++t) g.out[size_t(t0 + t) * g.out_stride + size_t(r0 + r)] = acc[t];
      }
    }
  };
};

template <typename Block>
void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
          int64_t n_tokens, float* out, size_t out_stride) {
  kq_gemm<Micro<Block>::template Tile, 1, 4>(n, w, w_stride, n_rows, act, act_stride, n_tokens, out, out_stride);
}

// The reference Q8_K quantizer is the generic one; the SIMD quantizers are
// tested to produce the same bytes.
void quantize_act(const float* x, void* out, int64_t n) { dhi::quantize_row(TensorType::Q8_K, x, out, n); }

constexpr DotKernel kQ2K{TensorType::Q8_K, &quantize_act, &gemm<BlockQ2_K>};
constexpr DotKernel kQ3K{TensorType::Q8_K, &quantize_act, &gemm<BlockQ3_K>};
constexpr DotKernel kQ4K{TensorType::Q8_K, &quantize_act, &gemm<BlockQ4_K>};
constexpr DotKernel kQ5K{TensorType::Q8_K, &quantize_act, &gemm<BlockQ5_K>};
constexpr DotKernel kQ6K{TensorType::Q8_K, &quantize_act, &gemm<BlockQ6_K>};

}  // namespace

namespace detail {
const DotKernel* generic_kquant_kernel(TensorType w) {
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
