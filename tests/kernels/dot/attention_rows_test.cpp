// The attention row kernels of every ISA this CPU runs against plain double
// loops, on f32 and f16 rows: head sizes that are and are not multiples of
// the vector width (and smaller than it), position counts around the key-row
// step, query groups of one pass and of several (more rows than a pass
// holds), padded strides; every f16 value read exactly; and the softmax
// against a double one, underflowing tails included.
#include "kernels/cpu/dot/attention_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/fp16.h"

namespace dhi::kernels::cpu {
namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

struct Shape {
  int n_q;
  int64_t n_pos, n;
};
constexpr Shape kShapes[] = {{1, 1, 1},    {1, 3, 8},   {2, 4, 16},  {6, 5, 128},  {3, 7, 20},
                             {4, 9, 33},   {1, 64, 64}, {5, 66, 96}, {2, 13, 200}, {1, 2, 256},
                             {7, 33, 128}, {8, 6, 40},  {13, 11, 72}};

// The cache rows as the kernels read them: f32, or f16 (then `exact` holds the
// values the f16 rows stand for).
template <typename Elem>
std::vector<Elem> cache_rows(std::vector<float>& exact) {
  if constexpr (std::is_same_v<Elem, float>) {
    return exact;
  } else {
    std::vector<uint16_t> h(exact.size());
    for (size_t i = 0; i < h.size(); ++i) exact[i] = fp16_to_f32(h[i] = f32_to_fp16(exact[i]));
    return h;
  }
}

template <typename Elem>
void check_scores_and_values(const AttentionRowKernel& rk, const Shape& sh) {
  // Padded strides: rows are not contiguous, as in the KV cache.
  const size_t q_stride = size_t(sh.n + 3), k_stride = size_t(sh.n + 5),
               s_stride = size_t(sh.n_pos + 2);
  const size_t o_stride = size_t(sh.n + 1);
  const auto q = randn(q_stride * size_t(sh.n_q), 1);
  auto k_exact = randn(k_stride * size_t(sh.n_pos), 2),
       v_exact = randn(k_stride * size_t(sh.n_pos), 3);
  const std::vector<Elem> k = cache_rows<Elem>(k_exact), v = cache_rows<Elem>(v_exact);
  const float scale = 0.125f;
  std::vector<float> s(s_stride * size_t(sh.n_q), -7.0f);
  if constexpr (std::is_same_v<Elem, float>) {
    rk.scores(q.data(), q_stride, sh.n_q, k.data(), k_stride, sh.n_pos, sh.n, scale, s.data(),
              s_stride);
  } else {
    rk.scores_f16(q.data(), q_stride, sh.n_q, k.data(), k_stride, sh.n_pos, sh.n, scale, s.data(),
                  s_stride);
  }
  for (int iq = 0; iq < sh.n_q; ++iq) {
    for (int64_t j = 0; j < sh.n_pos; ++j) {
      double ref = 0;
      for (int64_t i = 0; i < sh.n; ++i)
        ref += double(q[iq * q_stride + size_t(i)]) * k_exact[size_t(j) * k_stride + size_t(i)];
      ref *= scale;
      EXPECT_NEAR(s[iq * s_stride + size_t(j)], ref, 1e-5 * (1 + std::sqrt(double(sh.n))))
          << iq << " " << j;
    }
    // Padding between score rows is left alone.
    for (size_t j = size_t(sh.n_pos); j < s_stride; ++j) EXPECT_EQ(s[iq * s_stride + j], -7.0f);
  }
  // values accumulates into o: start from nonzero.
  std::vector<float> o = randn(o_stride * size_t(sh.n_q), 4), o0 = o;
  if constexpr (std::is_same_v<Elem, float>) {
    rk.values(s.data(), s_stride, sh.n_q, v.data(), k_stride, sh.n_pos, sh.n, o.data(), o_stride);
  } else {
    rk.values_f16(s.data(), s_stride, sh.n_q, v.data(), k_stride, sh.n_pos, sh.n, o.data(),
                  o_stride);
  }
  for (int iq = 0; iq < sh.n_q; ++iq) {
    for (int64_t i = 0; i < sh.n; ++i) {
      double ref = o0[iq * o_stride + size_t(i)];
      for (int64_t j = 0; j < sh.n_pos; ++j)
        ref += double(s[iq * s_stride + size_t(j)]) * v_exact[size_t(j) * k_stride + size_t(i)];
      EXPECT_NEAR(o[iq * o_stride + size_t(i)], ref, 1e-4 * (1 + double(sh.n_pos)))
          << iq << " " << i;
    }
    EXPECT_EQ(o[iq * o_stride + size_t(sh.n)], o0[iq * o_stride + size_t(sh.n)]);  // padding
  }
}

TEST(AttentionRows, ScoresAndValuesMatchNaiveOnEveryIsa) {
  for (Isa isa : runnable_isas()) {
    const AttentionRowKernel* rk = attention_row_kernel(isa);
    ASSERT_NE(rk, nullptr);
    for (const Shape& sh : kShapes) {
      const std::string where = std::string(isa_name(isa)) + " n_q=" + std::to_string(sh.n_q) +
                                " n_pos=" + std::to_string(sh.n_pos) + " n=" + std::to_string(sh.n);
      {
        SCOPED_TRACE(where + " f32");
        check_scores_and_values<float>(*rk, sh);
      }
      {
        SCOPED_TRACE(where + " f16");
        check_scores_and_values<uint16_t>(*rk, sh);
      }
    }
  }
}

TEST(AttentionRows, SoftmaxMatchesDoubleOnEveryIsa) {
  for (Isa isa : runnable_isas()) {
    const AttentionRowKernel* rk = attention_row_kernel(isa);
    for (int64_t n : {1, 2, 7, 8, 15, 16, 17, 33, 100, 1000, 4099}) {
      // Scores of unit spread, of a wide spread (most probabilities far below
      // f32's smallest normal: the vector exp must underflow to 0 as exp
      // does), and all equal.
      for (float spread : {1.0f, 60.0f, 0.0f}) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n) +
                     " spread=" + std::to_string(spread));
        std::vector<float> s = randn(size_t(n), uint64_t(n));
        for (float& x : s) x = x * spread + 3.0f;
        std::vector<double> want(s.size()), gap(s.size());
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (size_t j = 0; j < s.size(); ++j) {
          gap[j] = mx - double(s[j]);
          sum += (want[j] = std::exp(-gap[j]));
        }
        rk->softmax(s.data(), n);
        double total = 0;
        for (size_t j = 0; j < s.size(); ++j) {
          const double p = want[j] / sum;
          // exp to a few ulp, the f32 sum, and the f32 difference s - max
          // (its rounding, up to gap * 2^-24, is an absolute error in the exponent).
          EXPECT_NEAR(s[j], p, p * (4e-7 + 1e-8 * double(n) + 6e-8 * gap[j]) + 1e-44) << j;
          total += s[j];
        }
        EXPECT_NEAR(total, 1.0, 1e-5);
      }
    }
  }
}

