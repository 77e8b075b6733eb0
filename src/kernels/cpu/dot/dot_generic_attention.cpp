// Portable attention row kernels: plain loops, eight partial sums per dot
// product so the compiler can keep them in one vector register without
// reassociating (no -ffast-math). An f16 row is widened once for all query
// rows of the group.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/attention_rows.h"

namespace dhi::kernels::cpu {
namespace {

// Row j of a cache run as f32: the row itself, or widened into buf.
const float* row_f32(const float* rows, size_t stride, int64_t j, int64_t, std::vector<float>&) {
  return rows + size_t(j) * stride;
}
const float* row_f32(const uint16_t* rows, size_t stride, int64_t j, int64_t n,
                     std::vector<float>& buf) {
  buf.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i)
    buf[size_t(i)] = fp16_to_f32(rows[size_t(j) * stride + size_t(i)]);
  return buf.data();
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

template <typename Elem>
void scores(const float* q, size_t q_stride, int n_q, const Elem* k, size_t k_stride, int64_t n_pos,
            int64_t n, float scale, float* s, size_t s_stride) {
  thread_local std::vector<float> buf;
  for (int64_t j = 0; j < n_pos; ++j) {
    const float* kr = row_f32(k, k_stride, j, n, buf);
    for (int iq = 0; iq < n_q; ++iq)
      s[size_t(iq) * s_stride + size_t(j)] = scale * dot(q + size_t(iq) * q_stride, kr, n);
  }
}

template <typename Elem>
void values(const float* p, size_t p_stride, int n_q, const Elem* v, size_t v_stride, int64_t n_pos,
            int64_t n, float* o, size_t o_stride) {
  thread_local std::vector<float> buf;
  for (int64_t j = 0; j < n_pos; ++j) {
    const float* vr = row_f32(v, v_stride, j, n, buf);
    for (int iq = 0; iq < n_q; ++iq) {
      float* orow = o + size_t(iq) * o_stride;
      const float w = p[size_t(iq) * p_stride + size_t(j)];
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

constexpr AttentionRowKernel kKernel{&scores<float>, &scores<uint16_t>, &values<float>,
                                     &values<uint16_t>, &softmax};

}  // namespace

namespace detail {
const AttentionRowKernel* generic_attention_kernel() { return &kKernel; }
}  // namespace detail

}  // namespace dhi::kernels::cpu
