// Portable attention row kernels: plain loops, eight partial sums per dot
// product so the compiler can keep them in one vector register without
// reassociating (no -ffast-math).
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/cpu/dot/attention_rows.h"

namespace dhi::kernels::cpu {
namespace {

void to_f32(const uint16_t* src, size_t src_stride, int64_t n_rows, int64_t n, float* dst) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < n; ++i) dst[r * n + i] = fp16_to_f32(src[size_t(r) * src_stride + size_t(i)]);
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void scores(const float* q, size_t q_stride, int n_q, const float* k, size_t k_stride, int64_t n_pos, int64_t n,
            float scale, float* s, size_t s_stride) {
  for (int iq = 0; iq < n_q; ++iq) {
    for (int64_t j = 0; j < n_pos; ++j) {
      s[size_t(iq) * s_stride + size_t(j)] = scale * dot(q + size_t(iq) * q_stride, k + size_t(j) * k_stride, n);
    }
  }
}

void values(const float* p, size_t p_stride, int n_q, const float* v, size_t v_stride, int64_t n_pos, int64_t n,
            float* o, size_t o_stride) {
  for (int iq = 0; iq < n_q; ++iq) {
    float* orow = o + size_t(iq) * o_stride;
    for (int64_t j = 0; j < n_pos; ++j) {
      const float w = p[size_t(iq) * p_stride + size_t(j)];
      const float* vr = v + size_t(j) * v_stride;
      for (int64_t i = 0; i < n; ++i) orow[i] += w * vr[i];
    }
  }
}

void softmax(float* s, int64_t n) {
  const float mx = *std::max_element(s, s + n);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

constexpr AttentionRowKernel kKernel{&to_f32, &scores, &values, &softmax};

}  // namespace

namespace detail {
const AttentionRowKernel* generic_attention_kernel() { return &kKernel; }
}  // namespace detail

}  // namespace dhi::kernels::cpu
