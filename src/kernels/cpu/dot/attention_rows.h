// The inner loops of causal attention, per ISA: scores of a group of query
// rows against a run of key rows, their softmax, and the probability-weighted
// sum of value rows. kernels/cpu/ops.cpp drives them (GQA grouping, blocks,
// threads).
//
// The key and value rows are f32 or IEEE f16 (the KV cache's two types). The
// kernels take every query row of the group in one pass over a key or value
// row: each cache element is loaded, and widened from f16, once per group,
// not once per query head (a 1.5B-shape group has 6 heads, a 7B one 7).
//
// Strides are in elements. All pointers may be unaligned.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dot/isa.h"

namespace dhi::kernels::cpu {

struct AttentionRowKernel {
  // s[q * s_stride + j] = scale * dot(q + q * q_stride, k + j * k_stride) over
  // n elements, for q < n_q, j < n_pos.
  template <typename Elem>
  using ScoresFn = void (*)(const float* q, size_t q_stride, int n_q, const Elem* k,
                            size_t k_stride, int64_t n_pos, int64_t n, float scale, float* s,
                            size_t s_stride);
  ScoresFn<float> scores = nullptr;
  ScoresFn<uint16_t> scores_f16 = nullptr;

  // o + q * o_stride += sum over j < n_pos of p[q * p_stride + j] * (v + j * v_stride),
  // n elements, for q < n_q.
  template <typename Elem>
  using ValuesFn = void (*)(const float* p, size_t p_stride, int n_q, const Elem* v,
                            size_t v_stride, int64_t n_pos, int64_t n, float* o, size_t o_stride);
  ValuesFn<float> values = nullptr;
  ValuesFn<uint16_t> values_f16 = nullptr;

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
