// The inner loops of causal attention, per ISA: scores of a few query rows
// against a run of key rows, their softmax, and the probability-weighted sum
// of value rows.
// kernels/cpu/ops.cpp drives them (GQA grouping, blocks, threads); f16 cache
// rows are first widened to f32 a block at a time (to_f32), so the two loops
// only ever read f32 and the widening is shared by every query head of a group.
//
// Strides are in floats. All pointers may be unaligned.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dot/isa.h"

namespace dhi::kernels::cpu {

struct AttentionRowKernel {
  // dst[r * n + i] = f16 src[r * src_stride + i] as f32, for r < n_rows, i < n.
  void (*to_f32)(const uint16_t* src, size_t src_stride, int64_t n_rows, int64_t n, float* dst) = nullptr;

  // s[q * s_stride + j] = scale * dot(q + q * q_stride, k + j * k_stride) over
  // n elements, for q < n_q, j < n_pos.
  void (*scores)(const float* q, size_t q_stride, int n_q, const float* k, size_t k_stride, int64_t n_pos,
                 int64_t n, float scale, float* s, size_t s_stride) = nullptr;

  // o + q * o_stride += sum over j < n_pos of p[q * p_stride + j] * (v + j * v_stride),
  // n elements, for q < n_q.
  void (*values)(const float* p, size_t p_stride, int n_q, const float* v, size_t v_stride, int64_t n_pos,
                 int64_t n, float* o, size_t o_stride) = nullptr;

  // s[j] = exp(s[j] - max) / sum over j of exp(s[j] - max), for j < n (n >= 1,
  // finite scores): the exact softmax, exp to about 1 ulp on the vector paths.
  void (*softmax)(float* s, int64_t n) = nullptr;
};

// The kernels for `isa`; null when the CPU cannot run it.
const AttentionRowKernel* attention_row_kernel(Isa isa);

namespace detail {
const AttentionRowKernel* generic_attention_kernel();
const AttentionRowKernel* avx2_attention_kernel();
const AttentionRowKernel* avx512_attention_kernel();
}  // namespace detail

}  // namespace dhi::kernels::cpu
