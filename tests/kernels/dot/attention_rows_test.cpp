// The attention row kernels of every ISA this CPU runs against plain double
// loops: head sizes that are and are not multiples of the vector width (and
// smaller than it), position counts around the four-row grouping, one and
// several query rows, padded strides; the f16 widening bit for bit; and the
// softmax against a double one, underflowing tails included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/attention_rows.h"

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
constexpr Shape kShapes[] = {{1, 1, 1},   {1, 3, 8},    {2, 4, 16},   {6, 5, 128}, {3, 7, 20},
                             {4, 9, 33},  {1, 64, 64},  {5, 66, 96},  {2, 13, 200}, {1, 2, 256}};

TEST(AttentionRows, ScoresAndValuesMatchNaiveOnEveryIsa) {
  for (Isa isa : runnable_isas()) {
    const AttentionRowKernel* rk = attention_row_kernel(isa);
    ASSERT_NE(rk, nullptr);
    for (const Shape& sh : kShapes) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " n_q=" + std::to_string(sh.n_q) +
                   " n_pos=" + std::to_string(sh.n_pos) + " n=" + std::to_string(sh.n));
      // Padded strides: rows are not contiguous, as in the KV cache.
      const size_t q_stride = size_t(sh.n + 3), k_stride = size_t(sh.n + 5), s_stride = size_t(sh.n_pos + 2);
      const size_t o_stride = size_t(sh.n + 1);
      const auto q = randn(q_stride * size_t(sh.n_q), 1);
      const auto k = randn(k_stride * size_t(sh.n_pos), 2);
      const auto v = randn(k_stride * size_t(sh.n_pos), 3);
      const float scale = 0.125f;
      std::vector<float> s(s_stride * size_t(sh.n_q), -7.0f);
      rk->scores(q.data(), q_stride, sh.n_q, k.data(), k_stride, sh.n_pos, sh.n, scale, s.data(), s_stride);
      for (int iq = 0; iq < sh.n_q; ++iq) {
        for (int64_t j = 0; j < sh.n_pos; ++j) {
          double ref = 0;
          for (int64_t i = 0; i < sh.n; ++i) ref += double(q[iq * q_stride + size_t(i)]) * k[size_t(j) * k_stride + size_t(i)];
          ref *= scale;
          EXPECT_NEAR(s[iq * s_stride + size_t(j)], ref, 1e-5 * (1 + std::sqrt(double(sh.n))));
        }
        // Padding between score rows is left alone.
        for (size_t j = size_t(sh.n_pos); j < s_stride; ++j) EXPECT_EQ(s[iq * s_stride + j], -7.0f);
      }
      // values accumulates into o: start from nonzero.
      std::vector<float> o = randn(o_stride * size_t(sh.n_q), 4), o0 = o;
      rk->values(s.data(), s_stride, sh.n_q, v.data(), k_stride, sh.n_pos, sh.n, o.data(), o_stride);
      for (int iq = 0; iq < sh.n_q; ++iq) {
        for (int64_t i = 0; i < sh.n; ++i) {
          double ref = o0[iq * o_stride + size_t(i)];
          for (int64_t j = 0; j < sh.n_pos; ++j)
            ref += double(s[iq * s_stride + size_t(j)]) * v[size_t(j) * k_stride + size_t(i)];
          EXPECT_NEAR(o[iq * o_stride + size_t(i)], ref, 1e-4 * (1 + double(sh.n_pos)));
        }
        EXPECT_EQ(o[iq * o_stride + size_t(sh.n)], o0[iq * o_stride + size_t(sh.n)]);  // padding
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
        SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n) + " spread=" + std::to_string(spread));
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

TEST(AttentionRows, F16WideningIsExactOnEveryIsa) {
  // Every half bit pattern except NaNs (whose payload a conversion may change).
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h < 65536; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    all.push_back(uint16_t(h));
  }
  const int64_t n = 37;  // odd width: vector body and scalar tail
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    const AttentionRowKernel* rk = attention_row_kernel(isa);
    // Source rows n + 3 apart, the last three of each skipped.
    const int64_t used_rows = int64_t(all.size()) / (n + 3);
    std::vector<float> dst(size_t(used_rows * n));
    rk->to_f32(all.data(), size_t(n + 3), used_rows, n, dst.data());
    for (int64_t r = 0; r < used_rows; ++r)
      for (int64_t i = 0; i < n; ++i) {
        const float want = fp16_to_f32(all[size_t(r * (n + 3) + i)]);
        const float got = dst[size_t(r * n + i)];
        ASSERT_EQ(std::memcmp(&want, &got, 4), 0) << r << " " << i;
      }
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