TEST(AttentionRows, F16RowsAreReadExactlyOnEveryIsa) {
  // Every finite half, as key and value rows of an odd width (vector body and
  // scalar tail). A one-hot query picks one element per score and one-hot
  // weights one value row, so each result is that element times 1 plus exact
  // zeros: it must equal the half's value exactly (== lets a zero's sign go).
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h < 65536; ++h)
    if ((h & 0x7c00) != 0x7c00) all.push_back(uint16_t(h));
  const int64_t n = 37, n_q = 3;
  const size_t stride = size_t(n + 3);  // the last three halves of each row skipped
  const int64_t n_pos = int64_t(all.size() / stride);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    const AttentionRowKernel* rk = attention_row_kernel(isa);
    const auto want = [&](int64_t j, int64_t i) {
      return fp16_to_f32(all[size_t(j) * stride + size_t(i)]);
    };
    for (int64_t i = 0; i < n; i += 5) {
      std::vector<float> q(size_t(n_q * n), 0.0f);
      for (int64_t r = 0; r < n_q; ++r) q[size_t(r * n + i)] = 1.0f;
      std::vector<float> s(size_t(n_q * n_pos));
      rk->scores_f16(q.data(), size_t(n), int(n_q), all.data(), stride, n_pos, n, 1.0f, s.data(),
                     size_t(n_pos));
      for (int64_t r = 0; r < n_q; ++r)
        for (int64_t j = 0; j < n_pos; ++j)
          ASSERT_EQ(s[size_t(r * n_pos + j)], want(j, i)) << i << " " << j;
    }
    for (int64_t j = 0; j < n_pos; j += 97) {
      std::vector<float> p(size_t(n_q * n_pos), 0.0f), o(size_t(n_q * n), 0.0f);
      for (int64_t r = 0; r < n_q; ++r) p[size_t(r * n_pos + j)] = 1.0f;
      rk->values_f16(p.data(), size_t(n_pos), int(n_q), all.data(), stride, n_pos, n, o.data(),
                     size_t(n));
      for (int64_t r = 0; r < n_q; ++r)
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(o[size_t(r * n + i)], want(j, i)) << j << " " << i;
    }
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
